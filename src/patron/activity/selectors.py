"""Reads of the activity log: timelines and the workspace's event list."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q, QuerySet

from patron.activity.kinds import EVENT_KINDS
from patron.activity.models import Event
from patron.core.models import Workspace


def events_for_workspace(workspace: Workspace, *, kind: str | None = None) -> QuerySet[Event]:
    events = Event.objects.for_workspace(workspace).select_related("actor")
    if kind:
        events = events.filter(kind=kind)
    return events.order_by("-occurred_at", "-id")


def timeline_for_contacts(
    workspace: Workspace,
    contact_ids: Iterable[int],
    *,
    kind: str | None = None,
    sources: tuple[str, Iterable[str]] | None = None,
) -> QuerySet[Event]:
    """Events of these contacts, newest first (a company's timeline is its contacts').

    ``contact_ids`` may be a queryset of ids, which then runs as a subquery.
    ``sources`` adds the events of some source records, whoever they are about:
    ``("crm.ticket", ids as strings)`` puts a company's tickets on its timeline
    even when they name no contact.
    """
    ids = contact_ids if isinstance(contact_ids, QuerySet) else list(contact_ids)
    about = Q(contact_id__in=ids)
    if sources is not None:
        source_type, source_ids = sources
        source_ids = source_ids if isinstance(source_ids, QuerySet) else list(source_ids)
        about |= Q(source_type=source_type, source_id__in=source_ids)
    return events_for_workspace(workspace, kind=kind).filter(about)


def timeline_for_contact(
    workspace: Workspace, contact_id: int, *, kind: str | None = None
) -> QuerySet[Event]:
    return events_for_workspace(workspace, kind=kind).filter(contact_id=contact_id)


def kind_choices() -> list[tuple[str, str]]:
    return sorted(((k.name, str(k.label)) for k in EVENT_KINDS.values()), key=lambda c: c[1])
