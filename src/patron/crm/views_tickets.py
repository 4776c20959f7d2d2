"""Ticket pages (list with SLA views, detail with the conversation) and SLA settings."""

from __future__ import annotations

from datetime import time
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseBase, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.models import User, Workspace
from patron.core.roles import DATA_EXPORT, SETTINGS_MANAGE, TICKETS_VIEW
from patron.core.selectors import active_users
from patron.crm import bulk_actions, custom_fields, selectors, tickets
from patron.crm.custom_fields import CustomFieldInvalid
from patron.crm.forms import CustomFieldsForm
from patron.crm.list_views import (
    BulkList,
    Column,
    ListSpec,
    bulk_form,
    choice_value,
    member_value,
    moment,
    no_value,
    person,
    read_list,
    related,
    render_list,
    run_bulk,
    view_endpoints,
)
from patron.crm.models import (
    Company,
    Contact,
    CustomFieldObject,
    Ticket,
    TicketChannel,
    TicketPriority,
    TicketStatus,
)
from patron.crm.services import CrossWorkspaceReference, field_definitions

SLA_STATES = {
    "breached": gettext_lazy("Breached"),
    "at_risk": gettext_lazy("At risk"),
    "on_track": gettext_lazy("On track"),
}
WEEKDAYS = [
    gettext_lazy("Monday"),
    gettext_lazy("Tuesday"),
    gettext_lazy("Wednesday"),
    gettext_lazy("Thursday"),
    gettext_lazy("Friday"),
    gettext_lazy("Saturday"),
    gettext_lazy("Sunday"),
]


def _members(workspace: Workspace) -> Any:
    return active_users(workspace)


class TicketForm(CustomFieldsForm):
    """Opening and editing a ticket (status changes happen on the ticket's page)."""

    object_type = CustomFieldObject.TICKET

    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=200)
    description = forms.CharField(
        label=gettext_lazy("Description"),
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    contact = forms.ModelChoiceField(
        label=gettext_lazy("Contact"), queryset=Contact.objects.none(), required=False
    )
    company = forms.ModelChoiceField(
        label=gettext_lazy("Company"),
        queryset=Company.objects.none(),
        required=False,
        help_text=gettext_lazy("Left empty, the contact's company is used."),
    )
    priority = forms.ChoiceField(
        label=gettext_lazy("Priority"), choices=TicketPriority.choices, initial="normal"
    )
    channel = forms.ChoiceField(
        label=gettext_lazy("Channel"), choices=TicketChannel.choices, initial="manual"
    )
    assignee = forms.ModelChoiceField(
        label=gettext_lazy("Assigned to"), queryset=User.objects.none(), required=False
    )

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, workspace=workspace, **kwargs)
        self.fields["assignee"].queryset = _members(workspace)  # type: ignore[attr-defined]
        self.fields["contact"].queryset = (  # type: ignore[attr-defined]
            Contact.objects.for_workspace(workspace).order_by("last_name", "first_name", "pk")
        )
        self.fields["company"].queryset = (  # type: ignore[attr-defined]
            Company.objects.for_workspace(workspace).order_by("name", "pk")
        )

    @classmethod
    def initial_for(cls, ticket: Ticket) -> dict[str, Any]:
        initial = {
            "subject": ticket.subject,
            "description": ticket.description,
            "contact": ticket.contact_id,
            "company": ticket.company_id,
            "priority": ticket.priority,
            "channel": ticket.channel,
            "assignee": ticket.assignee_id,
        }
        return {**initial, **cls.custom_initial(ticket)}


class TicketUpdateForm(forms.Form):
    status = forms.ChoiceField(label=gettext_lazy("Status"), choices=TicketStatus.choices)
    priority = forms.ChoiceField(label=gettext_lazy("Priority"), choices=TicketPriority.choices)
    assignee = forms.ModelChoiceField(
        label=gettext_lazy("Assigned to"), queryset=User.objects.none(), required=False
    )

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = _members(workspace)  # type: ignore[attr-defined]


