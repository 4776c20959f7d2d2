"""Background entry points of capture: the download email."""

from __future__ import annotations

from patron.core.background import background_task


@background_task
def email_download(submission_id: int, url: str) -> bool:
    """Mail the download link of a submission (failures are recorded and can be retried)."""
    from patron.capture.downloads import send_download_email
    from patron.capture.models import FormSubmission

    submission = (
        FormSubmission.objects.unscoped()
        .select_related("form__workspace", "form__download_file", "contact")
        .filter(pk=submission_id)
        .first()
    )
    if submission is None:
        return False
    return send_download_email(submission=submission, url=url)
