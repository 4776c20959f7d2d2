"""Campaign services: write, delete drafts, check, schedule, pause, resume, cancel,
duplicate, test, preview.

The pages and the API call only these functions. A campaign's status moves
along ``TRANSITIONS``:

    draft -> scheduled -> sending -> sent
                          sending <-> paused
    scheduled | sending | paused -> cancelled
    scheduled -> draft (unscheduled, to edit it again)

Every transition is one conditional UPDATE (``WHERE status = <from>``), so two
people pausing and cancelling at once, or a worker finishing the send while
someone pauses it, cannot both win; the loser gets ``CampaignStateError``.
Each transition is written to the audit log (``campaign.<status>``), with the
user who made it or none when the pipeline did.

Sending itself (the recipient snapshot, the workers) is ``patron.mail.pipeline``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.audience.audiences import AudienceInvalid, validate_audience
from patron.core.models import User, Workspace
from patron.core.services import record_audit
from patron.crm.models import Contact
from patron.mail import ab_tests, rendering, templates_service
from patron.mail import blocks as builder
from patron.mail.models import AbMetric, Campaign, CampaignStatus, Delivery, SenderIdentity

S = CampaignStatus
TRANSITIONS: dict[str, set[str]] = {
    S.DRAFT: {S.SCHEDULED},
    S.SCHEDULED: {S.SENDING, S.CANCELLED, S.DRAFT},
    S.SENDING: {S.PAUSED, S.SENT, S.CANCELLED},
    S.PAUSED: {S.SENDING, S.CANCELLED},
    S.SENT: set(),
    S.CANCELLED: set(),
}
CONTENT_FIELDS = ("subject", "preheader", "format", "body", "blocks", "text")
TRACKING_FIELDS = ("track_opens", "track_clicks", "utm", "utm_source", "utm_medium", "utm_campaign")
AB_FIELDS = ("ab_test", "ab_variants", "ab_share", "ab_metric", "ab_wait_hours")
EDITABLE = (
    "name",
    "sender",
    "reply_to",
    "audience",
    *CONTENT_FIELDS,
    *TRACKING_FIELDS,
    *AB_FIELDS,
)
UTM_VALUE = re.compile(r"^[A-Za-z0-9._~+-]{0,100}$")
NAME_LIMIT = 200
TEST_ADDRESS_LIMIT = 10
# The earliest wall-clock time on Earth is UTC+14 (Kiribati): a local-time send
# starts when its time arrives there.
EARLIEST_OFFSET = timedelta(hours=14)
# "Now" given from a browser may be a little in the past by the time it arrives.
PAST_TOLERANCE = timedelta(minutes=5)


class CampaignInvalid(ValueError):
    """A campaign's values or action were refused: ``errors`` maps a field ("" for general)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in errors.items()))
        self.errors = errors


class CampaignStateError(CampaignInvalid):
    """The campaign's status does not allow the action (it may have just changed)."""

    def __init__(self, campaign: Campaign, action: str) -> None:
        super().__init__(
            {
                "": _("A campaign that is %(status)s cannot be %(action)s.")
                % {"status": CampaignStatus(campaign.status).label.lower(), "action": action}
            }
        )
        self.status = campaign.status


# --- Reading ---------------------------------------------------------------------------------


def campaigns_for(workspace: Workspace) -> QuerySet[Campaign]:
    return Campaign.objects.for_workspace(workspace).select_related("sender")


# --- Writing ---------------------------------------------------------------------------------


