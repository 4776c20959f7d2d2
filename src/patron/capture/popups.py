"""Pop-ups: one of the workspace's forms, shown in a dialog on its tracked sites.

The tracker (``patron/tracker.js``) asks ``GET /t/popups?k=<site key>&v=<visitor>&u=<path>``
once per page, after the page view and only where the site lets it track (consent,
Do Not Track). The answer lists the active pop-ups of that site whose URL rules match
the path, minus those that skip known contacts when the visitor is already linked to a
contact. The tracker arms each trigger, keeps the frequency cap in the page's
localStorage, and draws the form with the forms snippet (``patron/forms.js``), so a
pop-up is sent like any embedded form (with the visitor id, which stitches).

A site's pop-ups are read at most every ``TRACKING_SITE_CACHE_SECONDS`` per process;
only the known-contact check reads per request, and only when a pop-up asks for it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.capture.models import Form, Popup, PopupTrigger
from patron.core.models import User, Workspace
from patron.core.services import record_audit
from patron.tracking.models import Site, VisitorLink

POPUPS_PATH = "/t/popups"
NAME_LIMIT = 100
MAX_PATTERNS = 20
PATTERN_LIMIT = 200
MAX_DELAY_SECONDS = 600
MAX_CAP_DAYS = 365
PATTERN_CHARACTERS = re.compile(r"^/[A-Za-z0-9/_.~%*+,;=:@!$&'()-]*$")


class PopupInvalid(ValueError):
    """A pop-up was refused; ``errors`` maps a field to a message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))


# --- Validation -----------------------------------------------------------------------------


def clean_patterns(raw: Iterable[str]) -> list[str]:
    """Page paths such as ``/pricing*`` or ``/blog/*/intro``; raises PopupInvalid."""
    patterns: list[str] = []
    for item in raw:
        text = item.strip()
        if not text:
            continue
        if len(text) > PATTERN_LIMIT or not PATTERN_CHARACTERS.match(text):
            raise PopupInvalid(
                {
                    "url_patterns": _(
                        "“%(pattern)s” is not a page path: start it with / and use * for any "
                        "characters, e.g. /pricing*."
                    )
                    % {"pattern": text[:PATTERN_LIMIT]}
                }
            )
        if text not in patterns:
            patterns.append(text)
    if len(patterns) > MAX_PATTERNS:
        raise PopupInvalid(
            {"url_patterns": _("Keep to %(max)d page rules.") % {"max": MAX_PATTERNS}}
        )
    return patterns


def path_matches(patterns: Iterable[str], path: str) -> bool:
    """Whether the page path matches one of the patterns (``*``: any characters); no
    patterns match every page."""
    patterns = list(patterns)
    if not patterns:
        return True
    return any(_compiled(pattern).fullmatch(path) for pattern in patterns)


