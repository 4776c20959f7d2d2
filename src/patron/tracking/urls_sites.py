"""Settings → Websites (the web tracker's sites)."""

from django.urls import path

from patron.core.tenancy import register_url_parameter
from patron.tracking import views_sites

app_name = "sites"

register_url_parameter("site_id", "tracking.Site")

urlpatterns = [
    path("settings/websites/", views_sites.site_list, name="list"),
    path("settings/websites/<int:site_id>/", views_sites.site_edit, name="edit"),
    path("settings/websites/<int:site_id>/delete/", views_sites.site_delete, name="delete"),
]