def _clean(workspace: Workspace, values: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(EDITABLE) - {"sender_id"})
    if unknown:
        raise CampaignInvalid({name: _("This field cannot be set.") for name in unknown})
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    if "name" in values:
        name = " ".join(str(values["name"] or "").split())
        if not name:
            errors["name"] = _("Give the campaign a name.")
        elif len(name) > NAME_LIMIT:
            errors["name"] = _("Keep the name under 200 characters.")
        cleaned["name"] = name
    if "sender" in values or "sender_id" in values:
        given = values.get("sender", values.get("sender_id"))
        if given in (None, ""):
            cleaned["sender"] = None
        else:
            sender_id = given.pk if isinstance(given, SenderIdentity) else given
            sender = (
                SenderIdentity.objects.for_workspace(workspace).filter(pk=sender_id).first()
                if str(sender_id).isdigit()
                else None
            )
            if sender is None:
                errors["sender"] = _("Choose one of this workspace's sender addresses.")
            cleaned["sender"] = sender
    if "reply_to" in values:
        reply_to = str(values["reply_to"] or "").strip()
        if reply_to:
            try:
                validate_email(reply_to)
            except ValidationError:
                errors["reply_to"] = _("“%(value)s” is not a valid email address.") % {
                    "value": reply_to[:100]
                }
        cleaned["reply_to"] = reply_to
    for name in ("track_opens", "track_clicks", "utm"):
        if name in values:
            cleaned[name] = bool(values[name])
    for name in ("utm_source", "utm_medium", "utm_campaign"):
        if name in values:
            value = str(values[name] or "").strip()
            if not UTM_VALUE.match(value):
                errors[name] = _(
                    "Use up to 100 letters, digits and . _ ~ + - (no spaces), "
                    "so the link stays readable."
                )
            # Emptied: the usual value (the model's default) again.
            field = cast("models.Field[Any, Any]", Campaign._meta.get_field(name))
            cleaned[name] = value or field.get_default()
    testing = {name: values[name] for name in AB_FIELDS if name in values}
    if testing:
        try:
            cleaned.update(ab_tests.clean_settings(testing))
        except ab_tests.AbInvalid as error:
            errors.update(error.errors)
        wanted = {v["template"] for v in cleaned.get("ab_variants", []) if v.get("template")}
        if wanted:
            from patron.mail.models import EmailTemplate, TemplateKind

            known = set(
                EmailTemplate.objects.for_workspace(workspace)
                .filter(kind=TemplateKind.MARKETING, pk__in=wanted)
                .values_list("pk", flat=True)
            )
            if wanted - known:
                errors["ab_variants"] = _(
                    "A variant's content must be one of this workspace's marketing templates."
                )
    content = {name: values[name] for name in CONTENT_FIELDS if name in values}
    if content:
        if "blocks" in content and content["blocks"] is None:
            content["blocks"] = {}
        try:
            # The rules templates follow: a builder document writes the body on the
            # server (a posted body is never taken for it), segments must be ours.
            cleaned.update(templates_service.clean_content(workspace, content))
        except templates_service.TemplateInvalid as error:
            errors.update(error.errors)
    if "audience" in values:
        audience = values["audience"] or {}
        if audience:
            try:
                cleaned["audience"] = validate_audience(workspace, audience).as_json()
            except AudienceInvalid as error:
                errors["audience"] = str(error)
        else:
            cleaned["audience"] = {}
    if errors:
        raise CampaignInvalid(errors)
    return cleaned


def starting_content(workspace: Workspace, start: str) -> dict[str, Any]:
    """The content fields a new campaign starts with: a marketing starter's (by key,
    e.g. "newsletter", "blank-builder", "blank-code") or a copy of one of the
    workspace's saved marketing templates ("template:<id>")."""
    from patron.mail import starters
    from patron.mail.models import EmailTemplate, TemplateKind

    if start.startswith("template:"):
        pk = start.removeprefix("template:")
        template = (
            EmailTemplate.objects.for_workspace(workspace)
            .filter(kind=TemplateKind.MARKETING, pk=int(pk) if pk.isdigit() else 0)
            .first()
        )
        if template is None:
            raise CampaignInvalid({"start": _("Choose one of this workspace's templates.")})
        return {name: getattr(template, name) for name in CONTENT_FIELDS}
    starter = starters.get(start)
    if starter is None or starter.kind != TemplateKind.MARKETING:
        raise CampaignInvalid({"start": _("Choose a starter or a template.")})
    values = starter.values()
    return {name: values[name] for name in CONTENT_FIELDS if name in values}


