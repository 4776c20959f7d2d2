"""Gated content: the download library, and the signed, expiring links forms hand out.

A workspace uploads files (an e-book, a price list) to its library. An upload
is checked by its content, not its name: the first bytes must be those of one
of ``KINDS`` (PDF, EPUB, ZIP and the Office formats, PNG, JPEG, or plain text
and CSV, which must be UTF-8), within ``DOWNLOADS_MAX_BYTES``. It is kept in
Django's default storage under a random name and never has a public address.

A form set to deliver a file answers with a **download link**
``/d/<token>``: the token is signed (``patron.mail.tokens``, kind
"download") and carries the workspace, the file, the contact, the form and the
moment it expires (the form's ``download_days`` after the submission). A
tampered, cut or foreign token reads as invalid; an old one as expired, with
the form to send again for a new link. Each download served records one
``file.downloaded`` event on the contact (file id and name, form id and name).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.html import escape, linebreaks
from django.utils.text import slugify
from django.utils.translation import gettext as _

from patron.activity.services import record
from patron.capture.models import DownloadFile, Form, FormSubmission
from patron.core.models import User, Workspace
from patron.mail import tokens

TOKEN_KIND = "download"  # noqa: S105 - a signing namespace, not a secret
MAX_DAYS = 365
# Extension -> (content type, how the file starts; None: UTF-8 text).
KINDS: dict[str, tuple[str, tuple[bytes, ...] | None]] = {
    "pdf": ("application/pdf", (b"%PDF-",)),
    "epub": ("application/epub+zip", (b"PK\x03\x04",)),
    "zip": ("application/zip", (b"PK\x03\x04",)),
    "docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        (b"PK\x03\x04",),
    ),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
    "pptx": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        (b"PK\x03\x04",),
    ),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "txt": ("text/plain; charset=utf-8", None),
    "csv": ("text/csv; charset=utf-8", None),
}


def max_bytes() -> int:
    return int(getattr(settings, "DOWNLOADS_MAX_BYTES", 50 * 1024 * 1024))


class FileInvalid(ValueError):
    """An upload the library refuses; the message says why."""


class FileInUse(ValueError):
    """A file forms still deliver cannot be deleted; the message names them."""


# --- The library --------------------------------------------------------------------------


def files_for(workspace: Workspace | int) -> QuerySet[DownloadFile]:
    return DownloadFile.objects.for_workspace(workspace).order_by("-uploaded_at", "-id")


@transaction.atomic
def upload_file(
    *, workspace: Workspace, file: IO[bytes], name: str, uploaded_by: User | None = None
) -> DownloadFile:
    """Store an uploaded file in the library; ``FileInvalid`` says what is wrong with it."""
    limit = max_bytes()
    clean_name = " ".join(str(name).replace("/", " ").replace("\\", " ").split())[:150]
    extension = clean_name.rsplit(".", 1)[-1].lower() if "." in clean_name else ""
    allowed = ", ".join(sorted({key.upper() for key in KINDS if key != "jpeg"}))
    if extension not in KINDS:
        raise FileInvalid(
            _("“%(name)s” cannot be offered for download. Upload one of: %(kinds)s.")
            % {"name": clean_name or _("The file"), "kinds": allowed}
        )
    data = file.read(limit + 1)
    if not data:
        raise FileInvalid(_("The file is empty."))
    if len(data) > limit:
        raise FileInvalid(
            _("The file is larger than %(size)s MB; make it smaller first.")
            % {"size": limit // (1024 * 1024)}
        )
    content_type, signatures = KINDS[extension]
    if signatures is None:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise FileInvalid(
                _("“%(name)s” is not a UTF-8 text file.") % {"name": clean_name}
            ) from None
    elif not any(data.startswith(signature) for signature in signatures):
        raise FileInvalid(
            _("“%(name)s” is not really a %(kind)s file (its content says otherwise).")
            % {"name": clean_name, "kind": extension.upper()}
        )
    item = DownloadFile(
        workspace=workspace,
        name=clean_name,
        size=len(data),
        content_type=content_type,
        uploaded_by=uploaded_by,
    )
    item.file.save(f"{secrets.token_urlsafe(16)}.{extension}", ContentFile(data), save=False)
    item.save()
    return item


def delete_file(*, file: DownloadFile) -> None:
    """Remove a file from the library (refused while a form delivers it)."""
    using = list(Form.objects.for_workspace(file.workspace_id).filter(download_file=file))
    if using:
        raise FileInUse(
            _("Forms still deliver this file: %(forms)s. Choose another file for them first.")
            % {"forms": ", ".join(form.name for form in using)}
        )
    storage, path = file.file.storage, file.file.name
    with transaction.atomic():
        file.delete()
        if path:
            transaction.on_commit(lambda: storage.delete(path))


def download_name(file: DownloadFile) -> str:
    """The file name a browser saves the download under."""
    stem, _dot, extension = file.name.rpartition(".")
    return f"{slugify(stem)[:80] or 'download'}.{extension.lower() or 'bin'}"


# --- Links --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """What a valid download token says."""

    workspace_id: int
    file_id: int
    contact_id: int
    form_id: int
    expires_at: int  # Unix time


def download_token(submission: FormSubmission, *, now: float | None = None) -> str:
    """The token of the download link a submission of a file-delivering form gets."""
    form = submission.form
    if form.download_file_id is None:
        raise ValueError("the form delivers no file")
    days = max(1, min(int(form.download_days or 7), MAX_DAYS))
    expires = int((time.time() if now is None else now) + days * 86400)
    return tokens.sign(
        TOKEN_KIND,
        form.workspace_id,
        form.download_file_id,
        submission.contact_id or 0,
        form.pk,
        expires,
    )


def download_url(submission: FormSubmission, *, now: float | None = None) -> str:
    return settings.BASE_URL + reverse(
        "capture_public:download", args=[download_token(submission, now=now)]
    )


class LinkInvalid(Exception):
    """A download link that does not work; ``expired`` tells an old link from a wrong one,
    ``form_id`` (when known) names the form that gives a new one."""

    def __init__(self, *, expired: bool, form_id: int | None = None) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired, self.form_id = expired, form_id


def read_token(token: str, *, now: float | None = None) -> Grant:
    """The grant behind a download token; raises ``LinkInvalid``."""
    values = tokens.unsign(TOKEN_KIND, token)
    if values is None or len(values) != 5:
        raise LinkInvalid(expired=False)
    grant = Grant(*values)
    if (time.time() if now is None else now) > grant.expires_at:
        raise LinkInvalid(expired=True, form_id=grant.form_id)
    return grant


def record_download(*, grant: Grant) -> DownloadFile:
    """The file a valid grant opens, with one ``file.downloaded`` event recorded for it.

    Raises ``LinkInvalid`` when the file was deleted since.
    """
    from patron.crm.models import Contact

    file = DownloadFile.objects.for_workspace(grant.workspace_id).filter(pk=grant.file_id).first()
    if file is None:
        raise LinkInvalid(expired=False, form_id=grant.form_id)
    form = Form.objects.for_workspace(grant.workspace_id).filter(pk=grant.form_id).first()
    contact_id = (
        Contact.objects.for_workspace(grant.workspace_id)
        .filter(pk=grant.contact_id)
        .values_list("pk", flat=True)
        .first()
    )
    properties: dict[str, object] = {
        "file_id": file.pk,
        "file": file.name,
        "form_id": grant.form_id,
    }
    if form is not None:
        properties["form"] = form.name
    record(
        workspace=grant.workspace_id,
        kind="file.downloaded",
        contact_id=contact_id,
        source=("capture.download_file", file.pk),
        properties=properties,
    )
    return file


# --- The email with the link ------------------------------------------------------------


def send_download_email(*, submission: FormSubmission, url: str) -> bool:
    """Mail the thank-you message and the download link to the person who sent the form.

    Goes through the sending gate like every automatic mail (a suppressed address
    gets nothing). Returns whether a message went out.
    """
    from patron.audience.sending import may_send
    from patron.core.services import WORKSPACE_HEADER

    form, contact = submission.form, submission.contact
    if contact is None or not contact.email or form.download_file is None:
        return False
    workspace = form.workspace
    if not may_send(workspace, contact.email).allowed:
        return False
    file_name = form.download_file.name
    text = _(
        "%(message)s\n\nDownload “%(file)s” here (the link works for %(days)s days):\n%(url)s\n"
    ) % {
        "message": form.success_message.strip(),
        "file": file_name,
        "days": form.download_days,
        "url": url,
    }
    message = EmailMultiAlternatives(
        subject=_("Your download: %(file)s") % {"file": file_name},
        body=text,
        to=[contact.email],
        headers={WORKSPACE_HEADER: str(workspace.pk)},
    )
    label = _("Download “%(file)s”") % {"file": file_name}
    html = linebreaks(escape(form.success_message.strip())) + (
        f'<p><a href="{escape(url)}">{escape(label)}</a></p>'
    )
    message.attach_alternative(html, "text/html")
    with get_connection() as connection:
        return bool(connection.send_messages([message]))


def email_download_later(*, submission: FormSubmission, url: str) -> None:
    """Send the download email in the background once the submission is committed."""
    from patron.capture.tasks import email_download

    submission_id = submission.pk
    transaction.on_commit(lambda: email_download.enqueue(submission_id, url))  # type: ignore[attr-defined]
