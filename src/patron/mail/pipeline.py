"""The send pipeline: from a scheduled campaign to every recipient's mailbox, once.

1. **Start** (``start_campaign``): the recipients are written set-based, one
   ``INSERT ... SELECT`` from the audience through the sending gate
   (``patron.audience.sending.sendable_contacts``: suppression, consent, role
   addresses, no address), one ``Delivery`` row per contact and address. This
   snapshot is the contract: each row is sent once. For a local-time send the
   same statement gives each row its ``not_before`` (the wall-clock time in the
   contact's zone, else the workspace's) and orders the rows by it, so that
   each chunk holds recipients of nearly the same moment.
2. **Chunks**: the rows are cut into id ranges (``SendChunk``), each a task
   for a worker (``patron.mail.tasks.send_chunk``).
3. **A worker** (``run_chunk``) claims up to ``SEND_BATCH_SIZE`` rows of its
   range at a time with a lease (``SELECT ... FOR UPDATE SKIP LOCKED`` inside
   one UPDATE on PostgreSQL; one conditional UPDATE on SQLite, whose writers
   take turns), asks the sending gate again about exactly those contacts (an
   address suppressed or unsubscribed since the start is not mailed), renders
   each message with the campaign's template compiled once per process,
   assembles the MIME bytes, signs them (DKIM), hands the batch to the
   transport, and records the results in bulk with the activity events.
4. **Results**: sent rows are final; a temporary failure (4xx, a dropped
   connection) puts the row back with an exponential backoff until
   ``SEND_MAX_ATTEMPTS``; a permanent one (5xx) fails the row and keeps the
   server's reply. A row whose lease expires (its worker died) is claimed
   again: after a crash, at most the messages that were in flight go twice.
   A 5xx refusal is also a bounce (``feedback.record_send_refusals``): hard
   ones suppress the address at once, as a bounce report would.
5. **The scheduler** (``advance_campaigns``, every few seconds) starts due
   campaigns, wakes chunks whose held-back rows are due, re-enqueues chunks
   whose worker stopped (no progress for a lease) and queued chunks whose task
   a worker took but never started (killed between taking the task and
   marking the chunk running), and marks campaigns sent when every chunk is
   done.

An A/B test (``patron.mail.ab_tests``) splits the snapshot at the start: a
random share of the rows gets a variant, the rest is held (``not_before``)
until the scheduler picks the winner, and each batch is rendered per variant.

Nothing here loads the audience into Python: the snapshot is one statement,
and a worker holds one batch at a time.
"""

from __future__ import annotations

import contextlib
import html as html_lib
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, IntegerField, Min, Q, QuerySet, Value, When
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django_tasks import TaskResultStatus
from django_tasks.exceptions import TaskResultDoesNotExist

from patron.activity.services import record_for_contacts, record_per_contact
from patron.audience import segments as segment_compiler
from patron.audience.audiences import (
    Audience,
    AudienceInvalid,
    audience_contacts,
    validate_audience,
)
from patron.audience.models import Segment
from patron.audience.sending import sendable_contacts
from patron.core.models import Workspace
from patron.crm.models import Contact
from patron.mail import ab_tests, dkim, feedback, links, mime, rendering, tokens, transports
from patron.mail.blocks import referenced_segments
from patron.mail.campaigns import (
    CampaignStateError,
    template_source,
    transition,
    workspace_zone,
)
from patron.mail.models import (
    Campaign,
    CampaignStatus,
    ChunkState,
    Delivery,
    DeliveryStatus,
    SendChunk,
)
from patron.tracking import links as tracking_links

logger = logging.getLogger(__name__)

# Held-back rows due within this are waited for in the worker instead of the scheduler.
SHORT_WAIT = timedelta(seconds=2)
# Why a claimed delivery was not sent after all (kept in its reply column).
GONE_SINCE_START = "Not sent: suppressed, unsubscribed or deleted after the send started."
ADDRESS_CHANGED = "Not sent: the contact's address changed after the send started."


# --- Recipients ------------------------------------------------------------------------------


def recipients(workspace: Workspace, audience: Audience) -> QuerySet[Contact]:
    """The contacts a campaign to ``audience`` may mail now, as one query."""
    # A list's members are its subscribed ones; when segments are part of the
    # audience, the list rule of the gate cannot apply to everyone (a segment
    # reaches people on no list), and the audience itself keeps list members
    # to subscribed ones.
    lists = None if audience.include_segments else audience.include_lists
    return sendable_contacts(workspace, audience_contacts(workspace, audience), lists=lists)


def _zone(name: str) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_send_times(
    campaign: Campaign, zones: Iterable[str]
) -> tuple[dict[str, datetime], datetime]:
    """For each time zone name, when ``send_at``'s wall-clock time comes there; and the default.

    Zones that are unknown or empty fall back to the workspace's zone (the default).
    """
    assert campaign.send_at is not None
    fallback = workspace_zone(campaign.workspace)
    wall = campaign.send_at.astimezone(fallback).replace(tzinfo=None)
    default = wall.replace(tzinfo=fallback)
    times: dict[str, datetime] = {}
    for name in zones:
        zone = _zone(name)
        if zone is not None:
            times[name] = wall.replace(tzinfo=zone)
    return times, default