class ReplyForm(forms.Form):
    body = forms.CharField(
        label=gettext_lazy("Message"), max_length=20_000, widget=forms.Textarea(attrs={"rows": 4})
    )
    internal = forms.BooleanField(
        label=gettext_lazy("Internal note (not a reply to the customer)"), required=False
    )


def _customer_link(ticket: Ticket) -> str:
    if ticket.contact_id:
        return reverse("crm:contact_detail", args=[ticket.contact_id])
    if ticket.company_id:
        return reverse("crm:company_detail", args=[ticket.company_id])
    return ""


def _sla_cell(ticket: Ticket) -> str:
    from patron.crm.templatetags.tickets import sla_badge, sla_due, sla_label

    if ticket.is_done:
        return mark_safe('<span class="text-body-secondary">—</span>')
    state = tickets.sla_state(ticket)
    return format_html(
        '<span class="badge {}">{}</span> <small>{}</small>',
        sla_badge(state),
        sla_label(state),
        sla_due(ticket),
    )


TICKET_SPEC = ListSpec(
    object_type="ticket",
    columns={
        "customer": Column(
            gettext_lazy("Customer"), lambda t: t.contact or t.company or "", _customer_link
        ),
        "status": Column(gettext_lazy("Status"), lambda t: t.get_status_display()),
        "priority": Column(gettext_lazy("Priority"), lambda t: t.get_priority_display()),
        "assignee": Column(gettext_lazy("Assigned to"), lambda t: person(t.assignee) or "—"),
        "sla": Column(gettext_lazy("SLA"), _sla_cell),
        "channel": Column(gettext_lazy("Channel"), lambda t: t.get_channel_display()),
        "company": related("company", "company_detail", gettext_lazy("Company")),
        "created": Column(gettext_lazy("Opened"), lambda t: moment(t.created_at)),
        "updated": Column(gettext_lazy("Updated"), lambda t: moment(t.updated_at)),
        "first_response_due": Column(
            gettext_lazy("First response due"), lambda t: moment(t.first_response_due_at)
        ),
        "resolution_due": Column(
            gettext_lazy("Resolution due"), lambda t: moment(t.resolution_due_at)
        ),
        "solved": Column(gettext_lazy("Solved"), lambda t: moment(t.solved_at)),
    },
    default_columns=("customer", "status", "priority", "assignee", "sla"),
    sorts={
        "-created": gettext_lazy("Newest first"),
        "created": gettext_lazy("Oldest first"),
        "-priority": gettext_lazy("Most urgent first"),
        "resolution_due": gettext_lazy("Resolution due first"),
        "-updated": gettext_lazy("Recently updated"),
    },
    default_sort="-created",
    # The same order as ticket_query writes its filters: status, priority, assignee, sla.
    built_in_views=(
        (gettext_lazy("Open tickets"), "status=open"),
        (gettext_lazy("My open tickets"), "status=open&assignee=me"),
        (gettext_lazy("Unassigned"), "status=open&assignee=none"),
        (gettext_lazy("Breached"), "status=open&sla=breached"),
        (gettext_lazy("At risk"), "status=open&sla=at_risk"),
        (gettext_lazy("All tickets"), "status=all"),
    ),
    custom_object=CustomFieldObject.TICKET,
)


