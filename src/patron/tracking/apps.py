from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "patron.tracking"
    label = "tracking"
    verbose_name = "Tracking"
