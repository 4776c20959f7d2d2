"""Email templates: the writes (create, update, duplicate, delete, from a starter) and the
content rules every object with content fields shares.

"Content fields" are ``format``, ``body``, ``blocks``, ``text``, ``subject`` and
``preheader``: templates have them, and so do campaigns. ``clean_content()``
checks them for any such object, and is what the builder component's save
goes through: when ``blocks`` holds a builder document the body is generated
from it on the server (the client's MJML is never taken), otherwise the body
is the code view's MJML or HTML. Segments named by dynamic blocks must belong
to the workspace. ``template_source()`` gives ``rendering`` what to compile,
with the preheader placed in the body.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.core.models import User, Workspace
from patron.core.services import RequestInfo, record_audit
from patron.mail import blocks as builder
from patron.mail import starters
from patron.mail.models import ContentFormat, EmailTemplate, SenderIdentity, TemplateKind
from patron.mail.rendering import (
    HTML,
    MJML,
    Problem,
    RenderedMessage,
    TemplateError,
    TemplateSource,
    check_template,
    compile_template,
    contact_context,
)

CONTENT_FIELDS = ("format", "body", "blocks", "text", "subject", "preheader")
TEMPLATE_FIELDS = ("name", "kind", *CONTENT_FIELDS)
NAME_LIMIT = 150
BODY_LIMIT = 500_000
PREVIEW_POSTAL_ADDRESS = "Your company · 1 Example Street · 12345 Town"


class TemplateInvalid(ValueError):
    """Values refused; ``errors`` maps a field name ("" for general) to a message, and
    ``block`` is the 1-based builder block at fault (0: none)."""

    def __init__(self, errors: dict[str, str], block: int = 0) -> None:
        super().__init__(" ".join(errors.values()))
        self.errors = errors
        self.block = block


# --- Content (shared with campaigns) ---------------------------------------------------------


def workspace_segment_ids(workspace: Workspace) -> set[int]:
    from patron.audience.models import Segment

    return set(Segment.objects.for_workspace(workspace).values_list("pk", flat=True))


def clean_content(workspace: Workspace, values: dict[str, Any]) -> dict[str, Any]:
    """The content fields among ``values``, checked; the body generated from blocks.

    Raises ``TemplateInvalid`` naming the field at fault (a builder error names
    the block too). Only fields present in ``values`` are returned, except that
    a builder document also sets ``body`` and ``format``.
    """
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in ("subject", "preheader", "text"):
        if name in values:
            value = str(values[name] or "")
            limit = {"subject": 998, "preheader": 300, "text": BODY_LIMIT}[name]
            if name != "text":
                value = " ".join(value.split())
            if len(value) > limit:
                errors[name] = _("Keep it under %(count)s characters.") % {"count": limit}
            cleaned[name] = value
    if "format" in values:
        if values["format"] not in (MJML, HTML):
            errors["format"] = _("Choose MJML or HTML.")
        cleaned["format"] = values["format"]
    segment_ids: set[int] | None = None
    block = 0
    if "blocks" in values:
        document = values["blocks"]
        if document in (None, "", {}, []):
            cleaned["blocks"] = {}
        else:
            segment_ids = workspace_segment_ids(workspace)
            try:
                cleaned["blocks"] = builder.validate_blocks(document, segment_ids=segment_ids)
                cleaned["body"] = builder.blocks_to_mjml(cleaned["blocks"])
                cleaned["format"] = MJML
            except builder.BlocksInvalid as error:
                errors["blocks"] = str(error)
                block = error.index
    if "body" in values and "body" not in cleaned and not errors.get("blocks"):
        body = str(values["body"] or "")
        if len(body) > BODY_LIMIT:
            errors["body"] = _("The body is too long (over 500,000 characters).")
        cleaned["body"] = body
    if "body" in cleaned and "body" not in errors:
        unknown = builder.referenced_segments(cleaned["body"]) - (
            segment_ids if segment_ids is not None else workspace_segment_ids(workspace)
        )
        if unknown:
            errors["body"] = _(
                "No segment %(ids)s in this workspace: a dynamic block names it."
            ) % {"ids": ", ".join(str(pk) for pk in sorted(unknown))}
    if errors:
        raise TemplateInvalid(errors, block)
    return cleaned


_PREVIEW_DIV = (
    '<div style="display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;'
    'opacity:0;overflow:hidden;">{}</div>'
)


def template_source(obj: Any) -> TemplateSource:
    """What ``rendering`` compiles for any object with the content fields.

    The preheader (the line inboxes show after the subject) goes into the body:
    ``<mj-preview>`` in MJML, a hidden first element in HTML.
    """
    body = obj.body or ""
    preheader = (obj.preheader or "").strip()
    if preheader:
        from html import escape

        text = escape(preheader, quote=False)
        if obj.format == MJML:
            preview = f"<mj-preview>{text}</mj-preview>"
            if "<mj-head>" in body:
                body = body.replace("<mj-head>", f"<mj-head>{preview}", 1)
            else:
                body = re.sub(r"(<mjml[^>]*>)", rf"\1<mj-head>{preview}</mj-head>", body, count=1)
        else:
            hidden = _PREVIEW_DIV.format(text)
            body, found = re.subn(r"(<body[^>]*>)", rf"\1{hidden}", body, count=1)
            if not found:
                body = hidden + body
    return TemplateSource(subject=obj.subject or "", body=body, format=obj.format, text=obj.text)


def default_postal_address(workspace: Workspace) -> str:
    sender = SenderIdentity.objects.for_workspace(workspace).filter(is_default=True).first()
    return sender.postal_address if sender else ""


def check_content(workspace: Workspace, obj: Any) -> list[Problem]:
    """``rendering.check_template`` for an object with content fields."""
    return check_template(
        template_source(obj),
        sample=preview_context(workspace, None, obj.body or ""),
        postal_address=default_postal_address(workspace),
    )


def preview_context(workspace: Workspace, contact: Any, body: str) -> dict[str, Any]:
    """Merge-tag values for a preview: the contact's (or an example person's), example
    links, the default sender's postal address, and the contact's segments among those
    the body's dynamic blocks test (every one of them without a contact)."""
    from django.conf import settings

    referenced = builder.referenced_segments(body)
    links = {
        "unsubscribe_url": f"{settings.BASE_URL}/u/preview/",
        "preferences_url": f"{settings.BASE_URL}/u/preview/",
        "view_in_browser_url": f"{settings.BASE_URL}/m/preview/",
        "postal_address": default_postal_address(workspace) or PREVIEW_POSTAL_ADDRESS,
    }
    if contact is None:
        example = {
            "first_name": "Alex",
            "last_name": "Example",
            "full_name": "Alex Example",
            "email": "alex@example.com",
        }
        return {"contact": example, "company": {"name": "Example Ltd"}, "owner": {},
                "segments": sorted(referenced), **links}  # fmt: skip
    return contact_context(
        contact, segments=contact_segments(workspace, contact, referenced), **links
    )


