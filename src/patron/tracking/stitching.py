"""Identity stitching: the one place where a web visitor becomes a known contact.

A visitor (a first-party id the tracker keeps in the browser) is recognised
when they send a form (``patron.capture.services.submit_form``), arrive from a
click in a Patron email (the click redirect adds a signed reference the
tracker sends back), are identified by the page (``patron.identify(email)``,
when the site allows it) or through the API. ``stitch_visitor()`` then, in one
transaction:

- links the visitor id to the contact (``VisitorLink``; a contact may have many
  visitor ids, a visitor id one contact at a time: the newest wins);
- gives every earlier anonymous event of that visitor to the contact (one
  set-based UPDATE), so the page views before the form are on the timeline;
- sets the contact's first and last touch (UTM parameters, referrer, landing
  page) from the visitor's page views;
- records ``web.identified`` when the link is new.

Later collects carry the contact: the writer looks the visitor up when it
writes a batch (``patron.tracking.web.write_web_events``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.db import IntegrityError, transaction
from django.utils import timezone

from patron.activity.models import Event
from patron.activity.services import assign_visitor_events, record
from patron.crm import services as crm
from patron.crm.models import Contact
from patron.crm.touches import Touch, record_touches
from patron.mail import tokens
from patron.tracking.models import VisitorLink

# The signed reference a click from an email adds to a site's address.
REFERENCE_PARAMETER = "_pt"
REFERENCE_KIND = "web"
# How long after the click its reference is accepted: the tracker sends it as the page
# loads; an address copied or shared later no longer identifies anyone.
REFERENCE_LIFETIME_SECONDS = 3600
UTM_NAMES = ("source", "medium", "campaign", "term", "content")
# Page views looked at for a visitor's touches when they are recognised.
TOUCH_SCAN_LIMIT = 1000


class Method:
    FORM = "form"
    EMAIL_CLICK = "email_click"
    IDENTIFY = "identify"
    API = "api"


def stitch_visitor(*, workspace_id: int, visitor_id: str, contact_id: int, method: str) -> int:
    """Recognise ``visitor_id`` as the contact (see the module docstring); returns how many
    earlier events were given to the contact."""
    if not visitor_id:
        return 0
    with transaction.atomic():
        link = (
            VisitorLink.objects.for_workspace(workspace_id)
            .select_for_update()
            .filter(visitor_id=visitor_id)
            .first()
        )
        is_new = link is None or link.contact_id != contact_id
        if link is None:
            try:
                with transaction.atomic():
                    VisitorLink.objects.create(
                        workspace_id=workspace_id,
                        visitor_id=visitor_id,
                        contact_id=contact_id,
                        method=method,
                    )
            except IntegrityError:  # linked meanwhile by another request: the newest wins
                VisitorLink.objects.for_workspace(workspace_id).filter(
                    visitor_id=visitor_id
                ).update(contact_id=contact_id, method=method, linked_at=timezone.now())
        elif is_new:
            link.contact_id = contact_id
            link.method = method
            link.linked_at = timezone.now()
            link.save(update_fields=["contact", "method", "linked_at"])
        moved = assign_visitor_events(
            workspace=workspace_id, visitor_id=visitor_id, contact_id=contact_id
        )
        first, last = visitor_touches(workspace_id, visitor_id)
        if first is not None:
            record_touches(workspace=workspace_id, contact_id=contact_id, first=first, last=last)
        if is_new:
            record(
                workspace=workspace_id,
                kind="web.identified",
                contact_id=contact_id,
                visitor_id=visitor_id,
                properties={"method": method, "events_moved": moved},
            )
    return moved


def contacts_of_visitors(
    keys: Iterable[tuple[int, str]],
) -> dict[tuple[int, str], int]:
    """The contact of each (workspace id, visitor id) that is known, in one query."""
    keys = set(keys)
    if not keys:
        return {}
    workspaces = {workspace_id for workspace_id, _visitor in keys}
    rows = (
        VisitorLink.objects.unscoped()
        .filter(workspace_id__in=workspaces, visitor_id__in={v for _w, v in keys})
        .values_list("workspace_id", "visitor_id", "contact_id")
    )
    return {(w, v): c for w, v, c in rows if (w, v) in keys}


# --- Touches ---------------------------------------------------------------------------


def touch_of(properties: Mapping[str, Any], at: Any = None) -> Touch | None:
    """The touch a page view makes, or None: a touch has UTM parameters or a referrer on
    another site than the page's."""
    utm = {name: str(properties.get(f"utm_{name}") or "") for name in UTM_NAMES}
    url = str(properties.get("url") or "")
    referrer = str(properties.get("referrer") or "")
    external = bool(referrer) and urlsplit(referrer).netloc.lower() != urlsplit(url).netloc.lower()
    if not any(utm.values()) and not external:
        return None
    return Touch(
        source=utm["source"] or (urlsplit(referrer).netloc.lower() if external else ""),
        medium=utm["medium"] or ("referral" if external and not utm["source"] else ""),
        campaign=utm["campaign"],
        term=utm["term"],
        content=utm["content"],
        referrer=referrer if external else "",
        landing_url=url,
        at=at,
    )


