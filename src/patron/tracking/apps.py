from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "patron.tracking"
    label = "tracking"
    verbose_name = "Tracking"

    def ready(self) -> None:
        from patron.crm.merge import on_contact_merge
        from patron.tracking import events  # noqa: F401 - registers the web event kinds
        from patron.tracking.stitching import move_visitor_links

        on_contact_merge(move_visitor_links)
