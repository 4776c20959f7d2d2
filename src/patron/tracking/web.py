"""The web tracker's collect endpoint: what a page sends, checked, then written in batches.

``POST /t/e`` takes one JSON object (sent by ``patron/tracker.js`` with
``navigator.sendBeacon``, so as ``text/plain``: no CORS preflight)::

    {"site": "<site key>", "visitor": "<first-party id>", "consent": true,
     "ref": "<signed reference of an email click>", "identify": "ada@example.com",
     "events": [
       {"type": "page", "view": "<page view id>", "url": "...", "title": "...",
        "referrer": "..."},
       {"type": "event", "name": "webinar_attended", "properties": {...}, "url": "..."},
       {"type": "leave", "view": "<page view id>", "seconds": 42}
     ]}

A page view becomes ``page.viewed`` (properties: url, title, referrer, the
UTM parameters of the url, the site, the view id; ``seconds`` on the page once
the leave arrives); a custom event becomes ``custom.event`` with its ``name``
and ``properties``. Both carry the visitor id, and the contact when the
visitor is known (looked up as the batch is written).

Authenticity is the site key together with the browser's ``Origin``, which
must be one of the site's addresses; there is no session and no CSRF token (a
public beacon). The endpoint refuses, with a JSON error
``{"error": {"code", "message", "fields"}}``: a body over
``TRACKING_COLLECT_MAX_BYTES`` (413), anything not valid (400), an unknown
site key (404), another origin (403), and what the site's settings forbid
(403: no consent given in consent mode, Do Not Track when honoured, identify
when not allowed) -- the tracker holds these back in the page already.

Both adapters, the Django view and the lean ASGI app, call ``check_request()``
and hand the rows to a writer: the ASGI app to a ``Batcher`` (one commit for
the events of many requests), the view to ``write_web_events`` directly.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction

from patron.activity.models import Event
from patron.activity.services import NewEvent, append_events
from patron.crm.touches import record_touches
from patron.tracking import stitching
from patron.tracking.models import Site

logger = logging.getLogger(__name__)

COLLECT_PATH = "/t/e"
MAX_EVENTS = 25
URL_LIMIT = 2000
TITLE_LIMIT = 300
NAME_LIMIT = 64
PROPERTIES_LIMIT = 4000  # characters of JSON
VISITOR_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
VIEW_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
EVENT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
PAGE_VIEWED = "page.viewed"
CUSTOM_EVENT = "custom.event"
LEAVE = "leave"


class CollectRefused(Exception):
    """The request is refused: ``status``, ``code`` and a message for the JSON error."""

    def __init__(
        self, status: int, code: str, message: str, fields: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}

    def body(self) -> bytes:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return json.dumps({"error": error}).encode()


# --- Sites ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SiteSettings:
    id: int
    workspace_id: int
    origins: frozenset[str]
    consent_required: bool
    honour_dnt: bool
    allow_identify: bool


class SiteCache:
    """Sites by key and the site origins of each workspace, read at most every
    ``TRACKING_SITE_CACHE_SECONDS`` per process (a missing key is remembered too)."""

    def __init__(self) -> None:
        self._by_key: dict[str, tuple[float, SiteSettings | None]] = {}
        self._origins: dict[int, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def _fresh(self, at: float) -> bool:
        return time.monotonic() - at < settings.TRACKING_SITE_CACHE_SECONDS

    def cached(self, key: str) -> tuple[bool, SiteSettings | None]:
        """(known here, the site): no database read."""
        entry = self._by_key.get(key)
        if entry is None or not self._fresh(entry[0]):
            return False, None
        return True, entry[1]

    def site(self, key: str) -> SiteSettings | None:
        known, found = self.cached(key)
        if known:
            return found
        row = Site.objects.unscoped().filter(key=key).first()
        found = None
        if row is not None:
            found = SiteSettings(
                id=row.pk,
                workspace_id=row.workspace_id,
                origins=frozenset(row.allowed_origins),
                consent_required=row.consent_required,
                honour_dnt=row.honour_dnt,
                allow_identify=row.allow_identify,
            )
        with self._lock:
            if len(self._by_key) >= 10_000:
                self._by_key.clear()
            self._by_key[key] = (time.monotonic(), found)
        return found

    def cached_origins(self, workspace_id: int) -> frozenset[str] | None:
        entry = self._origins.get(workspace_id)
        if entry is None or not self._fresh(entry[0]):
            return None
        return entry[1]

    def origins(self, workspace_id: int) -> frozenset[str]:
        """Every address of the workspace's sites (where a click may carry a reference)."""
        found = self.cached_origins(workspace_id)
        if found is not None:
            return found
        origins: set[str] = set()
        for listed in Site.objects.for_workspace(workspace_id).values_list(
            "allowed_origins", flat=True
        ):
            origins.update(listed)
        result = frozenset(origins)
        with self._lock:
            if len(self._origins) >= 10_000:
                self._origins.clear()
            self._origins[workspace_id] = (time.monotonic(), result)
        return result

    def clear(self) -> None:
        with self._lock:
            self._by_key.clear()
            self._origins.clear()