@transaction.atomic
def create_campaign(workspace: Workspace, *, user: User | None, values: dict[str, Any]) -> Campaign:
    """A new draft. Without a sender the workspace's default sender address is used."""
    cleaned = _clean(workspace, {"name": values.get("name", ""), **values})
    if "sender" not in cleaned:
        cleaned["sender"] = (
            SenderIdentity.objects.for_workspace(workspace).filter(is_default=True).first()
        )
    campaign = Campaign.objects.create(workspace=workspace, created_by=user, **cleaned)
    record_audit(
        workspace=workspace,
        actor=user,
        action="campaign.created",
        target=campaign.name,
        data={"campaign": campaign.pk},
    )
    return campaign


@transaction.atomic
def update_campaign(campaign: Campaign, *, user: User | None, values: dict[str, Any]) -> Campaign:
    """Change a draft (a scheduled campaign is unscheduled first)."""
    locked = _locked(campaign)
    if locked.status != S.DRAFT:
        raise CampaignStateError(locked, _("changed"))
    if "body" in values and "blocks" not in values and builder.is_built(locked.blocks):
        # A new body by hand ends the builder design (the code view's one-way switch).
        values = {**values, "blocks": {}}
    cleaned = _clean(locked.workspace, values)
    for name, value in cleaned.items():
        setattr(locked, name, value)
    locked.updated_at = timezone.now()
    locked.save()
    record_audit(
        workspace=locked.workspace,
        actor=user,
        action="campaign.updated",
        target=locked.name,
        data={"campaign": locked.pk, "fields": sorted(cleaned)},
    )
    _refresh(campaign, locked)
    return campaign


@transaction.atomic
def delete_campaign(campaign: Campaign, *, user: User | None) -> None:
    """Delete a draft (the status machine has no "deleted" state).

    One conditional DELETE (``WHERE status = 'draft'``): a campaign scheduled a
    moment earlier by someone else is kept and the caller gets ``CampaignStateError``.
    Audited as ``campaign.deleted``.
    """
    deleted, _rows = (
        Campaign.objects.for_workspace(campaign.workspace_id)
        .filter(pk=campaign.pk, status=S.DRAFT)
        .delete()
    )
    if not deleted:
        fresh = Campaign.objects.for_workspace(campaign.workspace_id).filter(pk=campaign.pk).first()
        raise CampaignStateError(fresh or campaign, _("deleted"))
    record_audit(
        workspace=campaign.workspace,
        actor=user,
        action="campaign.deleted",
        target=campaign.name,
        data={"campaign": campaign.pk},
    )


def _locked(campaign: Campaign) -> Campaign:
    return (
        Campaign.objects.for_workspace(campaign.workspace_id)
        .select_for_update(of=("self",))
        .select_related("workspace", "sender")
        .get(pk=campaign.pk)
    )


def _refresh(campaign: Campaign, source: Campaign) -> None:
    for field in Campaign._meta.concrete_fields:
        setattr(campaign, field.attname, getattr(source, field.attname))


# --- Checks ----------------------------------------------------------------------------------


def template_source(campaign: Campaign) -> rendering.TemplateSource:
    return rendering.TemplateSource(
        subject=campaign.subject, body=campaign.body, format=campaign.format, text=campaign.text
    )


def check_campaign(campaign: Campaign) -> list[rendering.Problem]:
    """Everything in the way of sending, blocking problems first.

    The template's own checks, then: a sender address that is verified, and an
    audience that resolves and reaches at least one sendable contact.
    """
    from patron.mail import pipeline

    sender = campaign.sender
    problems = rendering.check_template(
        template_source(campaign),
        sample=pipeline.sample_context(campaign),
        postal_address=sender.postal_address if sender else "",
    )
    if sender is None:
        problems.append(rendering.Problem("sender", _("Choose the sender address."), part="sender"))
    elif not sender.is_verified:
        problems.append(
            rendering.Problem(
                "sender",
                _("The sender address %(address)s is not verified yet.")
                % {"address": sender.from_email},
                part="sender",
            )
        )
    if not campaign.audience:
        problems.append(
            rendering.Problem("audience", _("Choose who receives it."), part="audience")
        )
    else:
        try:
            audience = validate_audience(campaign.workspace, campaign.audience)
        except AudienceInvalid as error:
            problems.append(rendering.Problem("audience", str(error), part="audience"))
        else:
            if not pipeline.recipients(campaign.workspace, audience).exists():
                problems.append(
                    rendering.Problem(
                        "audience",
                        _(
                            "Nobody in this audience can be mailed (suppressed, unsubscribed "
                            "or without an address)."
                        ),
                        part="audience",
                    )
                )
    problems.extend(ab_test_problems(campaign))
    return sorted(problems, key=lambda problem: not problem.blocking)


