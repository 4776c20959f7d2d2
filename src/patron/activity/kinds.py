"""The registry of event kinds.

Apps register the kinds they record (in their ``events.py`` or at import);
``record()`` refuses an unknown kind, so a typo never creates a new, silent
category of events. Each kind has a label for timelines and filters.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class UnknownEventKind(ValueError):
    pass


@dataclass(frozen=True)
class EventKind:
    name: str
    label: str | Promise
    # "contact" events are about a person; "workspace" events about the business.
    about_contact: bool = True


EVENT_KINDS: dict[str, EventKind] = {}


def register_kind(name: str, label: str | Promise, *, about_contact: bool = True) -> EventKind:
    if "." not in name:
        raise ValueError(f"Event kinds are '<area>.<what>', got {name!r}")
    kind = EventKind(name=name, label=label, about_contact=about_contact)
    existing = EVENT_KINDS.get(name)
    if existing is not None and existing != kind:
        raise ValueError(f"Event kind {name!r} is registered twice with different labels")
    EVENT_KINDS[name] = kind
    return kind


def get_kind(name: str) -> EventKind:
    try:
        return EVENT_KINDS[name]
    except KeyError:
        raise UnknownEventKind(f"Unknown event kind {name!r}") from None


# The kinds of the whole product, so that every app records into one vocabulary.
for _name, _label in [
    ("email.sent", _("Email sent")),
    ("email.delivered", _("Email delivered")),
    ("email.opened", _("Email opened")),
    ("email.clicked", _("Email link clicked")),
    ("email.bounced", _("Email bounced")),
    ("email.complained", _("Marked as spam")),
    ("email.unsubscribed", _("Unsubscribed")),
    ("email.replied", _("Replied by email")),
    ("page.viewed", _("Page viewed")),
    ("form.submitted", _("Form submitted")),
    ("file.downloaded", _("File downloaded")),
    ("contact.created", _("Contact created")),
    ("contact.field_changed", _("Contact field changed")),
    ("contact.merged", _("Duplicate merged in")),
    ("contact.lifecycle_changed", _("Lifecycle stage changed")),
    ("contact.score_changed", _("Score changed")),
    ("contact.note_added", _("Note added")),
    ("call.logged", _("Call logged")),
    ("meeting.scheduled", _("Meeting scheduled")),
    ("meeting.outcome_recorded", _("Meeting outcome recorded")),
    ("company.created", _("Company created")),
    ("company.field_changed", _("Company field changed")),
    ("company.merged", _("Duplicate company merged in")),
    ("deal.created", _("Deal created")),
    ("deal.stage_changed", _("Deal stage changed")),
    ("quote.created", _("Quote created")),
    ("quote.sent", _("Quote sent")),
    ("quote.viewed", _("Quote opened by the customer")),
    ("quote.accepted", _("Quote accepted")),
    ("quote.declined", _("Quote declined")),
    ("quote.expired", _("Quote expired")),
    ("ticket.opened", _("Ticket opened")),
    ("ticket.status_changed", _("Ticket status changed")),
    ("ticket.replied", _("Ticket answered")),
    ("ticket.solved", _("Ticket solved")),
    ("task.created", _("Task created")),
    ("task.completed", _("Task completed")),
    ("custom.event", _("Custom event")),
]:
    register_kind(_name, _label)