sites = SiteCache()


# --- Checking a request ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebRow:
    """One event as the writer takes it (a page view, a custom event, or a leave)."""

    workspace_id: int
    site_id: int
    visitor_id: str
    kind: str  # PAGE_VIEWED, CUSTOM_EVENT or LEAVE
    properties: dict[str, Any]
    occurred_at: datetime


@dataclass
class Collect:
    site: SiteSettings
    visitor_id: str
    rows: list[WebRow] = field(default_factory=list)
    reference: str = ""
    identify: str = ""


@dataclass(frozen=True, slots=True)
class RequestHeaders:
    origin: str
    dnt: bool
    content_length: int | None = None


def parse_body(body: bytes) -> dict[str, Any]:
    if len(body) > settings.TRACKING_COLLECT_MAX_BYTES:
        raise too_large()
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise CollectRefused(400, "invalid_json", "The body is not a JSON object.") from None
    if not isinstance(data, dict):
        raise CollectRefused(400, "invalid_json", "The body is not a JSON object.")
    return data


_ACCEPTED = [json.dumps({"accepted": n}).encode() for n in range(MAX_EVENTS + 1)]


def accepted_body(count: int) -> bytes:
    """The answer to a recorded request: ``{"accepted": <events>}``."""
    return _ACCEPTED[count]


def too_large() -> CollectRefused:
    return CollectRefused(
        413,
        "too_large",
        f"The body is larger than {settings.TRACKING_COLLECT_MAX_BYTES} bytes: send fewer "
        "events at a time.",
    )


def site_key(data: Mapping[str, Any]) -> str:
    key = data.get("site")
    if not isinstance(key, str) or not key or len(key) > 32:
        raise CollectRefused(
            400, "invalid", "The site key is missing.", {"site": ["a site key is required"]}
        )
    return key


def unknown_site() -> CollectRefused:
    return CollectRefused(
        404, "unknown_site", "No site has this key: copy the snippet again from Patron's settings."
    )


