from django.apps import AppConfig


class CaptureConfig(AppConfig):
    name = "patron.capture"
    label = "capture"
    verbose_name = "Capture"
