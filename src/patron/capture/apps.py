from django.apps import AppConfig


class CaptureConfig(AppConfig):
    name = "patron.capture"
    label = "capture"
    verbose_name = "Capture"

    def ready(self) -> None:
        from patron.capture.services import move_submissions
        from patron.crm.merge import on_contact_merge

        on_contact_merge(move_submissions)
