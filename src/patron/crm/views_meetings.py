"""Logging calls, scheduling meetings, recording their outcome, and the calendar."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.models import User
from patron.core.roles import CONTACTS_EDIT, CONTACTS_VIEW
from patron.crm import meetings
from patron.crm.forms import CallForm, MeetingForm, MeetingOutcomeForm
from patron.crm.models import Contact, Meeting


def _contact_from_query(request: WorkspaceRequest) -> Contact | None:
    value = request.GET.get("contact", "")
    if not value.isdigit():
        return None
    return get_object_or_404(
        Contact.objects.for_workspace(request.workspace).select_related("company"),
        pk=int(value),
    )


@workspace_view(CONTACTS_EDIT)
def call_create(request: WorkspaceRequest) -> HttpResponse:
    contact = _contact_from_query(request)
    if contact is None:
        messages.error(request, _("Log a call from the contact's page."))
        return redirect("crm:contact_list")
    initial = {"occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M")}
    form = CallForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        meetings.log_call(
            workspace=request.workspace,
            contact=contact,
            logged_by=request.user,
            **form.cleaned_data,
        )
        messages.success(request, _("Call logged."))
        return redirect("crm:contact_detail", contact_id=contact.pk)
    return render(request, "crm/call_form.html", {"form": form, "contact": contact})


@workspace_view(CONTACTS_EDIT)
def meeting_create(request: WorkspaceRequest) -> HttpResponse:
    contact = _contact_from_query(request)
    initial: dict[str, Any] = {"organizer": request.user}
    if contact is not None:
        initial["contacts"] = [contact]
    if request.GET.get("day") and parse_date(request.GET["day"]):
        initial["starts_at"] = f"{request.GET['day']}T10:00"
        initial["ends_at"] = f"{request.GET['day']}T10:30"
    form = MeetingForm(request.POST or None, workspace=request.workspace, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            meeting = meetings.schedule_meeting(
                workspace=request.workspace,
                title=data["title"],
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
                contacts=list(data["contacts"]),
                organizer=data["organizer"],
                location=data["location"],
                description=data["description"],
                actor=request.user,
            )
        except meetings.MeetingInvalid as exc:
            form.add_error(exc.field, str(exc))
        else:
            messages.success(request, _("Meeting scheduled."))
            return redirect("crm:meeting_detail", meeting_id=meeting.pk)
    return render(request, "crm/meeting_form.html", {"form": form, "contact": contact})


def _meeting(request: WorkspaceRequest, meeting_id: int) -> Meeting:
    return get_object_or_404(
        Meeting.objects.for_workspace(request.workspace).select_related("organizer"),
        pk=meeting_id,
    )


@workspace_view(CONTACTS_VIEW)
def meeting_detail(request: WorkspaceRequest, meeting_id: int) -> HttpResponse:
    meeting = _meeting(request, meeting_id)
    form = MeetingOutcomeForm(initial={"outcome": meeting.outcome})
    return render(
        request,
        "crm/meeting_detail.html",
        {"meeting": meeting, "contacts": meeting.contacts.order_by("last_name"), "form": form},
    )


@workspace_view(CONTACTS_EDIT)
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


@workspace_view(CONTACTS_VIEW)
def calendar(request: WorkspaceRequest) -> HttpResponse:
    """Week or month of meetings and due tasks, in the workspace's time zone."""
    zone = ZoneInfo(request.workspace.time_zone or "UTC")
    today = timezone.now().astimezone(zone).date()
    day = parse_date(request.GET.get("date", "")) or today
    mode = "month" if request.GET.get("view") == "month" else "week"
    who = request.GET.get("user", "me")
    user: User | None = request.user
    if who == "all":
        user = None
    elif who.isdigit():
        user = (
            User.objects.filter(
                pk=int(who), memberships__workspace=request.workspace, memberships__is_active=True
            ).first()
            or request.user
        )
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
        request.workspace, first=first, last=last, zone=zone, user=user, in_range=bounds
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
            "members": User.objects.filter(
                memberships__workspace=request.workspace, memberships__is_active=True
            ).order_by("name", "email"),
            "previous_url": link(previous),
            "next_url": link(following),
            "today_url": link(today),
            "week_url": link(day, "week"),
            "month_url": link(day, "month"),
            "zone": zone.key,
        },
    )
