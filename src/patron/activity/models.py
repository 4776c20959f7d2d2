"""The activity log: everything a person or a user does, one row per event."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from patron.core.tenancy import TenantModel


class Event(TenantModel):
    """One thing that happened, to a contact or an anonymous visitor.

    ``contact_id`` is a plain column rather than a foreign key: the activity
    log sits below the CRM and outlives merges (the CRM re-points events
    when it merges two contacts). ``source_type``/``source_id`` name the
    object the event is about (``"crm.deal"``, 42).
    """

    kind = models.CharField(max_length=64)
    contact_id = models.BigIntegerField(null=True, blank=True)
    visitor_id = models.CharField(max_length=64, blank=True)
    actor = models.ForeignKey(
        "core.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    source_type = models.CharField(max_length=64, blank=True)
    source_id = models.CharField(max_length=64, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "contact_id", "-occurred_at"], name="event_contact"),
            # contact_id carried in the index: "who did X in the last N days" (segments,
            # reports) is answered from the index alone on PostgreSQL.
            models.Index(
                fields=["workspace", "kind", "-occurred_at"],
                name="event_kind",
                include=["contact_id"],
            ),
            models.Index(
                fields=["workspace", "visitor_id"],
                name="event_visitor",
                condition=~models.Q(visitor_id=""),
            ),
            models.Index(fields=["workspace", "source_type", "source_id"], name="event_source"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class ConsumerCheckpoint(models.Model):
    """How far one consumer has read the activity log.

    Every event with ``id <= position`` has been handed to the consumer,
    except the ids listed in ``gaps``: ids that were skipped because their
    transaction had not committed yet when the consumer read past them
    (sequences hand out ids at insert time, rows appear at commit time).
    Gaps are looked at again on every read until their row appears or they
    are older than the longest transaction we wait for.
    """

    name = models.CharField(max_length=100, unique=True)
    position = models.BigIntegerField(default=0)
    # [[first_id, last_id, first_seen_unix_seconds], ...]
    gaps = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    events_handled = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} @ {self.position}"