def snapshot(campaign: Campaign, audience: Audience) -> int:
    """Write the campaign's deliveries from its audience in one statement; returns how many."""
    workspace = campaign.workspace
    contacts = recipients(workspace, audience)
    columns = ["workspace_id", "campaign_id", "contact_id", "email", "status", "attempts", "reply"]
    selected = contacts.annotate(
        d_workspace=Value(workspace.pk, output_field=IntegerField()),
        d_campaign=Value(campaign.pk, output_field=IntegerField()),
        d_email=Lower("email"),
        d_status=Value(DeliveryStatus.QUEUED),
        d_attempts=Value(0, output_field=IntegerField()),
        d_reply=Value(""),
    )
    names = ["d_workspace", "d_campaign", "pk", "d_email", "d_status", "d_attempts", "d_reply"]
    order: list[Any] = ["pk"]
    if campaign.local_time and campaign.send_at is not None:
        zones = (
            Contact.objects.for_workspace(workspace)
            .exclude(time_zone="")
            .order_by()
            .values_list("time_zone", flat=True)
            .distinct()
        )
        times, default = local_send_times(campaign, zones)
        # One WHEN per distinct instant, naming all the zones that share it.
        by_instant: dict[datetime, list[str]] = {}
        for name, instant in times.items():
            by_instant.setdefault(instant, []).append(name)
        whens = [
            When(time_zone__in=zone_names, then=Value(instant))
            for instant, zone_names in sorted(by_instant.items())
        ]
        selected = selected.annotate(
            d_not_before=Case(*whens, default=Value(default)) if whens else Value(default)
        )
        columns.append("not_before")
        names.append("d_not_before")
        order = ["d_not_before", "pk"]
    sql, params = selected.order_by(*order).values_list(*names).query.sql_with_params()
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        # "WHERE true" lets SQLite read ON CONFLICT as the upsert clause.
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - fixed identifiers
            f"SELECT * FROM ({sql}) AS recipients WHERE true ON CONFLICT DO NOTHING",
            params,
        )
    return Delivery.objects.for_workspace(workspace).filter(campaign=campaign).count()


def make_chunks(campaign: Campaign) -> list[SendChunk]:
    """Cut the campaign's deliveries into id ranges of ``SEND_CHUNK_SIZE`` rows."""
    size = settings.SEND_CHUNK_SIZE
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n "  # noqa: S608
            f"FROM {table} WHERE campaign_id = %s) AS numbered "
            f"WHERE (n - 1) %% %s = 0 ORDER BY id",
            [campaign.pk, size],
        )
        starts = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"SELECT MAX(id) FROM {table} WHERE campaign_id = %s", [campaign.pk])  # noqa: S608
        last = cursor.fetchone()[0]
    ranges = [
        (start, (starts[i + 1] - 1) if i + 1 < len(starts) else last)
        for i, start in enumerate(starts)
    ]
    return SendChunk.objects.bulk_create(
        SendChunk(workspace_id=campaign.workspace_id, campaign=campaign, first_id=a, last_id=b)
        for a, b in ranges
    )


# --- Starting, stopping ----------------------------------------------------------------------


def start_campaign(campaign_id: int) -> Campaign | None:
    """Start a scheduled campaign that is due: snapshot, chunks, workers. Idempotent."""
    with transaction.atomic():
        campaign = (
            Campaign.objects.unscoped()
            .select_for_update()
            .filter(pk=campaign_id, status=CampaignStatus.SCHEDULED)
            .first()
        )
        if campaign is None:
            return None  # started already, unscheduled or cancelled
        if campaign.start_at and campaign.start_at > timezone.now():
            return None
        try:
            audience = validate_audience(campaign.workspace, campaign.audience)
        except AudienceInvalid as error:
            # Back to draft, with the reason beside it: nothing was sent.
            transition(
                campaign,
                CampaignStatus.DRAFT,
                user=None,
                action=_("started"),
                last_error=_("The send could not start: %(error)s") % {"error": error},
            )
            return campaign
        total = snapshot(campaign, audience)
        now = timezone.now()
        testing: dict[str, Any] = {}
        if ab_tests.is_on(campaign) and not campaign.local_time:
            # The test group gets the variants; the rest waits for the winner.
            ab_tests.split(campaign, total, start=now)
            testing = {
                "ab_decide_at": ab_tests.decide_at(now, campaign),
                "ab_winner": None,
                "ab_confidence": None,
                "ab_decided_at": None,
            }
        chunks = make_chunks(campaign)
        transition(
            campaign,
            CampaignStatus.SENDING,
            user=None,
            action=_("started"),
            started_at=now,
            total=total,
            sent=0,
            failed=0,
            last_error="",
            **testing,
        )
        chunk_ids = [chunk.pk for chunk in chunks]
        transaction.on_commit(lambda: enqueue_chunks(chunk_ids))
    if not chunk_ids:
        finish_if_done(campaign)
    return campaign


def enqueue_chunk(chunk_id: int) -> None:
    """Hand a chunk to the workers, and note which task carries it (see ``_orphaned``)."""
    from patron.mail import tasks

    result = tasks.send_chunk.enqueue(chunk_id)
    SendChunk.objects.unscoped().filter(pk=chunk_id, state=ChunkState.QUEUED).update(
        task_id=str(result.id)
    )


def enqueue_chunks(chunk_ids: Iterable[int]) -> None:
    for chunk_id in chunk_ids:
        enqueue_chunk(chunk_id)


def dispatch_chunks(campaign: Campaign) -> int:
    """Hand every unfinished chunk of the campaign to the workers again (after a resume)."""
    chunks = SendChunk.objects.for_workspace(campaign.workspace_id).filter(campaign=campaign)
    pending = list(chunks.exclude(state=ChunkState.DONE).values_list("pk", flat=True))
    chunks.filter(pk__in=pending).update(
        state=ChunkState.QUEUED, touched_at=timezone.now(), wake_at=None
    )
    transaction.on_commit(lambda: enqueue_chunks(pending))
    return len(pending)


