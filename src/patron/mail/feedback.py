"""What came back after sending: bounces and spam complaints, applied to deliveries.

Three ways in, one set of services:

- **Received reports** (``process_received_bounces``): the inbound server
  stores what arrives at a ``bounce+<token>`` address or at ``fbl@``/``abuse@``
  as ``ReceivedBounce`` rows; this reads them (``patron.mail.bounces``) in
  batches, claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL so
  that any number of workers can run it at once. Each row ends processed with
  its ``result``; one that could not be read or applied keeps ``problem``.
- **Refusals while sending** (``record_send_refusals``): a ``5xx`` answer of
  the receiving server during the SMTP conversation is a bounce like a
  received one, recorded set-based for a whole batch by the send pipeline.
- **Provider webhooks** (``patron.mail.esp_webhooks``) call ``record_bounces``
  and ``record_complaint`` directly.

The rules (``record_bounces``, ``record_complaint``):

- a **hard** bounce marks the delivery (``bounce=hard``, ``bounced_at``),
  records ``email.bounced`` and suppresses the address at once (reason "hard
  bounce");
- a **soft** bounce is marked and recorded the same way, and suppresses the
  address only when it is the ``SOFT_BOUNCE_LIMIT``-th soft-bounced delivery
  to it within ``SOFT_BOUNCE_DAYS`` days (reason "repeated soft bounces");
- a **complaint** sets ``complained_at``, records ``email.complained`` and
  suppresses the address (reason "complaint").

Each is idempotent per delivery: the same report twice (a retried webhook, a
DSN delivered twice) changes and records nothing the second time. A hard
bounce after a soft one of the same delivery upgrades it; never the reverse.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from patron.activity.services import NewEvent, record, record_many
from patron.audience import suppression
from patron.audience.models import SuppressionReason
from patron.core.models import Workspace
from patron.mail import bounces as reports
from patron.mail.models import BounceResult, BounceType, Delivery, ReceivedBounce

logger = logging.getLogger(__name__)

EVENT_SOURCE = "mail.campaign"  # beside the campaign's email.sent events
# Where a bounce was learnt.
SMTP, REPORT, ESP = "smtp", "report", "esp"
BATCH_SIZE = 100
PROBLEM_LIMIT = 1000


class ReportNotOurs(ValueError):
    """A feedback report that names none of our messages by a signed return path."""


@dataclass(frozen=True)
class Bounce:
    """One bounce of one delivery, as learnt."""

    delivery_id: int
    type: str  # BounceType.HARD or BounceType.SOFT
    code: str = ""  # the enhanced status code (5.1.1), else the SMTP or provider code
    diagnostic: str = ""
    recipient: str = ""  # the address the report names, when it names one
    origin: str = REPORT


@dataclass
class Applied:
    """What ``record_bounces`` did: the deliveries it changed, and those it could not find."""

    changed: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)


def _workspace(workspace: Workspace | int) -> Workspace:
    return workspace if isinstance(workspace, Workspace) else Workspace.objects.get(pk=workspace)


def _note(text: str) -> str:
    return " ".join(text.split())[: suppression.NOTE_LIMIT]


def _suppress(workspace: Workspace, entries: list[suppression.Entry], source: str) -> list[str]:
    """Suppress what can be stored; an address the list refuses is not mailed anyway."""
    valid = []
    for entry in entries:
        try:
            suppression.normalise_email(entry.email)
        except suppression.SuppressionInvalid:
            continue
        valid.append(entry)
    if not valid:
        return []
    return suppression.suppress_entries(
        workspace=workspace, entries=valid, details={"source": source}
    ).added


# --- Bounces ---------------------------------------------------------------------------------


@transaction.atomic
def record_bounces(
    *,
    workspace: Workspace | int,
    bounces: Sequence[Bounce],
    now: datetime | None = None,
) -> Applied:
    """Apply bounces of one workspace's deliveries, set-based (see the module's rules)."""
    applied = Applied()
    if not bounces:
        return applied
    now = now or timezone.now()
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    # The worst news per delivery: a hard bounce wins over a soft one.
    wanted: dict[int, Bounce] = {}
    for bounce in bounces:
        known = wanted.get(bounce.delivery_id)
        if known is None or (known.type == BounceType.SOFT and bounce.type == BounceType.HARD):
            wanted[bounce.delivery_id] = bounce
    rows = {
        pk: (campaign_id, contact_id, email, current)
        for pk, campaign_id, contact_id, email, current in Delivery.objects.for_workspace(
            workspace_id
        )
        .select_for_update()
        .filter(pk__in=sorted(wanted))
        .order_by("pk")
        .values_list("pk", "campaign_id", "contact_id", "email", "bounce")
    }
    applied.missing = [pk for pk in wanted if pk not in rows]
    by_type: dict[str, list[int]] = {BounceType.HARD: [], BounceType.SOFT: []}
    for pk, bounce in wanted.items():
        if pk not in rows:
            continue
        current = rows[pk][3]
        if current == BounceType.HARD or current == bounce.type:
            continue  # known already
        by_type[bounce.type].append(pk)
    for bounce_type, ids in by_type.items():
        if ids:
            Delivery.objects.for_workspace(workspace_id).filter(pk__in=ids).update(
                bounce=bounce_type, bounced_at=now
            )
    applied.changed = sorted(by_type[BounceType.HARD] + by_type[BounceType.SOFT])
    if not applied.changed:
        return applied
    record_many(
        NewEvent(
            workspace_id=workspace_id,
            kind="email.bounced",
            contact_id=rows[pk][1],
            source_type=EVENT_SOURCE,
            source_id=str(rows[pk][0]),
            occurred_at=now,
            properties={
                "campaign": rows[pk][0],
                "delivery": pk,
                "type": wanted[pk].type,
                "code": wanted[pk].code,
                "diagnostic": wanted[pk].diagnostic[: reports.DIAGNOSTIC_LIMIT],
                "email": rows[pk][2],
                "origin": wanted[pk].origin,
            },
        )
        for pk in applied.changed
    )
    entries = [
        suppression.Entry(
            rows[pk][2],
            SuppressionReason.HARD_BOUNCE,
            _note(f"{wanted[pk].code} {wanted[pk].diagnostic}"),
        )
        for pk in by_type[BounceType.HARD]
    ]
    entries += _repeated_soft_bounces(
        workspace_id, [(rows[pk][1], rows[pk][2]) for pk in by_type[BounceType.SOFT]], now
    )
    if entries:
        applied.suppressed = _suppress(_workspace(workspace), entries, "bounce")
    return applied


def _repeated_soft_bounces(
    workspace_id: int, soft: list[tuple[int, str]], now: datetime
) -> list[suppression.Entry]:
    """The addresses among ``soft`` (contact, address) that reached the soft-bounce limit."""
    if not soft:
        return []
    since = now - timedelta(days=settings.SOFT_BOUNCE_DAYS)
    counts = (
        Delivery.objects.for_workspace(workspace_id)
        .filter(
            contact_id__in=sorted({contact for contact, _email in soft}),
            email__in=sorted({email for _contact, email in soft}),
            bounce=BounceType.SOFT,
            bounced_at__gte=since,
        )
        .values("email")
        .annotate(bounced=Count("pk"))
        .order_by()
    )
    limit = settings.SOFT_BOUNCE_LIMIT
    return [
        suppression.Entry(
            row["email"],
            SuppressionReason.SOFT_BOUNCE,
            _note(f"{row['bounced']} soft bounces in {settings.SOFT_BOUNCE_DAYS} days"),
        )
        for row in counts
        if row["bounced"] >= limit
    ]


def is_refusal(code: int | None, reply: str) -> bool:
    """Whether a failed send is a receiving server's permanent refusal (a bounce).

    An SMTP ``5xx``. The provider transports report HTTP statuses, and a
    provider's own ``5xx`` (its outage, after the retries ran out) says nothing
    about the address: their replies name the provider.
    """
    if code is None or not 500 <= code <= 599:
        return False
    from patron.mail.esp import PROVIDER_NAMES

    return not any(
        f"{name} answered" in reply or f"{name}:" in reply for name in PROVIDER_NAMES.values()
    )


def record_send_refusals(
    *, workspace: Workspace | int, refusals: Sequence[tuple[int, int | None, str]]
) -> Applied:
    """The send pipeline's ``5xx`` refusals (delivery, code, reply) as bounces, for one batch."""
    found = [
        Bounce(
            delivery_id=delivery_id,
            type=reports.classify(reports.status_in(reply), reply, code),
            code=reports.status_in(reply) or str(code),
            diagnostic=reply,
            origin=SMTP,
        )
        for delivery_id, code, reply in refusals
        if is_refusal(code, reply)
    ]
    return record_bounces(workspace=workspace, bounces=found)


