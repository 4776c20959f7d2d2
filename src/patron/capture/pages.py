"""Landing pages: built with the email builder's blocks plus form blocks, published on
Patron's public address, their views counted.

**Addresses.** A page lives at ``/p/<workspace slug>/<page slug>``. The page
slug is unique within its workspace only: with many workspaces on one
installation, a global namespace would let the first workspace take the good
names ("/p/ebook") and would tell one workspace which names another uses. The
workspace's slug in the path is its own, so no page can stand in for another
workspace's.

**Markup.** The blocks are checked and written as MJML by
``patron.mail.blocks`` (kit ``PAGE``), compiled to HTML once when the page is
saved, and split into the body and its style sheets. Every text is escaped and
rich text sanitised there; the page carries no script. A form block leaves a
placeholder that ``render_forms`` fills with the form (a fresh spam-check token
each time), posting back to the page itself.

**Views.** Each view of a published page is a ``page.viewed`` event (source
``capture.landing_page``, property ``landing_page``) with the visitor's
first-party id from the ``VISITOR_COOKIE`` on Patron's own address (the web
tracker's cookie name; not HttpOnly, so the tracker could share it); a form sent
from the page carries the same id, so the submission stitches the views to the
contact. A browser sending Do Not Track or Global Privacy Control is not tracked.

``page_stats`` counts views, unique visitors, submissions and the conversion
rate (submissions per unique visitor) for many pages in two queries.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import mjml
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.activity.models import Event
from patron.activity.services import record
from patron.capture.models import Form, FormSubmission, LandingPage, PageStatus
from patron.core.models import User, Workspace
from patron.mail import blocks as builder

SOURCE_TYPE = "capture.landing_page"
# The web tracker's first-party visitor cookie (``patron/tracker.js`` reads and writes the
# same name, so a page of Patron's own address and a tracked page share one visitor id).
VISITOR_COOKIE = "_patron_vid"
VISITOR_COOKIE_AGE = 365 * 86400
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
RESERVED_SLUGS = {"new", "edit", "preview", "admin", "api", "static", "media"}
_VISITOR = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S)
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S)
# MJML's conditional comments for Outlook have no place on a web page.
_CONDITIONAL = re.compile(r"<!--\[if[^\]]*\]>.*?<!\[endif\]-->", re.S)


class PageInvalid(ValueError):
    """A landing page was refused; ``errors`` maps a field to its message, ``invalid_block``
    is the 1-based block at fault (0: none)."""

    def __init__(self, errors: Mapping[str, str], invalid_block: int = 0) -> None:
        self.errors = dict(errors)
        self.invalid_block = invalid_block
        super().__init__("; ".join(f"{key}: {message}" for key, message in self.errors.items()))


# --- Writing --------------------------------------------------------------------------


def form_choices(workspace: Workspace | int) -> list[dict[str, Any]]:
    """The forms a form block may show (the builder's choices)."""
    return [
        {"id": pk, "name": name}
        for pk, name in Form.objects.for_workspace(workspace)
        .order_by("name", "id")
        .values_list("pk", "name")
    ]


def starter_document() -> dict[str, Any]:
    document = builder.empty_document()
    document["blocks"] = [builder.new_block("heading", builder.PAGE)]
    return document


def compile_page(workspace: Workspace | int, document: Any) -> tuple[dict[str, Any], str, str]:
    """The document checked, and the page body and styles written from it; raises
    PageInvalid naming the block at fault."""
    form_ids = {item["id"] for item in form_choices(workspace)}
    try:
        cleaned = builder.validate_blocks(document, kit=builder.PAGE, form_ids=form_ids)
        source = builder.blocks_to_mjml(cleaned, kit=builder.PAGE, form_ids=form_ids)
    except builder.BlocksInvalid as error:
        raise PageInvalid({"blocks": str(error)}, error.index) from None
    html = mjml.mjml2html(source)
    head, _sep, _rest = html.partition("</head>")
    styles = "\n".join(_STYLE.findall(_CONDITIONAL.sub("", head)))
    match = _BODY.search(html)
    body = _CONDITIONAL.sub("", match.group(1) if match else "")
    background = cleaned["settings"]["background"]
    body = f'<div class="landing-page-body" style="background-color:{background}">{body}</div>'
    return cleaned, body, styles


def _clean(workspace: Workspace, values: dict[str, Any], page: LandingPage | None) -> None:
    errors: dict[str, str] = {}
    if "name" in values:
        values["name"] = " ".join(str(values["name"]).split())
        if not values["name"] or len(values["name"]) > 100:
            errors["name"] = _("Give the page a name of up to 100 characters.")
    if "title" in values:
        values["title"] = " ".join(str(values["title"]).split())
        if not values["title"] or len(values["title"]) > 200:
            errors["title"] = _("Give the page a title of up to 200 characters.")
    if "meta_description" in values:
        values["meta_description"] = " ".join(str(values["meta_description"] or "").split())
        if len(values["meta_description"]) > 300:
            errors["meta_description"] = _("Keep the description to 300 characters.")
    if "slug" in values:
        slug = str(values["slug"] or "").strip().lower()
        values["slug"] = slug
        if not SLUG.match(slug):
            errors["slug"] = _(
                "Use 1 to 80 lower-case letters, digits and hyphens, not starting or ending "
                "with a hyphen (e.g. free-ebook)."
            )
        elif slug in RESERVED_SLUGS:
            errors["slug"] = _("“%(slug)s” is kept for Patron itself; choose another.") % {
                "slug": slug
            }
        else:
            taken = LandingPage.objects.for_workspace(workspace).filter(slug=slug)
            if page is not None:
                taken = taken.exclude(pk=page.pk)
            if taken.exists():
                errors["slug"] = _("Another page of this workspace has the address “%(slug)s”.") % {
                    "slug": slug
                }
    if errors:
        raise PageInvalid(errors)


PAGE_VALUES = {"name", "slug", "title", "meta_description", "blocks"}


def _save(page: LandingPage, values: dict[str, Any]) -> LandingPage:
    if "blocks" in values:
        page.blocks, page.html, page.styles = compile_page(page.workspace_id, values.pop("blocks"))
    for name, value in values.items():
        setattr(page, name, value)
    page.updated_at = timezone.now()
    try:
        with transaction.atomic():
            page.save()
    except IntegrityError:  # the same slug saved meanwhile by another request
        raise PageInvalid(
            {
                "slug": _("Another page of this workspace has the address “%(slug)s”.")
                % {"slug": page.slug}
            }
        ) from None
    return page


def create_page(
    *, workspace: Workspace, created_by: User | None = None, **values: Any
) -> LandingPage:
    """A new draft page; raises PageInvalid with per-field messages."""
    unknown = set(values) - PAGE_VALUES
    if unknown:
        raise TypeError(f"Unknown page values: {', '.join(sorted(unknown))}")
    values.setdefault("name", "")
    values.setdefault("slug", "")
    values.setdefault("title", values.get("name", ""))
    values.setdefault("blocks", starter_document())
    _clean(workspace, values, None)
    page = LandingPage(workspace=workspace, created_by=created_by)
    return _save(page, values)


def update_page(*, page: LandingPage, actor: User | None = None, **values: Any) -> LandingPage:
    """Change the given values of a page (a published page shows the change at once)."""
    unknown = set(values) - PAGE_VALUES
    if unknown:
        raise TypeError(f"Unknown page values: {', '.join(sorted(unknown))}")
    _clean(page.workspace, values, page)
    return _save(page, values)


def publish_page(*, page: LandingPage, actor: User | None = None) -> LandingPage:
    """Put the page on its public address (its blocks must still be valid: forms may have
    been deleted since it was saved)."""
    page.blocks, page.html, page.styles = compile_page(page.workspace_id, page.blocks)
    page.status = PageStatus.PUBLISHED
    page.published_at = page.published_at or timezone.now()
    page.updated_at = timezone.now()
    page.save()
    return page


def unpublish_page(*, page: LandingPage, actor: User | None = None) -> LandingPage:
    """Take the page off its public address (it answers 404 again)."""
    page.status = PageStatus.DRAFT
    page.updated_at = timezone.now()
    page.save(update_fields=["status", "updated_at"])
    return page


def delete_page(*, page: LandingPage, actor: User | None = None) -> None:
    """Delete the page; its submissions and events stay (the submissions lose the link)."""
    page.delete()


# --- The public side ----------------------------------------------------------------------


def public_page(workspace_slug: str, slug: str) -> LandingPage | None:
    """The published page at an address (any workspace: the address names it)."""
    return (
        LandingPage.objects.unscoped()
        .select_related("workspace")
        .filter(workspace__slug=workspace_slug, slug=slug, status=PageStatus.PUBLISHED)
        .first()
    )


def page_forms(page: LandingPage) -> dict[int, Form]:
    """The forms the page's form blocks show (of the page's workspace only)."""
    ids = {int(n) for n in builder.FORM_SLOT.findall(page.html)}
    if not ids:
        return {}
    return {
        form.pk: form
        for form in Form.objects.for_workspace(page.workspace_id)
        .select_related("workspace")
        .filter(pk__in=ids)
    }


def render_forms(page: LandingPage, draw: Any) -> str:
    """The page body with each form placeholder replaced by ``draw(form)`` (HTML the caller
    escaped); a form deleted since shows nothing."""
    forms = page_forms(page)

    def fill(match: re.Match[str]) -> str:
        form = forms.get(int(match.group(1)))
        return str(draw(form)) if form is not None else ""

    return builder.FORM_SLOT.sub(fill, page.html)


def tracking_allowed(headers: Mapping[str, str]) -> bool:
    """False when the browser asks not to be tracked (Do Not Track, Global Privacy Control),
    as the web tracker honours it: no view is recorded and no cookie set."""
    return headers.get("DNT") != "1" and headers.get("Sec-GPC") != "1"


def visitor_id(cookie: str | None) -> tuple[str, bool]:
    """The visitor's first-party id from the cookie, or a new one; and whether it is new."""
    if cookie and _VISITOR.match(cookie):
        return cookie, False
    return secrets.token_urlsafe(16), True


def record_view(
    *, page: LandingPage, visitor: str, url: str = "", referrer: str = "", params: Mapping[str, str]
) -> Event:
    """One ``page.viewed`` event for a view of a published page."""
    properties: dict[str, Any] = {"landing_page": page.pk, "title": page.title}
    if url:
        properties["url"] = url[:2000]
    if referrer:
        properties["referrer"] = referrer[:2000]
    for key in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"):
        if params.get(key):
            properties[key] = str(params[key])[:200]
    return record(
        workspace=page.workspace_id,
        kind="page.viewed",
        visitor_id=visitor,
        source=(SOURCE_TYPE, page.pk),
        properties=properties,
    )


# --- Reads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PageStats:
    views: int = 0
    visitors: int = 0
    submissions: int = 0

    @property
    def conversion(self) -> float | None:
        """Submissions per unique visitor (None before the first visitor)."""
        return self.submissions / self.visitors if self.visitors else None


def page_stats(workspace: Workspace | int, pages: Iterable[LandingPage]) -> dict[int, PageStats]:
    """Views, unique visitors and submissions of each page, in two grouped queries."""
    ids = [page.pk for page in pages]
    if not ids:
        return {}
    views = {
        int(row["source_id"]): row
        for row in Event.objects.for_workspace(workspace)
        .filter(kind="page.viewed", source_type=SOURCE_TYPE, source_id__in=[str(n) for n in ids])
        .values("source_id")
        .annotate(views=Count("id"), visitors=Count("visitor_id", distinct=True))
    }
    submissions = dict(
        FormSubmission.objects.for_workspace(workspace)
        .filter(landing_page_id__in=ids)
        .values("landing_page_id")
        .annotate(count=Count("id"))
        .values_list("landing_page_id", "count")
    )
    return {
        pk: PageStats(
            views=views.get(pk, {}).get("views", 0),
            visitors=views.get(pk, {}).get("visitors", 0),
            submissions=submissions.get(pk, 0),
        )
        for pk in ids
    }
