"""Logging calls, scheduling meetings, recording their outcome, and the calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.models import User
from patron.core.roles import CALLS_MEETINGS_EDIT, CALLS_MEETINGS_VIEW, DEALS_VIEW
from patron.core.selectors import active_users
from patron.crm import meetings, selectors
from patron.crm.forms import CallForm, MeetingForm, MeetingOutcomeForm
from patron.crm.models import Company, Contact, Deal, Meeting


@dataclass
class Origin:
    """The page a call or meeting is added from: a contact's, a company's or a deal's."""

    contact: Contact | None = None
    company: Company | None = None
    deal: Deal | None = None

    @property
    def record(self) -> Contact | Company | Deal:
        found = self.contact or self.company or self.deal
        assert found is not None
        return found

    @property
    def url(self) -> str:
        if self.contact is not None:
            return reverse("crm:contact_detail", args=[self.contact.pk])
        if self.company is not None:
            return reverse("crm:company_detail", args=[self.company.pk])
        return reverse("crm:deal_detail", args=[self.record.pk])


def _origin(request: WorkspaceRequest) -> Origin | None:
    """The contact, company or deal named in the query string, if any."""
    workspace = request.workspace
    for name in ("contact", "company", "deal"):
        value = request.GET.get(name, "")
        if not value.isdigit():
            continue
        if name == "contact":
            contact = get_object_or_404(
                Contact.objects.for_workspace(workspace).select_related("company"), pk=int(value)
            )
            return Origin(contact=contact)
        if name == "company":
            return Origin(
                company=get_object_or_404(Company.objects.for_workspace(workspace), pk=int(value))
            )
        if not request.membership.can(DEALS_VIEW):
            raise PermissionDenied
        deal = get_object_or_404(
            Deal.objects.for_workspace(workspace).select_related("company"), pk=int(value)
        )
        return Origin(deal=deal)
    return None


def _deal_choices(request: WorkspaceRequest) -> QuerySet[Deal] | None:
    """Deals a meeting may be filed under, or None for roles that do not see deals."""
    if not request.membership.can(DEALS_VIEW):
        return None
    return Deal.objects.for_workspace(request.workspace).order_by("name")


# --- Calls --------------------------------------------------------------------------


@workspace_view(CALLS_MEETINGS_EDIT)
def call_create(request: WorkspaceRequest) -> HttpResponse:
    """Log a call from a contact's page, or with one of a company's or a deal's people."""
    origin = _origin(request)
    if origin is None:
        messages.error(request, _("Log a call from a contact's, company's or deal's page."))
        return redirect("crm:contact_list")
    sees_deals = request.membership.can(DEALS_VIEW)
    contacts: QuerySet[Contact] | None = None
    deals: QuerySet[Deal] | None = None
    if origin.contact is not None:
        deals = origin.contact.deals.order_by("name") if sees_deals else None
    elif origin.company is not None:
        contacts = selectors.company_contacts(origin.company)
        deals = origin.company.deals.order_by("name") if sees_deals else None
    elif origin.deal is not None:
        contacts = origin.deal.contacts.order_by("last_name", "first_name")
    initial = {"occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M")}
    form = CallForm(request.POST or None, initial=initial, contacts=contacts, deals=deals)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        contact = origin.contact or data["contact"]
        try:
            meetings.log_call(
                workspace=request.workspace,
                contact=contact,
                company=origin.company or (origin.deal.company if origin.deal else None),
                deal=origin.deal or data.get("deal"),
                outcome=data["outcome"],
                direction=data["direction"],
                occurred_at=data["occurred_at"],
                duration_minutes=data["duration_minutes"],
                notes=data["notes"],
                logged_by=request.user,
            )
        except meetings.CallInvalid as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, _("Call with %(name)s logged.") % {"name": contact})
            return redirect(origin.url)
    return render(
        request,
        "crm/call_form.html",
        {"form": form, "origin": origin, "no_contacts": contacts is not None and not contacts},
    )


# --- Meetings -----------------------------------------------------------------------


def _meeting_values(form: MeetingForm) -> dict[str, Any]:
    data = form.cleaned_data
    values = {
        name: data[name]
        for name in ("title", "starts_at", "ends_at", "location", "description", "organizer")
    }
    values["company"] = data["company"]
    if "deal" in form.fields:
        values["deal"] = data["deal"]
    return values


@workspace_view(CALLS_MEETINGS_EDIT)
def meeting_create(request: WorkspaceRequest) -> HttpResponse:
    """Schedule a meeting from a contact, company or deal page, or from the calendar."""
    origin = _origin(request)
    initial: dict[str, Any] = {"organizer": request.user.pk}
    if origin is not None and origin.contact is not None:
        initial["contacts"] = [origin.contact.pk]
        initial["company"] = origin.contact.company_id
    elif origin is not None and origin.company is not None:
        initial["company"] = origin.company.pk
    elif origin is not None and origin.deal is not None:
        initial["contacts"] = list(origin.deal.contacts.values_list("pk", flat=True))
        initial["company"] = origin.deal.company_id
        initial["deal"] = origin.deal.pk
    day = parse_date(request.GET.get("day", "") or "")
    if day is not None:
        initial["starts_at"] = f"{day.isoformat()}T10:00"
        initial["ends_at"] = f"{day.isoformat()}T10:30"
    form = MeetingForm(
        request.POST or None,
        workspace=request.workspace,
        deals=_deal_choices(request),
        initial=initial,
    )
    if request.method == "POST" and form.is_valid():
        try:
            meeting = meetings.schedule_meeting(
                workspace=request.workspace,
                contacts=list(form.cleaned_data["contacts"]),
                actor=request.user,
                **_meeting_values(form),
            )
        except meetings.MeetingInvalid as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, _("Meeting scheduled."))
            return redirect("crm:meeting_detail", meeting_id=meeting.pk)
    cancel_url = origin.url if origin is not None else reverse("crm:calendar")
    return render(
        request,
        "crm/meeting_form.html",
        {"form": form, "origin": origin, "meeting": None, "cancel_url": cancel_url},
    )