# --- Complaints ------------------------------------------------------------------------------


@transaction.atomic
def record_complaint(
    *,
    workspace: Workspace | int,
    delivery_id: int,
    feedback_type: str = "abuse",
    origin: str = REPORT,
    details: dict[str, Any] | None = None,
) -> bool | None:
    """A spam complaint about one delivery: True if recorded, False if known already,
    None when the delivery does not exist (any more)."""
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    row = (
        Delivery.objects.for_workspace(workspace_id)
        .select_for_update()
        .filter(pk=delivery_id)
        .values_list("campaign_id", "contact_id", "email", "complained_at")
        .first()
    )
    if row is None:
        return None
    campaign_id, contact_id, address, complained_at = row
    if complained_at is not None:
        return False
    now = timezone.now()
    Delivery.objects.for_workspace(workspace_id).filter(pk=delivery_id).update(complained_at=now)
    record(
        workspace=workspace_id,
        kind="email.complained",
        contact_id=contact_id,
        source=(EVENT_SOURCE, campaign_id),
        occurred_at=now,
        properties={
            "campaign": campaign_id,
            "delivery": delivery_id,
            "feedback_type": feedback_type,
            "email": address,
            "origin": origin,
            **(details or {}),
        },
    )
    _suppress(
        _workspace(workspace),
        [suppression.Entry(address, SuppressionReason.COMPLAINT, _note(feedback_type))],
        "complaint",
    )
    return True