def cancel_remaining(campaign: Campaign) -> int:
    """Cancel the deliveries not sent yet (rows a live worker holds finish first)."""
    now = timezone.now()
    rows = Delivery.objects.for_workspace(campaign.workspace_id).filter(campaign=campaign)
    cancelled = rows.filter(
        Q(status=DeliveryStatus.QUEUED) | Q(status=DeliveryStatus.SENDING, lease_until__lt=now)
    ).update(status=DeliveryStatus.CANCELLED, lease_until=None)
    SendChunk.objects.for_workspace(campaign.workspace_id).filter(campaign=campaign).update(
        state=ChunkState.DONE, wake_at=None
    )
    return cancelled


def finish_if_done(campaign: Campaign) -> bool:
    """Mark a sending campaign sent once every chunk is done."""
    unfinished = (
        SendChunk.objects.for_workspace(campaign.workspace_id)
        .filter(campaign_id=campaign.pk)
        .exclude(state=ChunkState.DONE)
        .exists()
    )
    if unfinished:
        return False
    try:
        transition(
            campaign,
            CampaignStatus.SENT,
            user=None,
            action=_("finished"),
            allowed_from={CampaignStatus.SENDING},
            finished_at=timezone.now(),
        )
    except CampaignStateError:
        return False
    return True


# --- Rendering per recipient -----------------------------------------------------------------


def public_url(path: str) -> str:
    return f"{settings.BASE_URL}{path}"


@dataclass(frozen=True, slots=True)
class RecipientLinks:
    unsubscribe: str
    mailto: str
    preferences: str
    view: str


def recipient_links(
    workspace_id: int, contact_id: int, campaign_id: int, delivery_id: int
) -> RecipientLinks:
    """The signed links of one message: unsubscribe (page and mailto), preference centre,
    view in browser."""
    token = links.unsubscribe_token(workspace_id, contact_id, campaign_id)  # signed once
    return RecipientLinks(
        unsubscribe=links.unsubscribe_page(token),
        mailto=f"mailto:{links.unsubscribe_address(token)}",
        preferences=links.preferences_page(token),
        view=view_url(workspace_id, delivery_id),
    )


def view_url(workspace_id: int, delivery_id: int) -> str:
    return public_url(f"/m/{tokens.sign('view', workspace_id, delivery_id)}/")


def with_preheader(
    compiled: rendering.CompiledTemplate, preheader: str
) -> rendering.CompiledTemplate:
    """``compiled`` with the preheader as the hidden first text of the body.

    Inboxes show it after the subject. The HTML is parsed as Liquid again,
    once per campaign.
    """
    if preheader:
        compiled.html = _preheader_html(compiled.html, preheader)
        compiled.html_template = rendering.HTML_LIQUID.from_string(compiled.html)
    return compiled


def _preheader_html(html: str, preheader: str) -> str:
    hidden = (
        '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">'
        f"{html_lib.escape(preheader)}</div>"
    )
    match = re.search(r"<body[^>]*>", html, flags=re.IGNORECASE)
    if match is None:
        return hidden + html
    return html[: match.end()] + hidden + html[match.end() :]


def with_tracking(
    campaign: Campaign, compiled: rendering.CompiledTemplate
) -> tuple[rendering.CompiledTemplate, tuple[int, ...] | None]:
    """``compiled`` with the campaign's links tracked and the open pixel added (as it chose),
    and the tracked links' numbers in the order of its placeholders (None: nothing tracked).
    """
    utm = None
    if campaign.utm:
        utm = tracking_links.Utm(
            source=campaign.utm_source,
            medium=campaign.utm_medium,
            campaign=campaign.utm_campaign or slugify(campaign.name),
        )
    if not (campaign.track_opens or campaign.track_clicks or utm):
        return compiled, None
    rewritten = tracking_links.rewrite(
        compiled.html,
        compiled.text,
        track_clicks=campaign.track_clicks,
        track_opens=campaign.track_opens,
        utm=utm,
    )
    numbers = tracking_links.register_links(
        workspace_id=campaign.workspace_id, campaign_id=campaign.pk, urls=rewritten.urls
    )
    compiled.html = rewritten.html
    compiled.text = rewritten.text
    compiled.html_template = rendering.HTML_LIQUID.from_string(rewritten.html)
    compiled.text_template = rendering.TEXT_LIQUID.from_string(rewritten.text)
    tracks = campaign.track_opens or campaign.track_clicks
    return compiled, (tuple(numbers) if tracks else None)


@dataclass
class PreparedCampaign:
    """What a worker computes once per campaign: template, signer, sender, segment tests."""

    campaign: Campaign
    compiled: rendering.CompiledTemplate
    signer: dkim.DkimSigner | None
    from_name: str
    from_email: str
    reply_to: str
    postal_address: str
    lists: tuple[int, ...] | None
    segment_tests: dict[int, Q] = field(default_factory=dict)
    # The tracked links' numbers (``with_tracking``); None: no pixel, no click tokens.
    tracked_links: tuple[int, ...] | None = None


_prepared: dict[tuple[int, datetime, int], PreparedCampaign] = {}


