"""Support reports: tickets opened and solved, response and resolution times, SLA breaches.

Times are the ones the SLA clock stored on each ticket when it was answered
and solved (``first_response_seconds``, ``resolution_seconds``): business or
calendar seconds as the ticket's policy said, so the report agrees with the
ticket page. Per group (priority, agent or month):

* **opened**: tickets created in the period; **solved**: tickets solved in it;
* **first response**: average and median of the tickets first answered in the
  period; **resolution**: of the tickets solved in the period;
* **breaches**, of the tickets opened in the period: answered (or solved)
  after the due time, or not yet and the due time has passed.

One query reads the few columns of the tickets touched by the period; the
grouping and medians are done in Python (SQLite has no percentile function).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from statistics import median

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.core.models import User, Workspace
from patron.crm.models import Ticket, TicketPriority
from patron.insights.periods import Filters, Period

GROUPINGS = ("priority", "agent", "month")


@dataclass(frozen=True)
class TicketRow:
    key: str  # the priority, the agent's id ("" for nobody) or the month (YYYY-MM)
    label: str
    opened: int
    solved: int
    first_response_average_hours: float | None
    first_response_median_hours: float | None
    resolution_average_hours: float | None
    resolution_median_hours: float | None
    first_response_breaches: int
    resolution_breaches: int


@dataclass
class _Group:
    opened: int = 0
    solved: int = 0
    first_response: list[int] = field(default_factory=list)
    resolution: list[int] = field(default_factory=list)
    first_response_breaches: int = 0
    resolution_breaches: int = 0


def _hours(seconds: list[int], how: str) -> float | None:
    if not seconds:
        return None
    value = sum(seconds) / len(seconds) if how == "average" else median(seconds)
    return round(value / 3600, 2)


def _late(done_at: datetime | None, due_at: datetime | None, now: datetime) -> bool:
    if due_at is None:
        return False
    return done_at > due_at if done_at is not None else due_at < now


def ticket_report(
    workspace: Workspace, period: Period, filters: Filters, *, by: str = "priority"
) -> list[TicketRow]:
    """Tickets per priority, agent or month of the period (see the module's docstring)."""
    if by not in GROUPINGS:
        raise ValueError(f"Unknown grouping {by!r}")
    now = timezone.now()
    touched = Q()
    for column in ("created_at", "solved_at", "first_responded_at"):
        touched |= Q(**period.moment_filter(column)) if period.start or period.end else Q()
    tickets = Ticket.objects.for_workspace(workspace).filter(touched)
    if filters.owner_id is not None:
        tickets = tickets.filter(assignee_id=filters.owner_id)
    if filters.priority:
        tickets = tickets.filter(priority=filters.priority)

    def inside(moment: datetime | None) -> bool:
        if moment is None:
            return False
        return (period.since is None or moment >= period.since) and (
            period.until is None or moment < period.until
        )

    def month(moment: datetime) -> str:
        return moment.astimezone(period.zone).strftime("%Y-%m")

    groups: dict[str, _Group] = {}
    if by == "priority":
        for value in TicketPriority.values:
            groups[value] = _Group()
    elif by == "month":
        for first in period.months():
            groups[first.strftime("%Y-%m")] = _Group()
    for (
        priority,
        assignee_id,
        created_at,
        solved_at,
        first_responded_at,
        first_response_seconds,
        resolution_seconds,
        first_response_due_at,
        resolution_due_at,
    ) in tickets.values_list(
        "priority",
        "assignee_id",
        "created_at",
        "solved_at",
        "first_responded_at",
        "first_response_seconds",
        "resolution_seconds",
        "first_response_due_at",
        "resolution_due_at",
    ).order_by():
        fixed_key = priority if by == "priority" else str(assignee_id or "")

        def group(moment: datetime, fixed_key: str = fixed_key) -> _Group:
            key = month(moment) if by == "month" else fixed_key
            return groups.setdefault(key, _Group())

        if inside(created_at):
            opened = group(created_at)
            opened.opened += 1
            opened.first_response_breaches += _late(first_responded_at, first_response_due_at, now)
            opened.resolution_breaches += _late(solved_at, resolution_due_at, now)
        if solved_at is not None and inside(solved_at):
            solved = group(solved_at)
            solved.solved += 1
            if resolution_seconds is not None:
                solved.resolution.append(resolution_seconds)
        if (
            first_responded_at is not None
            and inside(first_responded_at)
            and first_response_seconds is not None
        ):
            group(first_responded_at).first_response.append(first_response_seconds)

    labels: dict[str, str] = {}
    if by == "priority":
        labels = {value: str(label) for value, label in TicketPriority.choices}
    elif by == "agent":
        ids = [int(key) for key in groups if key]
        labels = {str(u.pk): u.display_name for u in User.objects.filter(pk__in=ids)}
        labels[""] = _("Nobody")
    keys = list(groups)
    if by == "month":
        keys.sort()
    elif by == "agent":
        keys.sort(key=lambda k: (k == "", str(labels.get(k, k)).casefold()))
    return [
        TicketRow(
            key=key,
            label=labels.get(key, key),
            opened=groups[key].opened,
            solved=groups[key].solved,
            first_response_average_hours=_hours(groups[key].first_response, "average"),
            first_response_median_hours=_hours(groups[key].first_response, "median"),
            resolution_average_hours=_hours(groups[key].resolution, "average"),
            resolution_median_hours=_hours(groups[key].resolution, "median"),
            first_response_breaches=groups[key].first_response_breaches,
            resolution_breaches=groups[key].resolution_breaches,
        )
        for key in keys
    ]