# --- Received reports ------------------------------------------------------------------------


def store_feedback_report(*, recipient: str, envelope_from: str, raw: bytes) -> ReceivedBounce:
    """Keep a report that arrived at ``fbl@``/``abuse@``, filed under the delivery it names.

    The address is not signed, so the report must name the delivery by the
    signed VERP token of the original's return path (or of its
    ``Original-Mail-From``); a bare Message-ID can be guessed and is not
    enough. Raises ``ReportNotOurs`` otherwise (the server refuses the message).
    """
    report = reports.read_report(raw)
    original = reports.original_of(report)
    if original.verp is None:
        raise ReportNotOurs("The report names no message of ours (no signed return path).")
    workspace_id, delivery_id = original.verp
    if not Workspace.objects.filter(pk=workspace_id).exists():
        raise ReportNotOurs("The report names a workspace that no longer exists.")
    return ReceivedBounce.objects.create(
        workspace_id=workspace_id,
        delivery_id=delivery_id,
        recipient=recipient[:320],
        envelope_from=envelope_from[:320],
        raw=raw,
    )


def apply_received(row: ReceivedBounce) -> tuple[str, str]:
    """Read one received report and apply it to its delivery: (result, problem)."""
    report = reports.read_report(bytes(row.raw))
    if report.kind == reports.COMPLAINT:
        assert report.complaint is not None
        feedback_type = report.complaint.feedback_type
        if feedback_type == "not-spam":
            return BounceResult.IGNORED, "A “not spam” report: nothing to undo automatically."
        done = record_complaint(
            workspace=row.workspace_id,
            delivery_id=row.delivery_id,
            feedback_type=feedback_type,
            details={"user_agent": report.complaint.user_agent}
            if report.complaint.user_agent
            else None,
        )
        if done is None:
            return BounceResult.IGNORED, "The delivery this report names no longer exists."
        return (BounceResult.COMPLAINT if done else BounceResult.REPEATED), ""
    if report.kind == reports.BOUNCE:
        worst = report.worst()
        assert worst is not None
        applied = record_bounces(
            workspace=row.workspace_id,
            bounces=[
                Bounce(
                    delivery_id=row.delivery_id,
                    type=worst.bounce,
                    code=worst.status,
                    diagnostic=worst.diagnostic,
                    recipient=worst.recipient,
                    origin=REPORT,
                )
            ],
        )
        if applied.missing:
            return BounceResult.IGNORED, "The delivery this report names no longer exists."
        if not applied.changed:
            return BounceResult.REPEATED, ""
        return (BounceResult.HARD if worst.bounce == BounceType.HARD else BounceResult.SOFT), ""
    if report.kind == reports.DELAY:
        return BounceResult.DELAYED, ""
    return BounceResult.UNREADABLE, report.problem[:PROBLEM_LIMIT]


def process_received_bounces(
    *, batch_size: int = BATCH_SIZE, max_batches: int = 50
) -> dict[str, int]:
    """Read and apply the pending received reports; returns how many ended with each result.

    Rows are claimed a batch at a time (skipped when another worker holds them);
    each row is applied in its own savepoint, so a failure is kept on that row
    (``problem``) and never stops the others.
    """
    counts: Counter[str] = Counter()
    for _batch in range(max_batches):
        with transaction.atomic():
            pending = (
                ReceivedBounce.objects.unscoped()
                .filter(processed_at__isnull=True)
                .order_by("received_at", "id")
            )
            if connection.features.has_select_for_update_skip_locked:
                pending = pending.select_for_update(skip_locked=True)
            rows = list(pending[:batch_size])
            for row in rows:
                try:
                    with transaction.atomic():
                        result, problem = apply_received(row)
                except Exception as error:
                    logger.exception("Received bounce %s could not be applied", row.pk)
                    result = BounceResult.UNREADABLE
                    problem = f"Processing failed: {type(error).__name__}: {error}"[:PROBLEM_LIMIT]
                ReceivedBounce.objects.unscoped().filter(pk=row.pk).update(
                    processed_at=timezone.now(), result=result, problem=problem
                )
                counts[result] += 1
        if len(rows) < batch_size:
            break
    return dict(counts)
