from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "patron.crm"
    label = "crm"
    verbose_name = "Crm"
