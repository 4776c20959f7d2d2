from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "patron.automation"
    label = "automation"
    verbose_name = "Automation"

    def ready(self) -> None:
        from patron.automation.merging import move_automation
        from patron.crm.merge import on_contact_merge

        on_contact_merge(move_automation)
