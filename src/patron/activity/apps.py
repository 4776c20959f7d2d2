from django.apps import AppConfig


class ActivityConfig(AppConfig):
    name = "patron.activity"
    label = "activity"
    verbose_name = "Activity"