def _meeting(request: WorkspaceRequest, meeting_id: int) -> Meeting:
    return get_object_or_404(
        Meeting.objects.for_workspace(request.workspace).select_related(
            "organizer", "company", "deal"
        ),
        pk=meeting_id,
    )


@workspace_view(CALLS_MEETINGS_VIEW)
def meeting_detail(request: WorkspaceRequest, meeting_id: int) -> HttpResponse:
    meeting = _meeting(request, meeting_id)
    form = MeetingOutcomeForm(initial={"outcome": meeting.outcome})
    return render(
        request,
        "crm/meeting_detail.html",
        {
            "meeting": meeting,
            "contacts": meeting.contacts.order_by("last_name", "first_name"),
            "form": form,
            "sees_deals": request.membership.can(DEALS_VIEW),
        },
    )


@workspace_view(CALLS_MEETINGS_EDIT)
def meeting_edit(request: WorkspaceRequest, meeting_id: int) -> HttpResponse:
    meeting = _meeting(request, meeting_id)
    form = MeetingForm(
        request.POST or None,
        workspace=request.workspace,
        deals=_deal_choices(request),
        initial=MeetingForm.initial_for(meeting),
    )
    if request.method == "POST" and form.is_valid():
        try:
            meetings.update_meeting(
                meeting=meeting,
                actor=request.user,
                contacts=list(form.cleaned_data["contacts"]),
                **_meeting_values(form),
            )
        except meetings.MeetingInvalid as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, _("Meeting saved."))
            return redirect("crm:meeting_detail", meeting_id=meeting.pk)
    return render(
        request,
        "crm/meeting_form.html",
        {
            "form": form,
            "origin": None,
            "meeting": meeting,
            "cancel_url": reverse("crm:meeting_detail", args=[meeting.pk]),
        },
    )


@workspace_view(CALLS_MEETINGS_EDIT)
@require_POST
def meeting_outcome(request: WorkspaceRequest, meeting_id: int) -> HttpResponse:
    meeting = _meeting(request, meeting_id)
    form = MeetingOutcomeForm(request.POST)
    if form.is_valid():
        meetings.record_meeting_outcome(meeting=meeting, actor=request.user, **form.cleaned_data)
        messages.success(request, _("Outcome recorded."))
    else:
        messages.error(request, _("Choose an outcome."))
    return redirect("crm:meeting_detail", meeting_id=meeting.pk)


@workspace_view(CALLS_MEETINGS_EDIT)
@require_POST
def meeting_delete(request: WorkspaceRequest, meeting_id: int) -> HttpResponse:
    meeting = _meeting(request, meeting_id)
    day = timezone.localtime(meeting.starts_at).date()
    meetings.delete_meeting(meeting=meeting, actor=request.user)
    messages.success(request, _("Meeting deleted."))
    return redirect(f"{reverse('crm:calendar')}?{urlencode({'date': day.isoformat()})}")


# --- The calendar -------------------------------------------------------------------


def _calendar_member(request: WorkspaceRequest, who: str) -> tuple[str, User | None]:
    """("me" | "all" | a member's id, the user to narrow to or None for everyone)."""
    if who == "all":
        return who, None
    if who.isdigit():
        member = User.objects.filter(
            pk=int(who), memberships__workspace=request.workspace, memberships__is_active=True
        ).first()
        if member is not None:
            return who, member
    return "me", request.user


@workspace_view(CALLS_MEETINGS_VIEW)
def calendar(request: WorkspaceRequest) -> HttpResponse:
    """A week or a month of meetings and due tasks, in the workspace's time zone."""
    zone = ZoneInfo(request.workspace.time_zone or "UTC")
    today = timezone.now().astimezone(zone).date()
    day = parse_date(request.GET.get("date", "") or "") or today
    mode = "month" if request.GET.get("view") == "month" else "week"
    who, user = _calendar_member(request, request.GET.get("user", "me"))
    if mode == "week":
        first, last = meetings.week_bounds(day)
        bounds = (first, last)
        previous, following = day - timedelta(days=7), day + timedelta(days=7)
    else:
        first, last, month_start, month_end = meetings.month_bounds(day)
        bounds = (month_start, month_end)
        previous = (month_start - timedelta(days=1)).replace(day=1)
        following = month_end + timedelta(days=1)
    days = meetings.calendar_days(
        request.workspace,
        first=first,
        last=last,
        zone=zone,
        user=user,
        in_range=bounds,
        today=today,
    )

    def link(target: date, view: str = mode) -> str:
        return "?" + urlencode({"view": view, "date": target.isoformat(), "user": who})

    return render(
        request,
        "crm/calendar.html",
        {
            "mode": mode,
            "day": day,
            "weeks": [days[i : i + 7] for i in range(0, len(days), 7)],
            "range_start": bounds[0],
            "range_end": bounds[1],
            "who": who,
            "members": active_users(request.workspace),
            "previous_url": link(previous),
            "next_url": link(following),
            "today_url": link(today),
            "week_url": link(day, "week"),
            "month_url": link(day, "month"),
            "zone": zone,
        },
    )