def check_request(
    data: Mapping[str, Any], site: SiteSettings, headers: RequestHeaders, *, now: datetime
) -> Collect:
    """Everything checked (origin, the site's settings, every field); raises CollectRefused."""
    origin = headers.origin.rstrip("/").lower()
    if not origin or origin not in site.origins:
        raise CollectRefused(
            403,
            "origin",
            f"This site does not send from {headers.origin or 'an unknown origin'}: add the "
            "address to the site's allowed addresses in Patron's settings.",
        )
    if site.honour_dnt and headers.dnt:
        raise CollectRefused(
            403, "do_not_track", "The browser asks not to be tracked and the site honours it."
        )
    if site.consent_required and data.get("consent") is not True:
        raise CollectRefused(
            403,
            "consent_required",
            "The site tracks only after consent: call patron.consent(true) once it is given.",
        )
    errors: dict[str, list[str]] = {}
    visitor = data.get("visitor")
    if not isinstance(visitor, str) or not VISITOR_PATTERN.match(visitor):
        errors["visitor"] = ["8 to 64 letters, digits, - or _"]
    events = data.get("events", [])
    if not isinstance(events, list):
        errors["events"] = ["a list of events"]
        events = []
    elif len(events) > MAX_EVENTS:
        errors["events"] = [f"at most {MAX_EVENTS} events per request"]
    reference = data.get("ref") or ""
    if not isinstance(reference, str) or len(reference) > 200:
        errors["ref"] = ["a reference from an email click"]
        reference = ""
    identify = data.get("identify") or ""
    if not isinstance(identify, str) or len(identify) > 254 or (identify and "@" not in identify):
        errors["identify"] = ["an email address"]
        identify = ""
    elif identify and not site.allow_identify:
        raise CollectRefused(
            403, "identify_not_allowed", "This site does not allow identify() from the page."
        )
    if not events and not reference and not identify and "events" not in errors:
        errors["events"] = ["nothing to record"]
    rows: list[WebRow] = []
    if "visitor" not in errors and "events" not in errors:
        for position, item in enumerate(events):
            try:
                rows.append(_row(item, site, str(visitor), now))
            except ValueError as exc:
                errors[f"events.{position}"] = [str(exc)]
    if errors:
        raise CollectRefused(400, "invalid", "Some fields are not valid.", errors)
    return Collect(
        site=site, visitor_id=str(visitor), rows=rows, reference=reference, identify=identify
    )


def _text(item: Mapping[str, Any], name: str, limit: int) -> str:
    value = item.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name}: text expected")
    return value[:limit].replace("\x00", "")