def contact_segments(workspace: Workspace, contact: Any, segment_ids: set[int]) -> list[int]:
    """Which of ``segment_ids`` the contact is in now (each segment's query, one contact)."""
    from patron.audience.models import Segment
    from patron.audience.segments import SegmentInvalid, matching_contacts

    found = []
    for segment in Segment.objects.for_workspace(workspace).filter(pk__in=segment_ids):
        try:
            if matching_contacts(workspace, segment.definition).filter(pk=contact.pk).exists():
                found.append(segment.pk)
        except SegmentInvalid:
            continue  # a segment that no longer validates selects nobody
    return found


def render_preview(
    workspace: Workspace, obj: Any, contact: Any = None
) -> tuple[RenderedMessage | None, Problem | None]:
    """The message as ``contact`` (or an example person) would get it, or the problem
    that stops it from compiling."""
    try:
        compiled = compile_template(template_source(obj))
        return compiled.render(preview_context(workspace, contact, obj.body or "")), None
    except TemplateError as error:
        return None, error.problem
    except Exception as error:  # a Liquid render error (limits, bad filter argument)
        from liquid.exceptions import LiquidError

        if isinstance(error, LiquidError):
            return None, Problem("liquid", str(error))
        raise


# --- Templates -------------------------------------------------------------------------------