def prepare(campaign: Campaign, variant: int = 0) -> PreparedCampaign:
    """The campaign compiled for sending, cached per process (keyed by its last change).

    ``variant``: an A/B test's variant (0 is A, the campaign itself); the
    prepared campaign then carries that variant's subject, preheader and
    sender name (``ab_tests.variant_campaign``).
    """
    key = (campaign.pk, campaign.updated_at, variant)
    found = _prepared.get(key)
    if found is not None:
        return found
    sender = campaign.sender
    if sender is None:
        raise rendering.TemplateError(
            rendering.Problem("sender", _("The campaign has no sender address."), part="sender")
        )
    from_name = ab_tests.variant_values(campaign, variant)["from_name"]
    campaign = ab_tests.variant_campaign(campaign, variant)
    compiled, tracked_links = with_tracking(
        campaign,
        with_preheader(rendering.compile_template(template_source(campaign)), campaign.preheader),
    )
    # An automated campaign (``patron.mail.automated``) has no audience: its rows are
    # added as contacts reach a workflow step, through the same sending gate.
    lists = None
    if campaign.audience:
        audience = validate_audience(campaign.workspace, campaign.audience)
        lists = None if audience.include_segments else audience.include_lists
    domain = sender.from_email.rpartition("@")[2]
    tests = segment_tests(campaign)
    prepared = PreparedCampaign(
        campaign=campaign,
        compiled=compiled,
        signer=dkim.signer_for(campaign.workspace_id, domain),
        from_name=from_name,
        from_email=sender.from_email,
        reply_to=campaign.reply_to or sender.reply_to,
        postal_address=sender.postal_address,
        lists=lists,
        segment_tests=tests,
        tracked_links=tracked_links,
    )
    # One version per campaign: an edited (re-keyed) campaign replaces its old entries.
    for old in [k for k in _prepared if k[0] == campaign.pk and k[1] != campaign.updated_at]:
        del _prepared[old]
    _prepared[key] = prepared
    return prepared


def segment_tests(campaign: Campaign) -> dict[int, Q]:
    """The compiled definitions of the segments the campaign's dynamic blocks name."""
    tests: dict[int, Q] = {}
    wanted = referenced_segments(campaign.body)
    if not wanted:
        return tests
    vocab = segment_compiler.vocabulary(campaign.workspace)
    for pk, definition in (
        Segment.objects.for_workspace(campaign.workspace_id)
        .filter(pk__in=wanted)
        .values_list("pk", "definition")
    ):
        try:
            tests[pk] = segment_compiler.compile_definition(
                campaign.workspace, definition, vocab=vocab
            )
        except segment_compiler.SegmentInvalid:
            continue  # a block whose segment no longer compiles is shown to nobody
    return tests


def segments_of(campaign: Campaign, contact: Contact) -> list[int]:
    """The segments among those the campaign's blocks name that ``contact`` is in."""
    members = _segment_members_for(campaign.workspace_id, segment_tests(campaign), [contact.pk])
    return members.get(contact.pk, [])


def recipient_context(
    campaign: Campaign,
    contact: Contact,
    *,
    delivery_id: int,
    segments: list[int] | None = None,
) -> dict[str, Any]:
    """The merge-tag variables of one recipient (contact fields, links, sender, segments)."""
    token = links.unsubscribe_token(campaign.workspace_id, contact.pk or 0, campaign.pk or 0)
    sender = campaign.sender
    return rendering.contact_context(
        contact,
        unsubscribe_url=links.unsubscribe_page(token),
        preferences_url=links.preferences_page(token),
        view_in_browser_url=view_url(campaign.workspace_id, delivery_id),
        postal_address=sender.postal_address if sender else "",
        segments=segments or [],
    )


def sample_context(campaign: Campaign) -> dict[str, Any]:
    """A sample recipient's variables, for checks and previews without a contact."""
    sample = Contact(
        workspace_id=campaign.workspace_id,
        first_name=_("Alex"),
        last_name=_("Sample"),
        email="alex.sample@example.com",
    )
    segments = sorted(referenced_segments(campaign.body))
    return recipient_context(campaign, sample, delivery_id=0, segments=segments)


BULK_HEADERS = (
    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ("Precedence", "bulk"),
)


# --- Working a chunk -------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    contact_id: int
    email: str
    attempts: int
    variant: int | None = None  # the A/B test variant; None: the campaign's (or the winner's)