def ticket_query(
    request: WorkspaceRequest, data: QueryDict | None = None
) -> tuple[Any, dict[str, Any]]:
    """The tickets the list's parameters select, and the context to show them."""
    state = read_list(request, TICKET_SPEC, data)
    status = state.get("status", "open")
    if status not in ("open", *TicketStatus.values):
        status = "all"
    priority = state.choice("priority", TicketPriority.values)
    members = list(_members(request.workspace))
    assignee = state.get("assignee")
    assignee_filter: User | str | None = ""
    if assignee == "me":
        assignee_filter = request.user
    elif assignee == "none":
        assignee_filter = None
    else:
        by_id = {str(member.pk): member for member in members}
        assignee_filter = by_id.get(assignee, "")
        if assignee_filter == "":
            assignee = ""
    sla_filter = state.choice("sla", SLA_STATES)
    query = state.get("q").strip()
    found = selectors.search_tickets(
        request.workspace,
        status="" if status == "all" else status,
        priority=priority,
        assignee=assignee_filter,
        sla=sla_filter,
        query=query,
        sort=state.sort,
    ).filter(*[custom_fields.filter_q(condition) for condition in state.conditions])
    filters = {
        "status": status,
        "priority": priority,
        "assignee": assignee,
        "sla": sla_filter,
        "q": query,
    }
    context = state.context(filters, filtered=bool(priority or assignee or sla_filter or query))
    context.update(
        {
            "status": status,
            "statuses": TicketStatus.choices,
            "priority": priority,
            "priorities": TicketPriority.choices,
            "assignee": assignee,
            "members": members,
            "sla": sla_filter,
            "sla_states": SLA_STATES.items(),
            "query": query,
        }
    )
    return found, context


def _export_tickets(request: WorkspaceRequest, found: Any) -> HttpResponseBase:
    from patron.crm import exporter
    from patron.crm.views_imports import export_csv

    rows = exporter.ticket_rows(found, request.workspace.pk)
    return export_csv(request, "tickets", rows, found.count())


TICKET_BULK = BulkList(
    list_name="crm:ticket_list",
    url_name="crm:ticket_bulk",
    model=Ticket,
    query=ticket_query,
    actions={
        "assign": member_value,
        "status": choice_value("status", TicketStatus.values, gettext_lazy("Choose a status.")),
        "priority": choice_value(
            "priority", TicketPriority.values, gettext_lazy("Choose a priority.")
        ),
        "delete": no_value,
    },
    apply=lambda request, bulk, ids: bulk_actions.update_tickets(
        workspace=request.workspace,
        ticket_ids=ids,
        action=bulk.action,
        value=bulk.value,
        actor=request.user,
    ),
    export=_export_tickets,
    options=(
        ("assign", gettext_lazy("Assign to")),
        ("status", gettext_lazy("Set the status")),
        ("priority", gettext_lazy("Set the priority")),
    ),
)


@workspace_view(TICKETS_VIEW)
def ticket_list(request: WorkspaceRequest) -> HttpResponse:
    bulk = bulk_form(
        request,
        TICKET_BULK,
        "ticket-bulk-form",
        _("With the ticked tickets"),
        _("Delete the ticked tickets with their conversations? This cannot be undone."),
        statuses=TicketStatus.choices,
        priorities=TicketPriority.choices,
    )
    return render_list(
        request, TICKET_SPEC, ticket_query, "crm/ticket_list.html", extra={"bulk": bulk}
    )


ticket_view_save, ticket_view_delete = view_endpoints("ticket", TICKETS_VIEW)


@workspace_view(TICKETS_VIEW)
@require_POST
def ticket_bulk(request: WorkspaceRequest) -> HttpResponseBase:
    """Assign, set the status or priority of, delete or export the ticked (or all) tickets."""
    return run_bulk(request, TICKET_BULK)


def _save_errors(form: TicketForm, exc: Exception) -> None:
    if isinstance(exc, CustomFieldInvalid):
        form.add_custom_errors(exc)
    elif isinstance(exc, tickets.TicketInvalid):
        form.add_error(exc.field if exc.field in form.fields else None, str(exc))
    else:
        form.add_error(None, str(exc))


