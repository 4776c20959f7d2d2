"""Ticket display helpers: SLA badges and "due in 2 h 10 min"."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

from patron.crm.models import Ticket
from patron.crm.tickets import sla_targets

register = template.Library()

BADGES = {
    "breached": "text-bg-danger",
    "at_risk": "text-bg-warning",
    "on_track": "text-bg-success",
    "met": "text-bg-success",
    "met_late": "text-bg-secondary",
}


@register.filter
def sla_badge(state: str) -> str:
    return BADGES.get(state, "text-bg-light")


@register.filter
def sla_label(state: str) -> str:
    return {
        "breached": _("Breached"),
        "at_risk": _("At risk"),
        "on_track": _("On track"),
        "met": _("Met"),
        "met_late": _("Met late"),
    }.get(state, state)


@register.filter
def duration_text(seconds: int | None) -> str:
    """``7800`` -> "2 h 10 min"; sign ignored."""
    if seconds is None:
        return "—"
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        return _("%(d)d d %(h)d h") % {"d": days, "h": hours}
    if hours:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
    return _("%(m)d min") % {"m": minutes}


@register.filter
def minutes_text(minutes: int | None) -> str:
    """A policy target in minutes as "4 h 0 min", "1 d 0 h" or "45 min"."""
    return duration_text(None if minutes is None else int(minutes) * 60)


@register.simple_tag
def sla_due(ticket: Ticket) -> str:
    """The nearest open target as "due in …" or "overdue by …"."""
    pending = [t for t in sla_targets(ticket) if t.met_at is None and t.due_at is not None]
    if not pending:
        return ""
    nearest = min(pending, key=lambda t: t.remaining)
    if nearest.remaining < 0:
        return _("%(target)s overdue by %(time)s") % {
            "target": nearest.label,
            "time": duration_text(nearest.remaining),
        }
    return _("%(target)s due in %(time)s") % {
        "target": nearest.label,
        "time": duration_text(nearest.remaining),
    }