def claim(campaign: Campaign, first_id: int, last_id: int, limit: int) -> list[Claimed]:
    """Lease up to ``limit`` due rows of the id range: queued ones, and expired leases."""
    now = timezone.now()
    lease_until = now + timedelta(seconds=settings.SEND_LEASE_SECONDS)
    table = Delivery._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    due = (
        f"SELECT id FROM {table} WHERE campaign_id = %s AND id BETWEEN %s AND %s "  # noqa: S608
        "AND ((status = %s AND (not_before IS NULL OR not_before <= %s)) "
        "OR (status = %s AND lease_until < %s)) ORDER BY id LIMIT %s"
    )
    if connection.vendor == "postgresql":
        # The rows are picked once, in a materialised CTE: as an IN (subquery) the
        # planner may run the LIMIT ... SKIP LOCKED subquery again per outer row and
        # lease more rows than asked for (seen: three claimed with a limit of two).
        sql = (
            f"WITH picked AS MATERIALIZED ({due} FOR UPDATE SKIP LOCKED) "  # noqa: S608
            f"UPDATE {table} AS d SET status = %s, lease_until = %s, "
            "attempts = d.attempts + 1 FROM picked WHERE d.id = picked.id "
            "RETURNING d.id, d.contact_id, d.email, d.attempts, d.variant"
        )
    else:
        sql = (
            f"UPDATE {table} SET status = %s, lease_until = %s, "  # noqa: S608
            f"attempts = attempts + 1 WHERE id IN ({due}) "
            "RETURNING id, contact_id, email, attempts, variant"
        )
    due_params: list[Any] = [
        campaign.pk,
        first_id,
        last_id,
        DeliveryStatus.QUEUED,
        adapt(now),
        DeliveryStatus.SENDING,
        adapt(now),
        limit,
    ]
    lease: list[Any] = [DeliveryStatus.SENDING, adapt(lease_until)]
    params = [*due_params, *lease] if connection.vendor == "postgresql" else [*lease, *due_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    rows.sort()
    return [Claimed(*row) for row in rows]


_CONTACT_VALUES = (*rendering.CONTACT_FIELDS, "birthday", "custom")
_COMPANY_VALUES = (*rendering.COMPANY_FIELDS, "custom")
# One row per contact: the contact's fields, its company's and its owner's, by name.
ROW_FIELDS = (
    "id",
    *_CONTACT_VALUES,
    *[f"company__{name}" for name in _COMPANY_VALUES],
    "company_id",
    "owner__name",
    "owner__email",
    "owner_id",
)


def _gated_rows(prepared: PreparedCampaign, rows: Sequence[Claimed]) -> dict[int, dict[str, Any]]:
    """The batch's contacts the sending gate still allows, as plain rows (one query)."""
    campaign = prepared.campaign
    ids = [row.contact_id for row in rows]
    allowed = sendable_contacts(
        campaign.workspace,
        Contact.objects.for_workspace(campaign.workspace_id).filter(pk__in=ids),
        lists=prepared.lists,
    ).values(*ROW_FIELDS)
    return {row["id"]: row for row in allowed}


def _row_context(values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    contact = {name: values[name] for name in _CONTACT_VALUES}
    company = None
    if values["company_id"] is not None:
        company = {name: values[f"company__{name}"] for name in _COMPANY_VALUES}
    owner = None
    if values["owner_id"] is not None:
        owner = {"name": values["owner__name"], "email": values["owner__email"]}
    return rendering.values_context(contact, company, owner, **extra)


def _segment_members(prepared: PreparedCampaign, contact_ids: list[int]) -> dict[int, list[int]]:
    return _segment_members_for(prepared.campaign.workspace_id, prepared.segment_tests, contact_ids)


def _segment_members_for(
    workspace_id: int, tests: dict[int, Q], contact_ids: list[int]
) -> dict[int, list[int]]:
    """For each of ``contact_ids``, the ids of the segments of ``tests`` it is in (a query each)."""
    members: dict[int, list[int]] = {}
    if not contact_ids:
        return members
    for segment_id, test in sorted(tests.items()):
        matching = (
            Contact.objects.for_workspace(workspace_id)
            .filter(test, pk__in=contact_ids)
            .values_list("pk", flat=True)
        )
        for contact_id in matching:
            members.setdefault(contact_id, []).append(segment_id)
    return members


@dataclass
class BatchOutcome:
    sent: list[int] = field(default_factory=list)  # delivery ids
    sent_contacts: list[tuple[int, str]] = field(default_factory=list)  # contact, subject
    retry: list[tuple[int, int | None, str, int]] = field(
        default_factory=list
    )  # id, code, reply, attempts
    failed: list[tuple[int, int, int | None, str]] = field(
        default_factory=list
    )  # id, contact, code, reply
    skipped: list[tuple[int, str]] = field(default_factory=list)  # id, why
    # Held back by a speed limit before any server saw them: not an attempt.
    held: list[tuple[int, float, str]] = field(default_factory=list)  # id, seconds, why


def send_batch(
    prepared: PreparedCampaign, rows: Sequence[Claimed], transport: transports.Transport
) -> BatchOutcome:
    """Render, assemble, sign and send one claimed batch; what happened to each row."""
    campaign = prepared.campaign
    workspace_id = campaign.workspace_id
    outcome = BatchOutcome()
    contacts = _gated_rows(prepared, rows)
    members = _segment_members(prepared, list(contacts)) if prepared.segment_tests else {}
    outgoing: list[transports.Outgoing] = []
    by_key: dict[str, Claimed] = {}
    subjects: dict[str, str] = {}
    render = prepared.compiled.render
    build = mime.build_message
    signer = prepared.signer
    postal_address = prepared.postal_address
    campaign_id = campaign.pk
    tracked_links = prepared.tracked_links
    made_at = int(time.time())
    tracking: dict[str, Any] = {}
    for row in rows:
        contact = contacts.get(row.contact_id)
        if contact is None:
            outcome.skipped.append((row.id, GONE_SINCE_START))
            continue
        email = contact["email"]
        if email.lower() != row.email:
            outcome.skipped.append((row.id, ADDRESS_CHANGED))
            continue
        row_links = recipient_links(workspace_id, row.contact_id, campaign_id, row.id)
        if tracked_links is not None:
            urls = tracking_links.recipient_urls(
                workspace_id=workspace_id,
                campaign_id=campaign_id,
                delivery_id=row.id,
                contact_id=row.contact_id,
                made_at=made_at,
                link_numbers=tracked_links,
            )
            tracking = {"patron_open": urls.open, "patron_links": urls.links}
        try:
            message = render(
                _row_context(
                    contact,
                    unsubscribe_url=row_links.unsubscribe,
                    preferences_url=row_links.preferences,
                    view_in_browser_url=row_links.view,
                    postal_address=postal_address,
                    segments=members.get(row.contact_id, []),
                    **tracking,
                )
            )
        except Exception as error:  # a Liquid error in one contact's data fails that row only
            outcome.failed.append(
                (row.id, row.contact_id, None, f"Rendering failed: {error}"[:1000])
            )
            continue
        name = f"{contact['first_name']} {contact['last_name']}".strip()
        data = build(
            from_name=prepared.from_name,
            from_email=prepared.from_email,
            to_email=email,
            to_name=name,
            subject=message.subject,
            html=message.html,
            text=message.text,
            message_id=mime.message_id_for(f"d{row.id}.c{campaign_id}"),
            reply_to=prepared.reply_to,
            headers=[
                ("List-Unsubscribe", f"<{row_links.unsubscribe}>, <{row_links.mailto}>"),
                *BULK_HEADERS,
                ("X-Patron-Campaign", str(campaign_id)),
            ],
        )
        if signer is not None:
            data = signer.sign(data)
        key = str(row.id)
        by_key[key] = row
        subjects[key] = message.subject
        outgoing.append(
            transports.Outgoing(
                key=key,
                envelope_from=mime.verp_address(workspace_id, row.id),
                recipients=[email],
                data=data,
                workspace_id=workspace_id,
            )
        )
    results = transport.send(outgoing) if outgoing else []
    max_attempts = settings.SEND_MAX_ATTEMPTS
    for result in results:
        row = by_key[result.key]
        if result.outcome == transports.Outcome.SENT:
            outcome.sent.append(row.id)
            outcome.sent_contacts.append((row.contact_id, subjects[result.key]))
        elif result.outcome == transports.Outcome.RETRY and result.retry_after is not None:
            outcome.held.append((row.id, result.retry_after, result.reply[:1000]))
        elif result.outcome == transports.Outcome.RETRY and row.attempts < max_attempts:
            outcome.retry.append((row.id, result.code, result.reply[:1000], row.attempts))
        else:
            reply = result.reply
            if result.outcome == transports.Outcome.RETRY:
                reply = _("Gave up after %(n)s attempts: %(reply)s") % {
                    "n": row.attempts,
                    "reply": reply,
                }
            outcome.failed.append((row.id, row.contact_id, result.code, reply[:1000]))
    return outcome


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: the base delay doubled for each attempt made, at most an hour."""
    seconds = settings.SEND_RETRY_SECONDS * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, 3600))


def record_outcome(prepared: PreparedCampaign, outcome: BatchOutcome) -> None:
    """Write a batch's results, counters and timeline events in one transaction."""
    campaign = prepared.campaign
    workspace_id = campaign.workspace_id
    now = timezone.now()
    rows = Delivery.objects.for_workspace(workspace_id).filter(
        campaign_id=campaign.pk, status=DeliveryStatus.SENDING
    )
    with transaction.atomic():
        sent = 0
        if outcome.sent:
            sent = rows.filter(pk__in=outcome.sent).update(
                status=DeliveryStatus.SENT, sent_at=now, lease_until=None, smtp_code=250, reply=""
            )
        for delivery_id, code, reply, attempts in outcome.retry:
            rows.filter(pk=delivery_id).update(
                status=DeliveryStatus.QUEUED,
                lease_until=None,
                not_before=now + retry_delay(attempts),
                smtp_code=code,
                reply=reply,
            )
        for delivery_id, seconds, why in outcome.held:
            rows.filter(pk=delivery_id).update(
                status=DeliveryStatus.QUEUED,
                lease_until=None,
                not_before=now + timedelta(seconds=seconds),
                attempts=F("attempts") - 1,
                reply=why,
            )
        failed = 0
        for delivery_id, _contact, code, reply in outcome.failed:
            failed += rows.filter(pk=delivery_id).update(
                status=DeliveryStatus.FAILED, lease_until=None, smtp_code=code, reply=reply
            )
        for delivery_id, why in outcome.skipped:
            rows.filter(pk=delivery_id).update(
                status=DeliveryStatus.CANCELLED, lease_until=None, reply=why
            )
        # A 5xx refusal is a bounce: marked, recorded and suppressed as a received one is.
        refusals = [
            (pk, code, reply) for pk, _c, code, reply in outcome.failed if code and code >= 500
        ]
        if refusals:
            feedback.record_send_refusals(workspace=workspace_id, refusals=refusals)
        if sent or failed:
            Campaign.objects.for_workspace(workspace_id).filter(pk=campaign.pk).update(
                sent=F("sent") + sent, failed=F("failed") + failed
            )
        source = ("mail.campaign", campaign.pk)
        properties = {"campaign": campaign.pk, "subject": campaign.subject}
        if outcome.sent_contacts:
            # Each with the subject its contact got (merge tags filled, the A/B variant's).
            record_per_contact(
                workspace=workspace_id,
                kind="email.sent",
                rows=[
                    (contact, {"campaign": campaign.pk, "subject": subject}, None)
                    for contact, subject in outcome.sent_contacts
                ],
                source_type=source[0],
                source_id=str(campaign.pk),
            )
        if outcome.failed:
            record_for_contacts(
                workspace=workspace_id,
                kind="email.failed",
                contact_ids=[contact for _id, contact, _code, _reply in outcome.failed],
                source=source,
                properties=properties,
            )


def _campaign_status(campaign: Campaign) -> str:
    return str(
        Campaign.objects.for_workspace(campaign.workspace_id)
        .filter(pk=campaign.pk)
        .values_list("status", flat=True)
        .first()
        or CampaignStatus.CANCELLED
    )


def run_chunk(chunk_id: int) -> str:
    """Send what is due in one chunk; returns the chunk's state afterwards.

    Works for at most ``SEND_CHUNK_SECONDS`` and then hands the rest of the
    chunk back to the queue, so that a graceful stop of the worker waits
    seconds, not minutes, and several campaigns share the workers.
    """
    chunk = SendChunk.objects.unscoped().select_related("campaign").filter(pk=chunk_id).first()
    if chunk is None:
        return "gone"
    now = timezone.now()
    started = (
        SendChunk.objects.unscoped()
        .filter(pk=chunk_id)
        .exclude(state=ChunkState.DONE)
        .update(state=ChunkState.RUNNING, touched_at=now, wake_at=None)
    )
    if not started:
        return ChunkState.DONE
    campaign = (
        Campaign.objects.unscoped().select_related("workspace", "sender").get(pk=chunk.campaign_id)
    )
    deadline = time.monotonic() + settings.SEND_CHUNK_SECONDS
    transport: transports.Transport | None = None
    chunks = SendChunk.objects.unscoped().filter(pk=chunk_id)
    try:
        while True:
            status = _campaign_status(campaign)
            if status != CampaignStatus.SENDING:
                if status == CampaignStatus.PAUSED:
                    chunks.update(state=ChunkState.WAITING, wake_at=None, touched_at=timezone.now())
                    return ChunkState.WAITING
                chunks.update(state=ChunkState.DONE)
                return ChunkState.DONE
            if time.monotonic() > deadline:
                chunks.update(state=ChunkState.QUEUED, touched_at=timezone.now())
                transaction.on_commit(lambda: enqueue_chunk(chunk_id))
                return ChunkState.QUEUED
            try:
                # Before claiming: a campaign that cannot be rendered holds no rows.
                prepared = prepare(campaign)
            except (rendering.TemplateError, AudienceInvalid) as error:
                _stop_on_error(campaign, str(error))
                chunks.update(state=ChunkState.WAITING, wake_at=None, touched_at=timezone.now())
                return ChunkState.WAITING
            rows = claim(campaign, chunk.first_id, chunk.last_id, settings.SEND_BATCH_SIZE)
            if not rows:
                wake_at = _next_due(campaign, chunk)
                if wake_at is None:
                    break
                if wake_at - timezone.now() <= SHORT_WAIT:
                    time.sleep(max((wake_at - timezone.now()).total_seconds(), 0.05))
                    continue
                chunks.update(state=ChunkState.WAITING, wake_at=wake_at, touched_at=timezone.now())
                return ChunkState.WAITING
            if transport is None:
                transport = transports.transport_for(campaign.workspace_id)
            for group_prepared, group in _by_variant(campaign, prepared, rows):
                outcome = send_batch(group_prepared, group, transport)
                record_outcome(group_prepared, outcome)
            chunks.update(touched_at=timezone.now())
    finally:
        if transport is not None:
            transport.close()
    chunks.update(state=ChunkState.DONE, wake_at=None, touched_at=timezone.now())
    finish_if_done(campaign)
    return ChunkState.DONE


def _by_variant(
    campaign: Campaign, prepared: PreparedCampaign, rows: list[Claimed]
) -> list[tuple[PreparedCampaign, list[Claimed]]]:
    """The claimed rows grouped by the content each gets (one group without an A/B test).

    Rows of an A/B test's rest are released only once the winner is recorded;
    a worker that started before that reads the winner again.
    """
    if campaign.ab_decide_at is None:  # no test was started
        return [(prepared, rows)]
    if campaign.ab_winner is None and any(row.variant is None for row in rows):
        campaign.ab_winner = (
            Campaign.objects.for_workspace(campaign.workspace_id)
            .filter(pk=campaign.pk)
            .values_list("ab_winner", flat=True)
            .first()
        )
    groups: dict[int, list[Claimed]] = {}
    for row in rows:
        groups.setdefault(ab_tests.content_index(campaign, row.variant), []).append(row)
    return [
        (prepared if index == 0 else prepare(campaign, index), group)
        for index, group in sorted(groups.items())
    ]


def _next_due(campaign: Campaign, chunk: SendChunk) -> datetime | None:
    """When a row of the chunk that is not final may next be claimed; None if all are final."""
    remaining = (
        Delivery.objects.for_workspace(campaign.workspace_id)
        .filter(
            campaign_id=campaign.pk,
            pk__gte=chunk.first_id,
            pk__lte=chunk.last_id,
            status__in=[DeliveryStatus.QUEUED, DeliveryStatus.SENDING],
        )
        .aggregate(
            queued=Min(Case(When(status=DeliveryStatus.QUEUED, then=F("not_before")))),
            leased=Min(Case(When(status=DeliveryStatus.SENDING, then=F("lease_until")))),
            any_queued=Min(Case(When(status=DeliveryStatus.QUEUED, then=F("pk")))),
            any_leased=Min(Case(When(status=DeliveryStatus.SENDING, then=F("pk")))),
        )
    )
    now = timezone.now()
    times = []
    if remaining["any_queued"] is not None:
        times.append(remaining["queued"] or now)
    if remaining["any_leased"] is not None:
        times.append(remaining["leased"] or now)
    return min(times) if times else None


def _stop_on_error(campaign: Campaign, error: str) -> None:
    """A campaign that cannot be rendered any more is paused with the reason, not dropped."""
    with contextlib.suppress(CampaignStateError):
        transition(
            campaign,
            CampaignStatus.PAUSED,
            user=None,
            action=_("paused"),
            last_error=_("Sending stopped: %(error)s") % {"error": error},
        )


# --- The scheduler's round -------------------------------------------------------------------


def _orphaned(chunks: QuerySet[SendChunk], before: datetime) -> list[int]:
    """Queued chunks (queued before ``before``) whose task is no longer waiting in the queue.

    A worker takes a task from the queue, then marks the chunk running; killed
    in between (or stopped, or killed between marking a chunk queued and
    enqueueing its next task), it leaves a queued chunk that no task will run.
    The queue knows: the chunk's task is running, finished or gone, not
    waiting. A task taken less than ``before`` ago may still be starting. A
    chunk with no task noted was never enqueued (the process died between
    committing the chunk and enqueueing it). A chunk merely waiting behind
    others in a long queue is left alone.
    """
    from patron.mail import tasks

    if not tasks.send_chunk.get_backend().supports_get_result:
        return []  # the SEND_QUEUED_TIMEOUT_SECONDS rule alone
    candidates = chunks.filter(state=ChunkState.QUEUED, touched_at__lt=before).values_list(
        "pk", "task_id"
    )[:1000]
    orphans = []
    for chunk_id, task_id in candidates:
        if not task_id:
            orphans.append(chunk_id)
            continue
        try:
            result = tasks.send_chunk.get_result(task_id)
        except TaskResultDoesNotExist:
            orphans.append(chunk_id)
            continue
        if result.status == TaskResultStatus.READY:
            continue  # waiting its turn
        if result.started_at is None or result.started_at < before:
            orphans.append(chunk_id)
    return orphans


def advance_campaigns(now: datetime | None = None) -> dict[str, int]:
    """Start due campaigns, wake and rescue chunks, finish campaigns (safe to run often)."""
    now = now or timezone.now()
    counts = {"started": 0, "decided": 0, "woken": 0, "rescued": 0, "finished": 0, "tidied": 0}
    due = (
        Campaign.objects.unscoped()
        .filter(status=CampaignStatus.SCHEDULED, start_at__lte=now)
        .values_list("pk", flat=True)
    )
    for campaign_id in list(due):
        try:
            if start_campaign(campaign_id) is not None:
                counts["started"] += 1
        except Exception:
            logger.exception("Campaign %s could not start", campaign_id)

    try:
        # A/B tests whose wait is over: the winner, then the rest's chunks wake below.
        counts["decided"] = ab_tests.decide_due(now)
    except Exception:
        logger.exception("A/B test winners could not be chosen")

    sending = Campaign.objects.unscoped().filter(status=CampaignStatus.SENDING)
    chunks = SendChunk.objects.unscoped().filter(campaign__status=CampaignStatus.SENDING)
    lease = timedelta(seconds=settings.SEND_LEASE_SECONDS)
    to_enqueue: list[int] = []
    for kind, stuck in (
        ("woken", chunks.filter(state=ChunkState.WAITING, wake_at__lte=now)),
        # Paused-then-resumed chunks that a racing worker parked without a time.
        ("woken", chunks.filter(state=ChunkState.WAITING, wake_at__isnull=True)),
        ("rescued", chunks.filter(state=ChunkState.RUNNING, touched_at__lt=now - lease)),
        ("rescued", chunks.filter(pk__in=_orphaned(chunks, now - lease))),
        (
            "rescued",
            chunks.filter(
                state=ChunkState.QUEUED,
                touched_at__lt=now - timedelta(seconds=settings.SEND_QUEUED_TIMEOUT_SECONDS),
            ),
        ),
    ):
        ids = list(stuck.values_list("pk", flat=True)[:1000])
        if ids:
            moved = (
                SendChunk.objects.unscoped()
                .filter(pk__in=ids)
                .update(state=ChunkState.QUEUED, touched_at=now, wake_at=None)
            )
            counts[kind] += moved
            to_enqueue.extend(ids)
    enqueue_chunks(to_enqueue)

    for campaign in sending.exclude(
        pk__in=SendChunk.objects.unscoped().exclude(state=ChunkState.DONE).values("campaign_id")
    ).select_related("workspace"):
        if finish_if_done(campaign):
            counts["finished"] += 1

    # Rows a dead worker held when its campaign was cancelled.
    counts["tidied"] = (
        Delivery.objects.unscoped()
        .filter(
            campaign__status=CampaignStatus.CANCELLED,
            status=DeliveryStatus.SENDING,
            lease_until__lt=now,
        )
        .update(status=DeliveryStatus.CANCELLED, lease_until=None)
    )
    return counts


# --- Test messages ---------------------------------------------------------------------------


def send_test_messages(
    campaign: Campaign,
    rendered: rendering.RenderedMessage,
    addresses: list[str],
    *,
    contact: Contact | None = None,
) -> None:
    """Send ``rendered`` to ``addresses`` through the workspace's transport, marked [Test]."""
    sender = campaign.sender
    assert sender is not None
    subject = _("[Test] %(subject)s") % {"subject": rendered.subject}
    workspace_id = campaign.workspace_id
    domain = sender.from_email.rpartition("@")[2]
    signer = dkim.signer_for(workspace_id, domain)
    contact_id = contact.pk if contact is not None else 0
    outgoing = []
    stamp = int(time.time() * 1000)
    for index, address in enumerate(addresses):
        data = mime.build_message(
            from_name=sender.from_name,
            from_email=sender.from_email,
            to_email=address,
            subject=subject,
            html=rendered.html,
            text=rendered.text,
            message_id=mime.message_id_for(f"t{stamp}.{index}.c{campaign.pk}"),
            reply_to=campaign.reply_to or sender.reply_to,
            headers=[
                *_headers_for_test(workspace_id, contact_id, campaign.pk),
                ("X-Patron-Test", "1"),
            ],
        )
        if signer is not None:
            data = signer.sign(data)
        outgoing.append(
            transports.Outgoing(
                key=str(index),
                envelope_from=sender.from_email,
                recipients=[address],
                data=data,
                workspace_id=workspace_id,
            )
        )
    transport = transports.transport_for(workspace_id)
    try:
        results = transport.send(outgoing)
    finally:
        transport.close()
    refused = [r for r in results if r.outcome != transports.Outcome.SENT]
    if refused:
        from patron.mail.campaigns import CampaignInvalid

        raise CampaignInvalid(
            {
                "addresses": _("The mail server did not accept the test: %(reply)s")
                % {"reply": "; ".join(f"{r.code or ''} {r.reply}".strip() for r in refused)}
            }
        )


def _headers_for_test(
    workspace_id: int, contact_id: int, campaign_id: int
) -> list[tuple[str, str]]:
    url = links.unsubscribe_url(workspace_id, contact_id, campaign_id)
    return [
        ("List-Unsubscribe", f"<{url}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]
