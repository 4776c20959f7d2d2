"""Public form endpoints: no login; the form's unguessable key names it."""

from django.urls import path, register_converter

from patron.capture import views_popups, views_public
from patron.core.tenancy import register_public_url_parameter

app_name = "capture_public"


class FormKeyConverter:
    """A form's public key: URL-safe characters, never all digits (those are form ids)."""

    regex = r"[A-Za-z0-9_-]*[A-Za-z_-][A-Za-z0-9_-]*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(FormKeyConverter, "formkey")

register_public_url_parameter("form_key")
register_public_url_parameter("workspace_slug")
register_public_url_parameter("page_slug")

urlpatterns = [
    path("f/<formkey:form_key>/", views_public.hosted, name="hosted"),
    path("f/<formkey:form_key>/embed.json", views_public.embed_description, name="embed"),
    path("t/popups", views_popups.page_popups, name="popups"),
    path("d/<str:token>", views_public.download, name="download"),
    path(
        "p/<slug:workspace_slug>/<slug:page_slug>", views_public.landing_page, name="landing_page"
    ),
]