def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def _clean(
    workspace: Workspace,
    *,
    name: str,
    form: Form | None,
    sites: Iterable[Site],
    trigger: str,
    trigger_value: int | None,
    url_patterns: Iterable[str],
    cap_days: int,
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    name = " ".join((name or "").split())
    if not name or len(name) > NAME_LIMIT:
        errors["name"] = _("Give the pop-up a name of up to 100 characters.")
    if form is None or form.workspace_id != workspace.pk:
        errors["form"] = _("Choose one of your forms.")
    chosen = list(sites)
    if not chosen:
        errors["sites"] = _("Choose at least one website to show the pop-up on.")
    elif any(site.workspace_id != workspace.pk for site in chosen):
        errors["sites"] = _("Choose among your own websites.")
    elif form is not None and "form" not in errors:
        missing = sorted(
            {origin for site in chosen for origin in site.allowed_origins}
            - set(form.allowed_origins)
        )
        if missing:
            errors["form"] = _(
                "The form “%(form)s” may not be sent from %(origins)s: add these addresses to "
                "the form's allowed sites first."
            ) % {"form": form.name, "origins": ", ".join(missing)}
    value = 0
    if trigger not in PopupTrigger.values:
        errors["trigger"] = _("Choose when to show the pop-up.")
    elif trigger == PopupTrigger.DELAY:
        if trigger_value is None or not 0 <= trigger_value <= MAX_DELAY_SECONDS:
            errors["trigger_value"] = _("Give a delay of 0 to %(max)d seconds.") % {
                "max": MAX_DELAY_SECONDS
            }
        else:
            value = trigger_value
    elif trigger == PopupTrigger.SCROLL:
        if trigger_value is None or not 1 <= trigger_value <= 100:
            errors["trigger_value"] = _("Give a scroll depth of 1 to 100 %.")
        else:
            value = trigger_value
    if cap_days is None or not 0 <= cap_days <= MAX_CAP_DAYS:
        errors["cap_days"] = _("Give 0 to %(max)d days.") % {"max": MAX_CAP_DAYS}
    patterns: list[str] = []
    try:
        patterns = clean_patterns(url_patterns)
    except PopupInvalid as exc:
        errors.update(exc.errors)
    if errors:
        raise PopupInvalid(errors)
    return {
        "name": name,
        "form": form,
        "sites": chosen,
        "trigger": trigger,
        "trigger_value": value,
        "url_patterns": patterns,
        "cap_days": cap_days,
    }


# --- Services ------------------------------------------------------------------------------


def create_popup(
    *,
    workspace: Workspace,
    name: str,
    form: Form | None,
    sites: Iterable[Site],
    trigger: str = PopupTrigger.DELAY,
    trigger_value: int | None = 5,
    url_patterns: Iterable[str] = (),
    cap_days: int = 7,
    hide_from_contacts: bool = True,
    active: bool = True,
    created_by: User | None = None,
) -> Popup:
    values = _clean(
        workspace,
        name=name,
        form=form,
        sites=sites,
        trigger=trigger,
        trigger_value=trigger_value,
        url_patterns=url_patterns,
        cap_days=cap_days,
    )
    chosen = values.pop("sites")
    with transaction.atomic():
        popup = Popup.objects.create(
            workspace=workspace,
            hide_from_contacts=hide_from_contacts,
            active=active,
            created_by=created_by,
            **values,
        )
        popup.sites.set(chosen)
        _record(popup, "popup.created", created_by)
    cache.clear()
    return popup


def update_popup(
    *,
    popup: Popup,
    name: str,
    form: Form | None,
    sites: Iterable[Site],
    trigger: str,
    trigger_value: int | None,
    url_patterns: Iterable[str],
    cap_days: int,
    hide_from_contacts: bool,
    active: bool,
    actor: User | None = None,
) -> Popup:
    values = _clean(
        popup.workspace,
        name=name,
        form=form,
        sites=sites,
        trigger=trigger,
        trigger_value=trigger_value,
        url_patterns=url_patterns,
        cap_days=cap_days,
    )
    chosen = values.pop("sites")
    for attribute, value in values.items():
        setattr(popup, attribute, value)
    popup.hide_from_contacts = hide_from_contacts
    popup.active = active
    popup.updated_at = timezone.now()
    with transaction.atomic():
        popup.save()
        popup.sites.set(chosen)
        _record(popup, "popup.changed", actor)
    cache.clear()
    return popup


def delete_popup(*, popup: Popup, actor: User | None = None) -> None:
    with transaction.atomic():
        _record(popup, "popup.deleted", actor)
        popup.delete()
    cache.clear()


def _record(popup: Popup, kind: str, actor: User | None) -> None:
    record_audit(
        workspace=popup.workspace,
        actor=actor,
        action=kind,
        target=popup.name,
        data={"popup": popup.pk, "name": popup.name, "form": popup.form_id},
    )


def popups_of(workspace: Workspace | int) -> QuerySet[Popup]:
    return Popup.objects.for_workspace(workspace).select_related("form").order_by("name", "id")


# --- What a page gets -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PagePopup:
    id: int
    form_key: str
    title: str
    trigger: str
    trigger_value: int
    cap_days: int
    patterns: tuple[str, ...]
    hide_from_contacts: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "form": self.form_key,
            "title": self.title,
            "trigger": self.trigger,
            "value": self.trigger_value,
            "cap_days": self.cap_days,
        }


class PopupCache:
    """The active pop-ups of each site, read at most every ``TRACKING_SITE_CACHE_SECONDS``
    per process (and again at once after a change made in this process)."""

    def __init__(self) -> None:
        self._by_site: dict[int, tuple[float, tuple[PagePopup, ...]]] = {}
        self._lock = threading.Lock()

    def of_site(self, site_id: int) -> tuple[PagePopup, ...]:
        entry = self._by_site.get(site_id)
        if entry is not None and time.monotonic() - entry[0] < settings.TRACKING_SITE_CACHE_SECONDS:
            return entry[1]
        rows = (
            Popup.objects.unscoped()
            .filter(sites__id=site_id, active=True)
            .select_related("form")
            .order_by("id")
        )
        found = tuple(
            PagePopup(
                id=row.pk,
                form_key=row.form.key,
                title=row.form.title or row.form.name,
                trigger=row.trigger,
                trigger_value=row.trigger_value,
                cap_days=row.cap_days,
                patterns=tuple(row.url_patterns),
                hide_from_contacts=row.hide_from_contacts,
            )
            for row in rows
        )
        with self._lock:
            if len(self._by_site) >= 10_000:
                self._by_site.clear()
            self._by_site[site_id] = (time.monotonic(), found)
        return found

    def clear(self) -> None:
        with self._lock:
            self._by_site.clear()


cache = PopupCache()


def for_page(*, site_id: int, workspace_id: int, visitor_id: str, path: str) -> list[PagePopup]:
    """The pop-ups of the site that apply to this page and this visitor."""
    matching = [p for p in cache.of_site(site_id) if path_matches(p.patterns, path)]
    if visitor_id and any(p.hide_from_contacts for p in matching):
        known = (
            VisitorLink.objects.unscoped()
            .filter(workspace_id=workspace_id, visitor_id=visitor_id)
            .exists()
        )
        if known:
            matching = [p for p in matching if not p.hide_from_contacts]
    return matching