def utm_parameters(url: str) -> dict[str, str]:
    """The UTM parameters of an address (``utm_source`` ...), the first of each."""
    found: dict[str, str] = {}
    for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=False):
        if name.startswith("utm_") and name[4:] in UTM_NAMES and name not in found:
            found[name] = value[:200]
    return found


def visitor_touches(workspace_id: int, visitor_id: str) -> tuple[Touch | None, Touch | None]:
    """The first and the last touch among a visitor's page views."""
    views = (
        Event.objects.for_workspace(workspace_id)
        .filter(visitor_id=visitor_id, kind="page.viewed")
        .order_by("occurred_at", "id")
        .values_list("properties", "occurred_at")[:TOUCH_SCAN_LIMIT]
    )
    touches = [t for t in (touch_of(p, at) for p, at in views) if t is not None]
    if not touches:
        return None, None
    return touches[0], touches[-1]


# --- Email clicks ----------------------------------------------------------------------


def sign_reference(*, workspace_id: int, contact_id: int, now: float | None = None) -> str:
    """The reference a click adds to a site's address: workspace, contact, the second."""
    made = int(time.time() if now is None else now)
    return tokens.sign(REFERENCE_KIND, workspace_id, contact_id, made)


def read_reference(token: str, *, now: float | None = None) -> tuple[int, int] | None:
    """(workspace id, contact id) of a reference still valid, or None."""
    values = tokens.unsign(REFERENCE_KIND, token)
    if values is None or len(values) != 3:
        return None
    workspace_id, contact_id, made = values
    age = (time.time() if now is None else now) - made
    if age < -60 or age > REFERENCE_LIFETIME_SECONDS:
        return None
    return workspace_id, contact_id


def stitch_reference(*, workspace_id: int, visitor_id: str, token: str) -> int | None:
    """Recognise the visitor from an email click's reference; the contact, or None when the
    reference is not valid (forged, expired, another workspace's, a deleted contact)."""
    found = read_reference(token)
    if found is None or found[0] != workspace_id:
        return None
    contact_id = found[1]
    if not Contact.objects.for_workspace(workspace_id).filter(pk=contact_id).exists():
        return None
    stitch_visitor(
        workspace_id=workspace_id,
        visitor_id=visitor_id,
        contact_id=contact_id,
        method=Method.EMAIL_CLICK,
    )
    return contact_id


@dataclass(frozen=True)
class Identified:
    contact_id: int
    created: bool
    events_moved: int


def identify_visitor(
    *, workspace_id: int, visitor_id: str, email: str, create: bool = False, source: str = ""
) -> Identified | None:
    """Recognise the visitor as the contact with ``email``, or None when no contact has it
    and ``create`` is off (a page may only name people already known: an anonymous page
    must not be able to add contacts). With ``create`` (the API) a new contact is made."""
    from patron.core.models import Workspace

    workspace = Workspace.objects.get(pk=workspace_id)
    contact = crm.find_contact_by_email(workspace, email)
    created = False
    with transaction.atomic():
        if contact is None:
            if not create:
                return None
            try:
                contact = crm.create_contact(
                    workspace=workspace, email=email.strip().lower(), source=source[:100]
                )
                created = True
            except crm.DuplicateContact as exc:  # created meanwhile
                contact = exc.existing
        moved = stitch_visitor(
            workspace_id=workspace_id,
            visitor_id=visitor_id,
            contact_id=contact.pk,
            method=Method.API if create else Method.IDENTIFY,
        )
    return Identified(contact_id=contact.pk, created=created, events_moved=moved)


def move_visitor_links(workspace_id: int, from_contact_id: int, to_contact_id: int) -> None:
    """A merge: the merged-away contact's browsers are the kept contact's from now on."""
    VisitorLink.objects.for_workspace(workspace_id).filter(contact_id=from_contact_id).update(
        contact_id=to_contact_id
    )
