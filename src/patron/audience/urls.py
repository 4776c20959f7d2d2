from django.urls import path

from patron.audience import views_lists, views_segments, views_suppression
from patron.core.tenancy import register_url_parameter

app_name = "audience"

register_url_parameter("segment_id", "audience.Segment")
register_url_parameter("list_id", "audience.MailingList")
register_url_parameter("contact_id", "crm.Contact")
register_url_parameter("suppression_id", "audience.Suppression")

urlpatterns = [
    path("segments/", views_segments.segment_list, name="segment_list"),
    path("segments/new/", views_segments.segment_new, name="segment_new"),
    path("segments/count/", views_segments.segment_count, name="segment_count"),
    path("segments/<int:segment_id>/", views_segments.segment_detail, name="segment_detail"),
    path(
        "segments/<int:segment_id>/delete/",
        views_segments.segment_delete,
        name="segment_delete",
    ),
    path("suppression/", views_suppression.suppression_list, name="suppression_list"),
    path("suppression/add/", views_suppression.suppression_add, name="suppression_add"),
    path(
        "suppression/role-addresses/",
        views_suppression.suppression_role_setting,
        name="suppression_role_setting",
    ),
    path("suppression/import/", views_suppression.suppression_import, name="suppression_import"),
    path(
        "suppression/import/report/",
        views_suppression.suppression_import_report,
        name="suppression_import_report",
    ),
    path("suppression/export/", views_suppression.suppression_export, name="suppression_export"),
    path(
        "suppression/<int:suppression_id>/remove/",
        views_suppression.suppression_remove,
        name="suppression_remove",
    ),
    path("lists/", views_lists.list_index, name="list_index"),
    path("lists/new/", views_lists.list_new, name="list_new"),
    path("lists/<int:list_id>/", views_lists.list_detail, name="list_detail"),
    path("lists/<int:list_id>/edit/", views_lists.list_edit, name="list_edit"),
    path("lists/<int:list_id>/delete/", views_lists.list_delete, name="list_delete"),
    path("lists/<int:list_id>/search/", views_lists.list_contact_search, name="list_search"),
    path("lists/<int:list_id>/add/", views_lists.list_add, name="list_add"),
    path("lists/<int:list_id>/member/", views_lists.list_member_change, name="list_member"),
    path("lists/<int:list_id>/resend/", views_lists.list_resend_all, name="list_resend"),
    path("lists/<int:list_id>/export/", views_lists.list_export, name="list_export"),
    path(
        "contacts/<int:contact_id>/lists/subscribe/",
        views_lists.contact_subscribe,
        name="contact_subscribe",
    ),
    path(
        "contacts/<int:contact_id>/lists/<int:list_id>/unsubscribe/",
        views_lists.contact_unsubscribe,
        name="contact_unsubscribe",
    ),
    # Public: the double opt-in link of the confirmation email.
    path(
        "subscribe/confirm/<str:token>/",
        views_lists.subscription_confirm,
        name="subscription_confirm",
    ),
]
