from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "patron.automation"
    label = "automation"
    verbose_name = "Automation"