def ab_test_problems(campaign: Campaign) -> list[rendering.Problem]:
    """What keeps an A/B test from running: no variant, a variant the same as A, a
    variant's subject that does not compile, the metric's tracking turned off."""
    from patron.mail import pipeline

    if not campaign.ab_test:
        return []
    problems: list[rendering.Problem] = []

    def problem(code: str, message: str) -> None:
        problems.append(rendering.Problem(code, message, part="ab_test"))

    if not campaign.ab_variants:
        problem("ab_no_variant", _("Add variant B, or turn the A/B test off."))
        return problems
    for index in ab_tests.same_as_a(campaign):
        problem(
            "ab_same",
            _("Variant %(letter)s is the same as A: change its subject, preheader or name.")
            % {"letter": ab_tests.letter(index)},
        )
    for index, variant in enumerate(campaign.ab_variants, start=1):
        if not variant.get("subject") and not variant.get("template"):
            continue
        try:
            shown = ab_tests.variant_campaign(campaign, index)
        except ab_tests.AbInvalid as error:
            problem("ab_template", error.errors["ab_variants"])
            continue
        # A variant's own subject, and its own content when it has one, are checked
        # as the campaign's are: the parts that are the campaign's own are checked already.
        parts = {"subject"} if not variant.get("template") else {"subject", "body", "text"}
        source = template_source(shown)
        found_problems = rendering.check_template(
            source,
            sample=pipeline.sample_context(shown),
            postal_address=shown.sender.postal_address if shown.sender else "",
        )
        for found in found_problems:
            if found.part in parts and found.blocking:
                problem(
                    found.code,
                    _("Variant %(letter)s: %(problem)s")
                    % {"letter": ab_tests.letter(index), "problem": found.message},
                )
    if campaign.ab_metric == AbMetric.OPEN_RATE and not campaign.track_opens:
        problem("ab_tracking", _("The winner by open rate needs open tracking: turn it on."))
    if campaign.ab_metric == AbMetric.CLICK_RATE and not campaign.track_clicks:
        problem("ab_tracking", _("The winner by click rate needs click tracking: turn it on."))
    return problems


# --- Status ----------------------------------------------------------------------------------


def transition(
    campaign: Campaign,
    to: str,
    *,
    user: User | None,
    action: str,
    allowed_from: set[str] | None = None,
    **updates: Any,
) -> Campaign:
    """Move ``campaign`` to status ``to`` if its status (in the database) allows it.

    One conditional UPDATE; raises ``CampaignStateError`` when the status does
    not allow the move. ``updates`` are written in the same UPDATE. Audited.
    """
    sources = {status for status, targets in TRANSITIONS.items() if to in targets}
    if allowed_from is not None:
        sources &= allowed_from
    now = timezone.now()
    changed = (
        Campaign.objects.for_workspace(campaign.workspace_id)
        .filter(pk=campaign.pk, status__in=sources)
        .update(status=to, updated_at=now, **updates)
    )
    fresh = Campaign.objects.for_workspace(campaign.workspace_id).get(pk=campaign.pk)
    previous = campaign.status
    _refresh(campaign, fresh)
    if not changed:
        raise CampaignStateError(campaign, action)
    record_audit(
        workspace=campaign.workspace,
        actor=user,
        action=f"campaign.{to}",
        target=campaign.name,
        data={"campaign": campaign.pk, "from": previous, "to": to},
    )
    return campaign


def local_start(send_at: datetime, workspace: Workspace) -> datetime:
    """The moment ``send_at``'s wall-clock time (in the workspace's zone) first arrives anywhere."""
    wall = send_at.astimezone(workspace_zone(workspace)).replace(tzinfo=None)
    return wall.replace(tzinfo=UTC) - EARLIEST_OFFSET


