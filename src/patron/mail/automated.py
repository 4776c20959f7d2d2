"""Automated email: messages that rules send (workflow steps) through the send pipeline.

Each automated email is a campaign of its own, made from a saved template
(its content copied in, as a campaign's is) and started at once with an empty
snapshot. Contacts are added to it as they reach the step:
``queue_automated_deliveries`` writes their delivery rows set-based through
the sending gate (``patron.audience.sending.sendable_contacts``: suppressed,
unsubscribed, bounced and address-less contacts get no row), cuts the new rows
into a chunk and hands it to the workers. From there it is the campaigns'
pipeline: rendering, tracking (opens and clicks are ``email.opened`` /
``email.clicked`` of this campaign), retries, ``email.sent`` on the timeline.

**Exactly once.** A delivery is unique per (campaign, contact), and the caller
keys the campaign (a workflow keys it by version, step and round): a contact
who reaches the step again after a crash finds its row there already and gets
no second one.

An automated campaign is never finished: the scheduler marks it sent once its
chunks are done, and the next contact to arrive opens it again (``sending``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F, IntegerField, Value
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.audience.sending import sendable_contacts
from patron.core.models import Workspace
from patron.crm.models import Contact
from patron.mail import senders
from patron.mail.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    EmailTemplate,
    SendChunk,
)

CONTENT_FIELDS = ("subject", "preheader", "format", "body", "blocks", "text")


class AutomatedEmailInvalid(ValueError):
    pass


@transaction.atomic
def create_automated_campaign(
    *, workspace: Workspace, template: EmailTemplate, name: str
) -> Campaign:
    """A campaign carrying ``template``'s content, sending from the default verified sender."""
    if template.workspace_id != workspace.pk:
        raise AutomatedEmailInvalid(_("The template is not part of this workspace."))
    sender = senders.verified_identities(workspace).first()
    if sender is None:
        raise AutomatedEmailInvalid(
            _("Verify a sender address first: automated emails go out from it.")
        )
    now = timezone.now()
    content: dict[str, Any] = {field: getattr(template, field) for field in CONTENT_FIELDS}
    if not isinstance(content["blocks"], list):
        content["blocks"] = []  # a template's builder document is not a campaign's block list
    return Campaign.objects.create(
        workspace=workspace,
        name=name[:200],
        sender=sender,
        status=CampaignStatus.SENDING,
        automated=True,
        audience={},
        started_at=now,
        created_at=now,
        updated_at=now,
        **content,
    )


def queue_automated_deliveries(
    *, campaign: Campaign, contact_ids: Sequence[int], not_before: datetime | None = None
) -> dict[int, int]:
    """Queue one delivery per sendable contact not mailed by this campaign yet.

    Returns {contact id: delivery id} for the rows written now (a contact
    left out was not sendable or had its row already). Runs in the caller's
    transaction; the chunk's task is enqueued once it commits.
    """
    from patron.mail.pipeline import enqueue_chunk

    if not contact_ids:
        return {}
    workspace = campaign.workspace
    contacts = Contact.objects.for_workspace(workspace).filter(pk__in_ids=list(contact_ids))
    selected = sendable_contacts(workspace, contacts).annotate(
        d_workspace=Value(workspace.pk, output_field=IntegerField()),
        d_campaign=Value(campaign.pk, output_field=IntegerField()),
        d_email=Lower("email"),
        d_status=Value(DeliveryStatus.QUEUED),
        d_attempts=Value(0, output_field=IntegerField()),
        d_reply=Value(""),
        d_not_before=Value(not_before),
    )
    names = ["d_workspace", "d_campaign", "pk", "d_email", "d_status", "d_attempts", "d_reply"]
    columns = ["workspace_id", "campaign_id", "contact_id", "email", "status", "attempts", "reply"]
    if not_before is not None:
        names.append("d_not_before")
        columns.append("not_before")
    sql, params = selected.order_by("pk").values_list(*names).query.sql_with_params()
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - fixed identifiers
            f"SELECT * FROM ({sql}) AS recipients WHERE true ON CONFLICT DO NOTHING "
            "RETURNING id, contact_id",
            params,
        )
        written = {row[1]: row[0] for row in cursor.fetchall()}
    if not written:
        return {}
    ids = sorted(written.values())
    chunk = SendChunk.objects.create(
        workspace_id=workspace.pk, campaign=campaign, first_id=ids[0], last_id=ids[-1]
    )
    now = timezone.now()
    Campaign.objects.for_workspace(workspace).filter(pk=campaign.pk).update(
        total=F("total") + len(ids), updated_at=now
    )
    # Finished by the scheduler when it had nothing left: open again for these rows.
    Campaign.objects.for_workspace(workspace).filter(
        pk=campaign.pk, status=CampaignStatus.SENT
    ).update(status=CampaignStatus.SENDING, finished_at=None)
    chunk_id = chunk.pk
    transaction.on_commit(lambda: enqueue_chunk(chunk_id))
    return written


def capture_test_email(*, template: EmailTemplate, contact: Contact) -> str:
    """Render ``template`` for ``contact`` and keep it in the Outbox, never sending it.

    For a workflow's test mode: the message is what the contact would get,
    captured whatever transport the workspace uses. Returns its subject.
    """
    from patron.mail import mime, transports
    from patron.mail.campaigns import preview

    sender = senders.verified_identities(template.workspace).first()
    from_name, from_email = (
        (sender.from_name, sender.from_email)
        if sender
        else (template.workspace.name, "test@invalid")
    )
    stand_in = Campaign(
        id=0,
        workspace=template.workspace,
        name=template.name,
        sender=sender,
        **{field: getattr(template, field) for field in CONTENT_FIELDS if field != "blocks"},
    )
    rendered = preview(stand_in, contact)
    subject = _("[Workflow test] %(subject)s") % {"subject": rendered.subject}
    data = mime.build_message(
        from_name=from_name,
        from_email=from_email,
        to_email=contact.email or "no-address@invalid",
        subject=subject,
        html=rendered.html,
        text=rendered.text,
        message_id=mime.message_id_for(f"wt{int(timezone.now().timestamp() * 1000)}.c{contact.pk}"),
        reply_to="",
        headers=[("X-Patron-Test", "1")],
    )
    transports.CaptureTransport().send(
        [
            transports.Outgoing(
                key="0",
                envelope_from=from_email,
                recipients=[contact.email or "no-address@invalid"],
                data=data,
                workspace_id=template.workspace_id,
            )
        ]
    )
    return subject
