"""Websites that run the web tracker: adding, changing and removing them, and their snippet.

A site's settings are read by the collect endpoint from a per-process cache
(``patron.tracking.web.sites``) for ``TRACKING_SITE_CACHE_SECONDS``: a change
applies everywhere within that time.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.db import transaction
from django.db.models import QuerySet
from django.templatetags.static import static
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.core.models import User, Workspace
from patron.core.services import RequestInfo, record_audit
from patron.tracking.models import Site

TRACKER_STATIC_PATH = "patron/tracker.js"
MAX_ORIGINS = 20
NAME_LIMIT = 100


class SiteInvalid(ValueError):
    """A site's settings were refused; ``field`` names the one at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def clean_origins(raw: Iterable[str]) -> list[str]:
    """Sites' addresses as origins (``https://www.example.com``), deduplicated."""
    origins: list[str] = []
    for item in raw:
        text = item.strip().rstrip("/").lower()
        if not text:
            continue
        parts = urlsplit(text)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path or parts.query:
            raise SiteInvalid(
                "allowed_origins",
                _("“%(origin)s” is not a site address: write it as https://www.example.com.")
                % {"origin": item.strip()},
            )
        if text not in origins:
            origins.append(text)
    if not origins:
        raise SiteInvalid(
            "allowed_origins", _("Give at least one address the site is served from.")
        )
    if len(origins) > MAX_ORIGINS:
        raise SiteInvalid(
            "allowed_origins", _("Keep to %(max)d addresses per site.") % {"max": MAX_ORIGINS}
        )
    return origins


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > NAME_LIMIT:
        raise SiteInvalid("name", _("Give the site a name of up to 100 characters."))
    return name


def create_site(
    *,
    workspace: Workspace,
    name: str,
    allowed_origins: Iterable[str],
    consent_required: bool = False,
    honour_dnt: bool = True,
    allow_identify: bool = False,
    actor: User | None = None,
    request_info: RequestInfo | None = None,
) -> Site:
    with transaction.atomic():
        site = Site.objects.create(
            workspace=workspace,
            name=_clean_name(name),
            allowed_origins=clean_origins(allowed_origins),
            consent_required=consent_required,
            honour_dnt=honour_dnt,
            allow_identify=allow_identify,
        )
        record_audit(
            workspace=workspace,
            actor=actor,
            action="site.created",
            target=site.name,
            data={"name": site.name, "origins": site.allowed_origins},
            request_info=request_info,
        )
    return site


def update_site(
    *,
    site: Site,
    name: str,
    allowed_origins: Iterable[str],
    consent_required: bool,
    honour_dnt: bool,
    allow_identify: bool,
    actor: User | None = None,
    request_info: RequestInfo | None = None,
) -> Site:
    site.name = _clean_name(name)
    site.allowed_origins = clean_origins(allowed_origins)
    site.consent_required = consent_required
    site.honour_dnt = honour_dnt
    site.allow_identify = allow_identify
    site.updated_at = timezone.now()
    with transaction.atomic():
        site.save()
        record_audit(
            workspace=site.workspace,
            actor=actor,
            action="site.changed",
            target=site.name,
            data={
                "name": site.name,
                "origins": site.allowed_origins,
                "consent_required": consent_required,
                "honour_dnt": honour_dnt,
                "allow_identify": allow_identify,
            },
            request_info=request_info,
        )
    return site


def delete_site(
    *, site: Site, actor: User | None = None, request_info: RequestInfo | None = None
) -> None:
    """Remove a site: its snippet stops recording (its events stay in the activity log)."""
    with transaction.atomic():
        record_audit(
            workspace=site.workspace,
            actor=actor,
            action="site.deleted",
            target=site.name,
            data={"name": site.name},
            request_info=request_info,
        )
        site.delete()


def sites_of(workspace: Workspace | int) -> QuerySet[Site]:
    return Site.objects.for_workspace(workspace).order_by("name", "id")


def collect_url() -> str:
    from patron.tracking.web import COLLECT_PATH

    return settings.TRACKING_BASE_URL + COLLECT_PATH


def tracker_url() -> str:
    return settings.BASE_URL + static(TRACKER_STATIC_PATH)


def snippet(site: Site) -> str:
    """The one tag to paste into every page of the site."""
    attributes = [
        f'src="{tracker_url()}"',
        f'data-site="{site.key}"',
        f'data-collect="{collect_url()}"',
    ]
    if site.consent_required:
        attributes.append('data-consent="required"')
    if site.honour_dnt:
        attributes.append('data-dnt="honour"')
    return f"<script async {' '.join(attributes)}></script>"


@lru_cache(maxsize=1)
def tracker_sizes() -> dict[str, Any]:
    """The tracker script's size in bytes, as served and gzipped."""
    found = finders.find(TRACKER_STATIC_PATH)
    if not found:
        raise FileNotFoundError(TRACKER_STATIC_PATH)
    path = Path(found if isinstance(found, str) else found[0])
    data = path.read_bytes()
    return {"bytes": len(data), "gzipped": len(gzip.compress(data, compresslevel=9))}
