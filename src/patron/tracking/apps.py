from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "patron.tracking"
    label = "tracking"
    verbose_name = "Tracking"

    def ready(self) -> None:
        from patron.tracking import events  # noqa: F401 - registers the web event kinds
