from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "patron.mail"
    label = "mail"
    verbose_name = "Mail"

    def ready(self) -> None:
        from patron.mail import events  # noqa: F401 - registers the event kinds
