"""Reads of the Outbox."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from patron.core.models import User, Workspace
from patron.mail.models import OutboxMessage


def outbox_for(*, workspace: Workspace, user: User) -> QuerySet[OutboxMessage]:
    """The workspace's captured mail; installation administrators also see system mail."""
    visible = Q(workspace=workspace)
    if user.is_staff:
        visible |= Q(workspace__isnull=True)
    return OutboxMessage.objects.filter(visible).defer("raw")
