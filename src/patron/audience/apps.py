from django.apps import AppConfig


class AudienceConfig(AppConfig):
    name = "patron.audience"
    label = "audience"
    verbose_name = "Audience"

    def ready(self) -> None:
        from patron.audience import events  # noqa: F401 - registers the event kinds
