"""A report's recipient filter turned into a segment ("received it but did not open").

The segment is behavioural: it reads the activity log, not the deliveries, so
it stays a live definition anyone can open and edit in the segment builder.
Each filter of ``patron.mail.reports.RECIPIENT_FILTERS`` has its definition
over the campaign's events (all of them carry ``campaign``, the campaign's id):

* opened: ``email.opened`` or ``email.clicked`` (a click is an open, as in the report);
* not_opened: ``email.sent``, and never ``email.opened``, ``email.clicked`` nor
  ``email.bounced``;
* clicked: ``email.clicked``; not_clicked: ``email.sent``, never ``email.clicked``
  nor ``email.bounced``;
* bounced: ``email.bounced``; unsubscribed: ``email.unsubscribed``.

The activity log records a person's opens and clicks only (machine hits stay
in the report's own counts), which is what the report's filters count too.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from patron.audience import segment_services
from patron.audience.models import Segment
from patron.core.models import User
from patron.mail.models import Campaign
from patron.mail.reports import RECIPIENT_FILTERS, UnknownFilter

NAME_LIMIT = 100


def _event(campaign: Campaign, kind: str, *, never: bool = False) -> dict:
    return {
        "type": "event",
        "kind": kind,
        "filters": [{"property": "campaign", "op": "eq", "value": str(campaign.pk)}],
        "count": {"op": "never", "value": 0} if never else {"op": "at_least", "value": 1},
        "window": {"type": "any"},
    }


def segment_definition(campaign: Campaign, filter_name: str) -> dict[str, Any]:
    """The segment definition of one recipient filter; raises ``UnknownFilter``."""
    sent = _event(campaign, "email.sent")
    if filter_name == "opened":
        return {
            "match": "any",
            "conditions": [_event(campaign, "email.opened"), _event(campaign, "email.clicked")],
        }
    if filter_name == "not_opened":
        return {
            "match": "all",
            "conditions": [
                sent,
                _event(campaign, "email.opened", never=True),
                _event(campaign, "email.clicked", never=True),
                _event(campaign, "email.bounced", never=True),
            ],
        }
    if filter_name == "clicked":
        return {"match": "all", "conditions": [_event(campaign, "email.clicked")]}
    if filter_name == "not_clicked":
        return {
            "match": "all",
            "conditions": [
                sent,
                _event(campaign, "email.clicked", never=True),
                _event(campaign, "email.bounced", never=True),
            ],
        }
    if filter_name == "bounced":
        return {"match": "all", "conditions": [_event(campaign, "email.bounced")]}
    if filter_name == "unsubscribed":
        return {"match": "all", "conditions": [_event(campaign, "email.unsubscribed")]}
    raise UnknownFilter(filter_name)


def _free_name(campaign: Campaign, wanted: str) -> str:
    """``wanted``, or ``wanted (2)``, ``(3)``... when a segment has that name already."""
    taken = {
        name.casefold()
        for name in Segment.objects.for_workspace(campaign.workspace_id)
        .filter(name__istartswith=wanted)
        .values_list("name", flat=True)
    }
    name, number = wanted, 1
    while name.casefold() in taken:
        number += 1
        name = f"{wanted} ({number})"
    return name


def create_recipient_segment(
    *, campaign: Campaign, filter_name: str, actor: User | None
) -> Segment:
    """A new segment of the campaign's recipients that match ``filter_name``.

    Named after the campaign and the filter ("Spring news: did not open"), with
    a number added when that name is taken. Raises ``UnknownFilter`` and the
    segment service's errors.
    """
    if filter_name not in RECIPIENT_FILTERS:
        raise UnknownFilter(filter_name)
    label = str(RECIPIENT_FILTERS[filter_name]).lower()
    room = NAME_LIMIT - len(label) - 8  # ": " and a " (99)" to tell names apart
    name = _free_name(campaign, f"{campaign.name[:room].rstrip()}: {label}")
    description = _("Recipients of the campaign “%(campaign)s”: %(filter)s.") % {
        "campaign": campaign.name,
        "filter": label,
    }
    return segment_services.create_segment(
        workspace=campaign.workspace,
        name=name,
        definition=segment_definition(campaign, filter_name),
        description=description,
        actor=actor,
    )