def workspace_zone(workspace: Workspace) -> ZoneInfo:
    try:
        return ZoneInfo(workspace.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@transaction.atomic
def schedule_campaign(
    campaign: Campaign, *, user: User | None, at: datetime | None = None, local_time: bool = False
) -> Campaign:
    """Schedule a draft (or move a scheduled one) to go out ``at`` (``None``: now).

    With ``local_time`` each recipient gets it at ``at``'s wall-clock time in
    their own time zone (the contact's, else the workspace's): the send starts
    when that time first arrives on Earth and holds each delivery until its
    recipient's moment. Blocking problems of ``check_campaign`` refuse it.
    """
    locked = _locked(campaign)
    if locked.status not in (S.DRAFT, S.SCHEDULED):
        raise CampaignStateError(locked, _("scheduled"))
    now = timezone.now()
    if at is not None:
        if timezone.is_naive(at):
            raise CampaignInvalid({"send_at": _("Give the time with its time zone.")})
        if at < now - PAST_TOLERANCE:
            raise CampaignInvalid({"send_at": _("Choose a time in the future.")})
    send_at = at or now
    if local_time and locked.ab_test:
        raise CampaignInvalid(
            {
                "send_at": _(
                    "An A/B test goes out at one time to everyone: send it now or at a time, "
                    "not in each recipient's time zone."
                )
            }
        )
    blocking = [problem for problem in check_campaign(locked) if problem.blocking]
    if blocking:
        errors: dict[str, str] = {}
        for problem in blocking:
            key = problem.part if problem.part in ("sender", "audience", "subject") else ""
            errors.setdefault(key, str(problem) if key == "" else problem.message)
        raise CampaignInvalid(errors)
    start_at = local_start(send_at, locked.workspace) if local_time else send_at
    transition(
        locked,
        S.SCHEDULED,
        user=user,
        action=_("scheduled"),
        allowed_from={S.DRAFT, S.SCHEDULED} if locked.status == S.SCHEDULED else None,
        send_at=send_at,
        local_time=local_time,
        start_at=start_at,
    )
    _refresh(campaign, locked)
    if start_at <= now:
        from patron.mail import tasks

        transaction.on_commit(lambda: tasks.start_campaign.enqueue(campaign.pk))
    return campaign


def unschedule_campaign(campaign: Campaign, *, user: User | None) -> Campaign:
    """Back to draft, to edit it again before it starts."""
    return transition(
        campaign, S.DRAFT, user=user, action=_("unscheduled"), send_at=None, start_at=None
    )


def pause_campaign(campaign: Campaign, *, user: User | None) -> Campaign:
    """Stop sending: workers finish the messages in hand and claim no more."""
    return transition(campaign, S.PAUSED, user=user, action=_("paused"))


def resume_campaign(campaign: Campaign, *, user: User | None) -> Campaign:
    """Go on sending where a pause stopped."""
    from patron.mail import pipeline

    transition(campaign, S.SENDING, user=user, action=_("resumed"), allowed_from={S.PAUSED})
    pipeline.dispatch_chunks(campaign)
    return campaign


@transaction.atomic
def cancel_campaign(campaign: Campaign, *, user: User | None) -> Campaign:
    """Stop for good: deliveries not sent yet are cancelled (messages in flight finish)."""
    from patron.mail import pipeline

    transition(campaign, S.CANCELLED, user=user, action=_("cancelled"), finished_at=timezone.now())
    pipeline.cancel_remaining(campaign)
    return campaign


@transaction.atomic
def duplicate_campaign(campaign: Campaign, *, user: User | None) -> Campaign:
    """A new draft with the same content, sender and audience (not the schedule)."""
    name = _("Copy of %(name)s") % {"name": campaign.name}
    copy = Campaign.objects.create(
        workspace_id=campaign.workspace_id,
        name=name[:NAME_LIMIT],
        sender=campaign.sender,
        reply_to=campaign.reply_to,
        audience=campaign.audience,
        created_by=user,
        **{
            field: getattr(campaign, field)
            for field in (*CONTENT_FIELDS, *TRACKING_FIELDS, *AB_FIELDS)
        },
    )
    record_audit(
        workspace=campaign.workspace,
        actor=user,
        action="campaign.duplicated",
        target=copy.name,
        data={"campaign": copy.pk, "source": campaign.pk},
    )
    return copy


# --- Tests and previews ----------------------------------------------------------------------


def preview(campaign: Campaign, contact: Contact | None = None) -> rendering.RenderedMessage:
    """The message as ``contact`` (or a sample person) would get it."""
    from patron.mail import pipeline

    compiled = pipeline.with_preheader(
        rendering.compile_template(template_source(campaign)), campaign.preheader
    )
    if contact is None:
        context = pipeline.sample_context(campaign)
    else:
        context = pipeline.recipient_context(campaign, contact, delivery_id=0)
    return compiled.render(context)


def clean_test_addresses(addresses: list[str]) -> list[str]:
    """The addresses of a test send, checked: valid, no repeats, 1 to 10 of them."""
    cleaned: list[str] = []
    for address in addresses:
        value = (address or "").strip()
        if not value:
            continue
        try:
            validate_email(value)
        except ValidationError:
            raise CampaignInvalid(
                {"addresses": _("“%(value)s” is not a valid email address.") % {"value": value}}
            ) from None
        if value.lower() not in {a.lower() for a in cleaned}:
            cleaned.append(value)
    if not cleaned:
        raise CampaignInvalid({"addresses": _("Enter at least one address.")})
    if len(cleaned) > TEST_ADDRESS_LIMIT:
        raise CampaignInvalid({"addresses": _("Send a test to at most 10 addresses.")})
    return cleaned


def send_test(
    campaign: Campaign,
    *,
    user: User | None,
    addresses: list[str],
    contact: Contact | None = None,
) -> None:
    """Send the message, subject marked [Test], to a few addresses through the real transport."""
    from patron.mail import pipeline

    cleaned = clean_test_addresses(addresses)
    if campaign.sender is None:
        raise CampaignInvalid({"sender": _("Choose the sender address.")})
    try:
        rendered = preview(campaign, contact)
    except rendering.TemplateError as error:
        raise CampaignInvalid({"body": str(error.problem)}) from error
    pipeline.send_test_messages(campaign, rendered, cleaned, contact=contact)
    record_audit(
        workspace=campaign.workspace,
        actor=user,
        action="campaign.test_sent",
        target=campaign.name,
        data={"campaign": campaign.pk, "addresses": cleaned},
    )


# --- Progress --------------------------------------------------------------------------------

RATE_WINDOW = timedelta(seconds=60)


@dataclass
class Progress:
    status: str
    total: int
    sent: int
    failed: int
    pending: int
    rate_per_second: float
    eta_seconds: int | None


def progress(campaign: Campaign) -> Progress:
    """Sent and failed of total, the send rate over the last minute, and the time left."""
    fresh = Campaign.objects.for_workspace(campaign.workspace_id).get(pk=campaign.pk)
    finished = fresh.status in (S.SENT, S.CANCELLED)
    pending = 0 if finished else max(fresh.total - fresh.sent - fresh.failed, 0)
    rate = 0.0
    if fresh.status == S.SENDING and fresh.started_at is not None:
        now = timezone.now()
        since = max(now - RATE_WINDOW, fresh.started_at)
        recent = (
            Delivery.objects.for_workspace(fresh.workspace_id)
            .filter(campaign=fresh, sent_at__gte=since)
            .count()
        )
        seconds = max((now - since).total_seconds(), 1.0)
        rate = recent / seconds
    eta = None
    if pending == 0:
        eta = 0 if finished or fresh.status == S.SENDING else None
    elif rate > 0:
        eta = int(pending / rate) + 1
    return Progress(
        status=fresh.status,
        total=fresh.total,
        sent=fresh.sent,
        failed=fresh.failed,
        pending=pending,
        rate_per_second=round(rate, 1),
        eta_seconds=eta,
    )
