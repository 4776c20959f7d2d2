"""First and last touch: where a contact came from on the web.

A **touch** is a visit that says where it came from: UTM parameters in the
landing page's address, or a referrer on another site. The web tracker hands
touches over (``patron.tracking.stitching``) when it learns who a visitor is
and whenever a known visitor arrives again with one. The first touch is set
once and never overwritten; the last touch follows the newest one (a touch
older than the one already kept changes nothing, so touches may arrive out of
order).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from patron.core.models import Workspace
from patron.crm.models import Contact

TEXT_LIMIT = 200
URL_LIMIT = 2000


@dataclass(frozen=True)
class Touch:
    source: str = ""
    medium: str = ""
    campaign: str = ""
    term: str = ""
    content: str = ""
    referrer: str = ""
    landing_url: str = ""
    at: datetime | None = None

    def values(self, prefix: str) -> dict[str, object]:
        """The contact's columns for this touch (``first_touch_`` or ``last_touch_``)."""
        result: dict[str, object] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, str):
                limit = URL_LIMIT if item.name in ("referrer", "landing_url") else TEXT_LIMIT
                value = value[:limit]
            result[f"{prefix}{item.name}"] = value
        return result


def record_touches(
    *, workspace: Workspace | int, contact_id: int, first: Touch | None, last: Touch | None
) -> bool:
    """Keep ``first`` as the contact's first touch if it has none, and ``last`` as its last
    touch if newer than the one kept; returns whether anything changed."""
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    with transaction.atomic():
        contact = (
            Contact.objects.for_workspace(workspace_id)
            .select_for_update()
            .filter(pk=contact_id)
            .only("first_touch_at", "last_touch_at")
            .first()
        )
        if contact is None:
            return False
        changes: dict[str, object] = {}
        if first is not None and contact.first_touch_at is None:
            changes.update(first.values("first_touch_"))
            changes["first_touch_at"] = first.at or timezone.now()
        if last is not None:
            at = last.at or timezone.now()
            if contact.last_touch_at is None or at > contact.last_touch_at:
                changes.update(last.values("last_touch_"))
                changes["last_touch_at"] = at
        if not changes:
            return False
        Contact.objects.for_workspace(workspace_id).filter(pk=contact_id).update(**changes)
        return True


def take_touches(*, primary: Contact, other: Contact) -> None:
    """Before a merge saves ``primary``: the earlier first touch of the two and the later
    last touch (set on ``primary``, not saved)."""
    if other.first_touch_at and (
        primary.first_touch_at is None or other.first_touch_at < primary.first_touch_at
    ):
        for item in fields(Touch):
            name = f"first_touch_{item.name}"
            setattr(primary, name, getattr(other, name))
    if other.last_touch_at and (
        primary.last_touch_at is None or other.last_touch_at > primary.last_touch_at
    ):
        for item in fields(Touch):
            name = f"last_touch_{item.name}"
            setattr(primary, name, getattr(other, name))