def _url(item: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = _text(item, name, URL_LIMIT)
    if value and not value.lower().startswith(("http://", "https://")):
        raise ValueError(f"{name}: a web address (http or https) expected")
    if required and not value:
        raise ValueError(f"{name}: required")
    return value


def _occurred(item: Mapping[str, Any], now: datetime) -> datetime:
    """When it happened: ``at`` (ms since 1970, an event held back until consent) within
    the last day, else now."""
    at = item.get("at")
    if isinstance(at, int | float) and not isinstance(at, bool):
        moment = datetime.fromtimestamp(at / 1000, UTC)
        if now - timedelta(days=1) <= moment <= now:
            return moment
    return now


def _row(item: Any, site: SiteSettings, visitor: str, now: datetime) -> WebRow:
    if not isinstance(item, dict):
        raise ValueError("an object expected")
    kind = item.get("type")
    view = _text(item, "view", 32)
    if view and not VIEW_PATTERN.match(view):
        raise ValueError("view: letters, digits, - or _")
    properties: dict[str, Any]
    if kind == "page":
        url = _url(item, "url", required=True)
        properties = {"url": url, "site": site.id}
        title = _text(item, "title", TITLE_LIMIT)
        if title:
            properties["title"] = title
        referrer = _url(item, "referrer")
        if referrer:
            properties["referrer"] = referrer
        if view:
            properties["view"] = view
        if "utm_" in url:
            properties.update(stitching.utm_parameters(url))
        return WebRow(site.workspace_id, site.id, visitor, PAGE_VIEWED, properties,
                      _occurred(item, now))  # fmt: skip
    if kind == "event":
        name = item.get("name")
        if not isinstance(name, str) or not EVENT_NAME_PATTERN.match(name):
            raise ValueError("name: 1 to 64 letters, digits, _ . : or -")
        extra = item.get("properties") or {}
        if not isinstance(extra, dict):
            raise ValueError("properties: an object expected")
        if len(json.dumps(extra)) > PROPERTIES_LIMIT:
            raise ValueError(f"properties: at most {PROPERTIES_LIMIT} characters of JSON")
        properties = {"name": name, "properties": extra, "site": site.id}
        page = _url(item, "url")
        if page:
            properties["page"] = page
        return WebRow(site.workspace_id, site.id, visitor, CUSTOM_EVENT, properties,
                      _occurred(item, now))  # fmt: skip
    if kind == "leave":
        seconds = item.get("seconds")
        if not view:
            raise ValueError("view: required")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise ValueError("seconds: a number of seconds expected")
        properties = {"view": view, "seconds": min(int(seconds), 86_400)}
        return WebRow(site.workspace_id, site.id, visitor, LEAVE, properties, now)
    raise ValueError("type: one of page, event, leave")


def stitch(collect: Collect) -> None:
    """Recognise the visitor from an email click's reference or identify() (rare: done in
    the request, before its events are written, so they carry the contact)."""
    workspace_id = collect.site.workspace_id
    if collect.reference:
        stitching.stitch_reference(
            workspace_id=workspace_id, visitor_id=collect.visitor_id, token=collect.reference
        )
    if collect.identify:
        stitching.identify_visitor(
            workspace_id=workspace_id, visitor_id=collect.visitor_id, email=collect.identify
        )


# --- Writing ---------------------------------------------------------------------------------


def write_web_events(rows: list[WebRow]) -> bool:
    """Commit a batch: page views and custom events into the activity log with their
    contacts, the leaves' time on page onto their page views, and known visitors' touches.
    Raises when the database refuses (the requests then fail: nothing is answered as
    recorded that was not)."""
    contacts = stitching.contacts_of_visitors({(r.workspace_id, r.visitor_id) for r in rows})
    events: list[NewEvent] = []
    leaves: list[WebRow] = []
    touches: list[tuple[int, int, Any]] = []
    for row in rows:
        if row.kind == LEAVE:
            leaves.append(row)
            continue
        contact_id = contacts.get((row.workspace_id, row.visitor_id))
        events.append(
            NewEvent(
                workspace_id=row.workspace_id,
                kind=row.kind,
                contact_id=contact_id,
                visitor_id=row.visitor_id,
                properties=row.properties,
                occurred_at=row.occurred_at,
                source_type="tracking.site",
                source_id=str(row.site_id),
            )
        )
        if contact_id is not None and row.kind == PAGE_VIEWED:
            touch = stitching.touch_of(row.properties, row.occurred_at)
            if touch is not None:
                touches.append((row.workspace_id, contact_id, touch))
    with transaction.atomic():
        if events:
            append_events(events)
        if leaves:
            _time_on_page(leaves)
        for workspace_id, contact_id, touch in touches:
            record_touches(workspace=workspace_id, contact_id=contact_id, first=touch, last=touch)
    return True


def _time_on_page(leaves: list[WebRow]) -> None:
    """Put each leave's seconds on its page view (the longest, if it came more than once)."""
    wanted: dict[tuple[int, str, str], int] = {}
    for row in leaves:
        key = (row.workspace_id, row.visitor_id, row.properties["view"])
        wanted[key] = max(wanted.get(key, 0), row.properties["seconds"])
    by_workspace: dict[int, set[str]] = {}
    for workspace_id, visitor_id, _view in wanted:
        by_workspace.setdefault(workspace_id, set()).add(visitor_id)
    changed: list[Event] = []
    for workspace_id, visitors in by_workspace.items():
        views = Event.objects.for_workspace(workspace_id).filter(
            visitor_id__in=visitors, kind=PAGE_VIEWED
        )
        for event in views.only("pk", "visitor_id", "properties"):
            view = event.properties.get("view") if isinstance(event.properties, dict) else None
            seconds = wanted.get((workspace_id, event.visitor_id, str(view)))
            if view and seconds is not None and seconds > event.properties.get("seconds", -1):
                event.properties["seconds"] = seconds
                changed.append(event)
    if changed:
        Event.objects.unscoped().bulk_update(changed, ["properties"])


# --- Email clicks to a site ------------------------------------------------------------------


def add_reference(url: str, *, workspace_id: int, contact_id: int, origins: frozenset[str]) -> str:
    """``url`` with the signed reference of the contact added when it leads to one of the
    workspace's sites (``origins``), so that the tracker there can recognise the visitor."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if origin not in origins:
        return url
    token = stitching.sign_reference(workspace_id=workspace_id, contact_id=contact_id)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=f"{query}{stitching.REFERENCE_PARAMETER}={token}"))