def templates_for(workspace: Workspace, kind: str | None = None) -> QuerySet[EmailTemplate]:
    rows = EmailTemplate.objects.for_workspace(workspace)
    return rows.filter(kind=kind) if kind else rows


def _clean_template(workspace: Workspace, values: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    if "name" in values:
        name = " ".join(str(values["name"] or "").split())
        if not name:
            errors["name"] = _("Give the template a name.")
        elif len(name) > NAME_LIMIT:
            errors["name"] = _("Keep the name under 150 characters.")
        cleaned["name"] = name
    if "kind" in values:
        if values["kind"] not in TemplateKind.values:
            errors["kind"] = _("Choose marketing or personal.")
        cleaned["kind"] = values["kind"]
    block = 0
    try:
        cleaned.update(clean_content(workspace, values))
    except TemplateInvalid as error:
        errors.update(error.errors)
        block = error.block
    if errors:
        raise TemplateInvalid(errors, block)
    return cleaned


@transaction.atomic
def create_template(
    workspace: Workspace,
    *,
    user: User | None,
    values: dict[str, Any],
    starter: str = "",
    request_info: RequestInfo | None = None,
) -> EmailTemplate:
    """A new template; ``values`` needs a name (content fields may be empty)."""
    unknown = set(values) - set(TEMPLATE_FIELDS)
    if unknown:
        raise TemplateInvalid({sorted(unknown)[0]: _("This field does not exist.")})
    cleaned = _clean_template(workspace, {"name": "", **values})
    cleaned.setdefault(
        "format",
        ContentFormat.MJML if builder.is_built(cleaned.get("blocks")) else ContentFormat.HTML,
    )
    template = EmailTemplate.objects.create(
        workspace=workspace, created_by=user, starter=starter, **cleaned
    )
    record_audit(
        workspace=workspace,
        actor=user,
        action="email_template.created",
        target=template.name,
        request_info=request_info,
    )
    return template


@transaction.atomic
def update_template(
    template: EmailTemplate,
    *,
    user: User | None,
    values: dict[str, Any],
    request_info: RequestInfo | None = None,
) -> EmailTemplate:
    """Change the fields given in ``values``."""
    unknown = set(values) - set(TEMPLATE_FIELDS)
    if unknown:
        raise TemplateInvalid({sorted(unknown)[0]: _("This field does not exist.")})
    if "body" in values and "blocks" not in values and builder.is_built(template.blocks):
        # A new body by hand ends the builder design (the code view's one-way switch).
        values = {**values, "blocks": {}}
    cleaned = _clean_template(template.workspace, values)
    for name, value in cleaned.items():
        setattr(template, name, value)
    template.updated_at = timezone.now()
    template.save()
    record_audit(
        workspace=template.workspace,
        actor=user,
        action="email_template.updated",
        target=template.name,
        request_info=request_info,
    )
    return template


def duplicate_template(
    template: EmailTemplate, *, user: User | None, request_info: RequestInfo | None = None
) -> EmailTemplate:
    values = {name: getattr(template, name) for name in TEMPLATE_FIELDS}
    values["name"] = (_("Copy of %(name)s") % {"name": template.name})[:NAME_LIMIT]
    return create_template(
        template.workspace,
        user=user,
        values=values,
        starter=template.starter,
        request_info=request_info,
    )


@transaction.atomic
def delete_template(
    template: EmailTemplate, *, user: User | None, request_info: RequestInfo | None = None
) -> None:
    record_audit(
        workspace=template.workspace,
        actor=user,
        action="email_template.deleted",
        target=template.name,
        request_info=request_info,
    )
    template.delete()


def create_from_starter(
    workspace: Workspace,
    *,
    user: User | None,
    key: str,
    name: str = "",
    request_info: RequestInfo | None = None,
) -> EmailTemplate:
    """A template copied from a starter (``starters.STARTERS``), or a blank one ("blank-
    builder", "blank-html")."""
    starter = starters.get(key)
    if starter is None:
        raise TemplateInvalid({"starter": _("There is no starter “%(key)s”.") % {"key": key}})
    values = starter.values()
    if name:
        values["name"] = name
    return create_template(
        workspace, user=user, values=values, starter=key, request_info=request_info
    )


def send_test(
    template: EmailTemplate,
    *,
    user: User | None,
    addresses: list[str],
    contact: Any = None,
    request_info: RequestInfo | None = None,
) -> list[str]:
    """Send the saved template, subject marked [Test], to a few addresses: the campaign
    test-send path (same rendering, headers, DKIM and transport), from the workspace's
    default verified sender address. Returns the addresses it went to."""
    from patron.mail import campaigns, pipeline, senders
    from patron.mail.models import Campaign

    try:
        cleaned = campaigns.clean_test_addresses(addresses)
    except campaigns.CampaignInvalid as error:
        raise TemplateInvalid(error.errors) from None
    sender = senders.verified_identities(template.workspace).first()  # the default first
    if sender is None:
        raise TemplateInvalid({"": _("Verify a sender address first: tests go out from it.")})
    # Never saved: it carries the template's content through the campaign test path.
    stand_in = Campaign(
        id=0,
        workspace=template.workspace,
        name=template.name,
        sender=sender,
        **{name: getattr(template, name) for name in CONTENT_FIELDS},
    )
    try:
        rendered = campaigns.preview(stand_in, contact)
    except TemplateError as error:
        raise TemplateInvalid({"body": str(error.problem)}) from error
    try:
        pipeline.send_test_messages(stand_in, rendered, cleaned, contact=contact)
    except campaigns.CampaignInvalid as error:
        raise TemplateInvalid(error.errors) from None
    record_audit(
        workspace=template.workspace,
        actor=user,
        action="email_template.test_sent",
        target=template.name,
        data={"template": template.pk, "addresses": cleaned},
        request_info=request_info,
    )
    return cleaned


# --- Merge tags ------------------------------------------------------------------------------


def merge_tags(workspace: Workspace) -> list[dict[str, Any]]:
    """The merge-tag picker's groups: ``[{"label", "tags": [{"label", "tag"}]}]``."""
    from patron.crm.models import CustomField

    def tag(label: str, expression: str) -> dict[str, str]:
        return {"label": label, "tag": "{{ " + expression + " }}"}

    contact = [
        tag(_("First name"), 'contact.first_name | default: "there"'),
        tag(_("Last name"), "contact.last_name"),
        tag(_("Full name"), "contact.full_name"),
        tag(_("Email"), "contact.email"),
        tag(_("Phone"), "contact.phone"),
        tag(_("Job title"), "contact.job_title"),
        tag(_("City"), "contact.city"),
        tag(_("Country"), "contact.country"),
        tag(_("Birthday"), "contact.birthday"),
    ]
    company = [
        tag(_("Company name"), "company.name"),
        tag(_("Company domain"), "company.domain"),
        tag(_("Industry"), "company.industry"),
    ]
    custom = list(
        CustomField.objects.for_workspace(workspace)
        .filter(object_type__in=("contact", "company"))
        .order_by("object_type", "position", "label")
        .values_list("object_type", "key", "label")
    )
    for object_type, key, label in custom:
        (contact if object_type == "contact" else company).append(
            tag(label, f"{object_type}.{key}")
        )
    return [
        {"label": _("Contact"), "tags": contact},
        {"label": _("Company"), "tags": company},
        {
            "label": _("Owner"),
            "tags": [tag(_("Owner name"), "owner.name"), tag(_("Owner email"), "owner.email")],
        },
        {
            "label": _("Links and sender"),
            "tags": [
                tag(_("Unsubscribe link"), "unsubscribe_url"),
                tag(_("Preferences link"), "preferences_url"),
                tag(_("View in browser link"), "view_in_browser_url"),
                tag(_("Postal address"), "postal_address"),
            ],
        },
    ]
