from django.urls import path

from patron.core.tenancy import register_url_parameter
from patron.crm import (
    list_views,
    views,
    views_assignment,
    views_imports,
    views_meetings,
    views_merge,
    views_quotes,
    views_tickets,
)

app_name = "crm"

register_url_parameter("contact_id", "crm.Contact")
register_url_parameter("company_id", "crm.Company")
register_url_parameter("deal_id", "crm.Deal")
register_url_parameter("pipeline_id", "crm.Pipeline")
register_url_parameter("tag_id", "crm.Tag")
register_url_parameter("note_id", "crm.Note")
register_url_parameter("task_id", "crm.Task")
register_url_parameter("custom_field_id", "crm.CustomField")
register_url_parameter("import_id", "crm.ImportJob")
register_url_parameter("view_id", "crm.SavedView")
register_url_parameter("rule_id", "crm.AssignmentRule")
register_url_parameter("meeting_id", "crm.Meeting")
register_url_parameter("call_id", "crm.Call")
register_url_parameter("ticket_id", "crm.Ticket")
register_url_parameter("quote_id", "crm.Quote")

urlpatterns = [
    path("deals/<int:deal_id>/quotes/new/", views_quotes.quote_create, name="quote_create"),
    path("quotes/<int:quote_id>/", views_quotes.quote_detail, name="quote_detail"),
    path("quotes/<int:quote_id>/edit/", views_quotes.quote_edit, name="quote_edit"),
    path("quotes/<int:quote_id>/send/", views_quotes.quote_send, name="quote_send"),
    path("quotes/<int:quote_id>/copy/", views_quotes.quote_copy, name="quote_copy"),
    path("quotes/<int:quote_id>/delete/", views_quotes.quote_delete, name="quote_delete"),
    path("q/<str:token>/", views_quotes.quote_public, name="quote_public"),
    path("tickets/", views_tickets.ticket_list, name="ticket_list"),
    path("tickets/new/", views_tickets.ticket_create, name="ticket_create"),
    path("tickets/export/", views_tickets.ticket_export, name="ticket_export"),
    path("tickets/bulk/", views_tickets.ticket_bulk, name="ticket_bulk"),
    path("tickets/views/", views_tickets.ticket_view_save, name="ticket_view_save"),
    path(
        "tickets/views/<int:view_id>/delete/",
        views_tickets.ticket_view_delete,
        name="ticket_view_delete",
    ),
    path("tickets/<int:ticket_id>/", views_tickets.ticket_detail, name="ticket_detail"),
    path("tickets/<int:ticket_id>/reply/", views_tickets.ticket_reply, name="ticket_reply"),
    path("tickets/<int:ticket_id>/update/", views_tickets.ticket_update, name="ticket_update"),
    path("tickets/<int:ticket_id>/edit/", views_tickets.ticket_edit, name="ticket_edit"),
    path("settings/service-levels/", views_tickets.sla_settings, name="sla_settings"),
    path("calendar/", views_meetings.calendar, name="calendar"),
    path("calls/new/", views_meetings.call_create, name="call_create"),
    path("meetings/new/", views_meetings.meeting_create, name="meeting_create"),
    path("meetings/<int:meeting_id>/", views_meetings.meeting_detail, name="meeting_detail"),
    path("meetings/<int:meeting_id>/edit/", views_meetings.meeting_edit, name="meeting_edit"),
    path(
        "meetings/<int:meeting_id>/outcome/",
        views_meetings.meeting_outcome,
        name="meeting_outcome",
    ),
    path("meetings/<int:meeting_id>/delete/", views_meetings.meeting_delete, name="meeting_delete"),
    path("settings/assignment/", views_assignment.rule_list, name="assignment_rules"),
    path("settings/assignment/new/", views_assignment.rule_create, name="assignment_rule_create"),
    path(
        "settings/assignment/<int:rule_id>/edit/",
        views_assignment.rule_edit,
        name="assignment_rule_edit",
    ),
    path(
        "settings/assignment/<int:rule_id>/delete/",
        views_assignment.rule_delete,
        name="assignment_rule_delete",
    ),
    path("imports/", views_imports.import_list, name="import_list"),
    path("imports/new/", views_imports.import_upload, name="import_upload"),
    path("imports/<int:import_id>/", views_imports.import_detail, name="import_detail"),
    path(
        "imports/<int:import_id>/rejected.csv",
        views_imports.import_rejections,
        name="import_rejections",
    ),
    path("imports/<int:import_id>/discard/", views_imports.import_cancel, name="import_cancel"),
    path("contacts/export/", views_imports.contact_export, name="contact_export"),
    path("contacts/count/", list_views.contact_count, name="contact_count"),
    path("deals/export/", views_imports.deal_export, name="deal_export"),
    path("contacts/duplicates/", views_merge.contact_duplicates, name="contact_duplicates"),
    path("contacts/merge/", views_merge.contact_merge, name="contact_merge"),
    path("companies/duplicates/", views_merge.company_duplicates, name="company_duplicates"),
    path("companies/merge/", views_merge.company_merge, name="company_merge"),
    path("contacts/bulk/", list_views.contact_bulk, name="contact_bulk"),
    path("contacts/views/", list_views.contact_view_save, name="contact_view_save"),
    path(
        "contacts/views/<int:view_id>/delete/",
        list_views.contact_view_delete,
        name="contact_view_delete",
    ),
    path("companies/export/", views_imports.company_export, name="company_export"),
    path("settings/fields/", views.custom_field_list, name="custom_field_list"),
    path("settings/fields/new/", views.custom_field_create, name="custom_field_create"),
    path(
        "settings/fields/<int:custom_field_id>/edit/",
        views.custom_field_edit,
        name="custom_field_edit",
    ),
    path(
        "settings/fields/<int:custom_field_id>/delete/",
        views.custom_field_delete,
        name="custom_field_delete",
    ),
    path("contacts/", list_views.contact_list, name="contact_list"),
    path("contacts/new/", views.contact_create, name="contact_create"),
    path("contacts/<int:contact_id>/", views.contact_detail, name="contact_detail"),
    path("contacts/<int:contact_id>/edit/", views.contact_edit, name="contact_edit"),
    path("contacts/<int:contact_id>/delete/", views.contact_delete, name="contact_delete"),
    path("contacts/<int:contact_id>/tags/", views.contact_add_tag, name="contact_add_tag"),
    path(
        "contacts/<int:contact_id>/tags/<int:tag_id>/remove/",
        views.contact_remove_tag,
        name="contact_remove_tag",
    ),
    path("contacts/<int:contact_id>/notes/", views.contact_add_note, name="contact_add_note"),
    path("companies/<int:company_id>/tags/", views.company_add_tag, name="company_add_tag"),
    path(
        "companies/<int:company_id>/tags/<int:tag_id>/remove/",
        views.company_remove_tag,
        name="company_remove_tag",
    ),
    path("companies/<int:company_id>/notes/", views.company_add_note, name="company_add_note"),
    path("notes/<int:note_id>/delete/", views.note_delete, name="note_delete"),
    path("tasks/", views.task_list, name="task_list"),
    path("tasks/export/", views.task_export, name="task_export"),
    path("tasks/bulk/", views.task_bulk, name="task_bulk"),
    path("tasks/views/", views.task_view_save, name="task_view_save"),
    path("tasks/views/<int:view_id>/delete/", views.task_view_delete, name="task_view_delete"),
    path("tasks/new/", views.task_create, name="task_create"),
    path("tasks/<int:task_id>/", views.task_detail, name="task_detail"),
    path("tasks/<int:task_id>/complete/", views.task_complete, name="task_complete"),
    path("companies/", list_views.company_list, name="company_list"),
    path("companies/bulk/", list_views.company_bulk, name="company_bulk"),
    path("companies/views/", list_views.company_view_save, name="company_view_save"),
    path(
        "companies/views/<int:view_id>/delete/",
        list_views.company_view_delete,
        name="company_view_delete",
    ),
    path("companies/new/", views.company_create, name="company_create"),
    path("companies/<int:company_id>/", views.company_detail, name="company_detail"),
    path("companies/<int:company_id>/edit/", views.company_edit, name="company_edit"),
    path("companies/<int:company_id>/delete/", views.company_delete, name="company_delete"),
    path("deals/", views.deal_board_default, name="deals"),
    path("deals/list/", list_views.deal_list, name="deal_list"),
    path("deals/bulk/", list_views.deal_bulk, name="deal_bulk"),
    path("deals/views/", list_views.deal_view_save, name="deal_view_save"),
    path("deals/views/<int:view_id>/delete/", list_views.deal_view_delete, name="deal_view_delete"),
    path("deals/new/", views.deal_create, name="deal_create"),
    path("deals/pipelines/<int:pipeline_id>/", views.deal_board, name="deal_board"),
    path("deals/<int:deal_id>/", views.deal_detail, name="deal_detail"),
    path("deals/<int:deal_id>/edit/", views.deal_edit, name="deal_edit"),
    path("deals/<int:deal_id>/move/", views.deal_move, name="deal_move"),
    path("deals/<int:deal_id>/delete/", views.deal_delete, name="deal_delete"),
]