@workspace_view(TICKETS_VIEW)
def ticket_create(request: WorkspaceRequest) -> HttpResponse:
    initial: dict[str, Any] = {"assignee": request.user}
    contact = company = None
    if request.GET.get("contact", "").isdigit():
        contact = get_object_or_404(
            Contact.objects.for_workspace(request.workspace), pk=int(request.GET["contact"])
        )
        initial["contact"] = contact.pk
    if request.GET.get("company", "").isdigit():
        company = get_object_or_404(
            Company.objects.for_workspace(request.workspace), pk=int(request.GET["company"])
        )
        initial["company"] = company.pk
    form = TicketForm(request.POST or None, workspace=request.workspace, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            ticket = tickets.open_ticket(
                workspace=request.workspace, actor=request.user, **form.service_values()
            )
        except (CustomFieldInvalid, tickets.TicketInvalid, CrossWorkspaceReference) as exc:
            _save_errors(form, exc)
        else:
            messages.success(request, _("Ticket #%(number)d opened.") % {"number": ticket.pk})
            return redirect("crm:ticket_detail", ticket_id=ticket.pk)
    if contact is not None:
        cancel = reverse("crm:contact_detail", args=[contact.pk])
    elif company is not None:
        cancel = reverse("crm:company_detail", args=[company.pk])
    else:
        cancel = reverse("crm:ticket_list")
    return render(
        request,
        "crm/ticket_form.html",
        {"form": form, "ticket": None, "for_record": contact or company, "cancel_url": cancel},
    )


def _ticket(request: WorkspaceRequest, ticket_id: int) -> Ticket:
    return get_object_or_404(
        Ticket.objects.for_workspace(request.workspace).select_related(
            "contact", "company", "assignee", "workspace"
        ),
        pk=ticket_id,
    )


@workspace_view(TICKETS_VIEW)
def ticket_edit(request: WorkspaceRequest, ticket_id: int) -> HttpResponse:
    ticket = _ticket(request, ticket_id)
    form = TicketForm(
        request.POST or None, workspace=request.workspace, initial=TicketForm.initial_for(ticket)
    )
    if request.method == "POST" and form.is_valid():
        values = form.service_values()
        try:
            tickets.update_ticket(ticket=ticket, actor=request.user, **values)
        except (CustomFieldInvalid, tickets.TicketInvalid, CrossWorkspaceReference) as exc:
            _save_errors(form, exc)
        else:
            messages.success(request, _("Ticket saved."))
            return redirect("crm:ticket_detail", ticket_id=ticket.pk)
    return render(
        request,
        "crm/ticket_form.html",
        {
            "form": form,
            "ticket": ticket,
            "for_record": None,
            "cancel_url": reverse("crm:ticket_detail", args=[ticket.pk]),
        },
    )


@workspace_view(TICKETS_VIEW)
def ticket_detail(request: WorkspaceRequest, ticket_id: int) -> HttpResponse:
    ticket = _ticket(request, ticket_id)
    return render(
        request,
        "crm/ticket_detail.html",
        {
            "ticket": ticket,
            "custom_rows": custom_fields.rows_for(
                field_definitions(request.workspace, CustomFieldObject.TICKET), ticket.custom
            ),
            "tasks": ticket.tasks.select_related("assignee").order_by("completed_at", "due_at"),
            "replies": ticket.replies.select_related("author"),
            "targets": tickets.sla_targets(ticket),
            "policy": tickets.policies(request.workspace)[ticket.priority],
            "update_form": TicketUpdateForm(
                workspace=request.workspace,
                initial={
                    "status": ticket.status,
                    "priority": ticket.priority,
                    "assignee": ticket.assignee_id,
                },
            ),
            "reply_form": ReplyForm(),
        },
    )


@workspace_view(TICKETS_VIEW)
@require_POST
def ticket_reply(request: WorkspaceRequest, ticket_id: int) -> HttpResponse:
    ticket = _ticket(request, ticket_id)
    form = ReplyForm(request.POST)
    if form.is_valid():
        try:
            tickets.reply_to_ticket(
                ticket=ticket,
                author=request.user,
                body=form.cleaned_data["body"],
                internal=form.cleaned_data["internal"],
            )
        except (tickets.TicketInvalid, CrossWorkspaceReference) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request, _("Note added.") if form.cleaned_data["internal"] else _("Reply sent.")
            )
    else:
        messages.error(request, _("Write a message (at most 20,000 characters)."))
    return redirect("crm:ticket_detail", ticket_id=ticket.pk)


