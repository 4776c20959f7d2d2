from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class CoreConfig(AppConfig):
    name = "patron.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from patron.core import bulk, signals  # noqa: F401  (the in_ids lookup; login audit)

        # Every app's tasks.py registers its background and periodic tasks.
        autodiscover_modules("tasks")