@workspace_view(TICKETS_VIEW)
@require_POST
def ticket_update(request: WorkspaceRequest, ticket_id: int) -> HttpResponse:
    ticket = _ticket(request, ticket_id)
    form = TicketUpdateForm(request.POST, workspace=request.workspace)
    if form.is_valid():
        try:
            tickets.update_ticket(
                ticket=ticket,
                actor=request.user,
                status=form.cleaned_data["status"],
                priority=form.cleaned_data["priority"],
                assignee=form.cleaned_data["assignee"],
            )
        except (tickets.TicketInvalid, CrossWorkspaceReference) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Ticket saved."))
    else:
        messages.error(request, _("Choose a status, a priority and a member to assign."))
    return redirect("crm:ticket_detail", ticket_id=ticket.pk)


# --- Settings: SLA policies and business hours ------------------------------------------


class SlaSettingsForm(forms.Form):
    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policies = tickets.policies(workspace)
        for priority, label in TicketPriority.choices:
            policy = self.policies[priority]
            self.fields[f"{priority}_first"] = forms.IntegerField(
                label=_("%(priority)s: first response within (minutes)") % {"priority": label},
                min_value=1,
                max_value=525_600,
                initial=policy.first_response_minutes,
            )
            self.fields[f"{priority}_resolution"] = forms.IntegerField(
                label=_("%(priority)s: resolved within (minutes)") % {"priority": label},
                min_value=1,
                max_value=525_600,
                initial=policy.resolution_minutes,
            )
            self.fields[f"{priority}_business"] = forms.BooleanField(
                label=_("%(priority)s: count business hours only") % {"priority": label},
                required=False,
                initial=policy.business_hours,
            )
        current = tickets.schedule(workspace)
        for day, label in enumerate(WEEKDAYS):
            hours = current.get(day)
            self.fields[f"day_{day}_opens"] = forms.TimeField(
                label=_("%(day)s opens") % {"day": label},
                required=False,
                initial=hours[0] if hours else None,
                widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            )
            self.fields[f"day_{day}_closes"] = forms.TimeField(
                label=_("%(day)s closes") % {"day": label},
                required=False,
                initial=hours[1] if hours else None,
                widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                help_text=_("Leave both empty for a closed day."),
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        open_days = 0
        for day in range(7):
            opens, closes = data.get(f"day_{day}_opens"), data.get(f"day_{day}_closes")
            if (opens is None) != (closes is None):
                self.add_error(f"day_{day}_closes", _("Give both times, or neither."))
            elif opens is not None and closes is not None:
                if closes <= opens:
                    self.add_error(f"day_{day}_closes", _("Closing comes after opening."))
                open_days += 1
        if not open_days:
            raise forms.ValidationError(_("Open at least one day a week."))
        return data


@workspace_view(SETTINGS_MANAGE)
def sla_settings(request: WorkspaceRequest) -> HttpResponse:
    form = SlaSettingsForm(request.POST or None, workspace=request.workspace)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        targets = {
            priority: tickets.Target(
                first_response_minutes=data[f"{priority}_first"],
                resolution_minutes=data[f"{priority}_resolution"],
                business_hours=data[f"{priority}_business"],
            )
            for priority in TicketPriority.values
        }
        schedule: dict[int, tuple[time, time]] = {
            day: (data[f"day_{day}_opens"], data[f"day_{day}_closes"])
            for day in range(7)
            if data.get(f"day_{day}_opens") and data.get(f"day_{day}_closes")
        }
        try:
            tickets.save_service_levels(
                workspace=request.workspace, targets=targets, schedule=schedule, actor=request.user
            )
        except tickets.TicketInvalid as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(
                request,
                _("Service levels saved. They apply to tickets opened from now on."),
            )
            return redirect("crm:sla_settings")
    return render(request, "crm/settings_sla.html", {"tab": "sla", "form": form})


@workspace_view(TICKETS_VIEW)
def ticket_export(request: WorkspaceRequest) -> HttpResponseBase:
    """The tickets of the list as filtered on screen, as CSV (needs the export permission)."""
    if not request.membership.can(DATA_EXPORT):
        raise PermissionDenied
    found, _context = ticket_query(request)
    return _export_tickets(request, found)
