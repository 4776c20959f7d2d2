"""Bounces and complaints applied to deliveries (``patron.mail.feedback``): suppression,
the soft-bounce threshold, idempotency, refusals while sending, and the whole way from a
bounce sent over SMTP to Patron's inbound server to a suppressed address."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time

from patron.activity.models import Event
from patron.audience.models import Suppression
from patron.mail import feedback, inbound, mime, pipeline, tokens
from patron.mail.models import BounceResult, Delivery, DeliveryStatus, ReceivedBounce, SendChunk
from tests.factories import ContactFactory, WorkspaceFactory
from tests.mail.bounce_helpers import sample
from tests.mail.campaign_helpers import draft, mailing_list, subscribe, verified_sender
from tests.mail.smtp_servers import MailServer, free_port


@pytest.fixture
def sender(workspace):
    return verified_sender(workspace)


def delivered(workspace, owner, email: str, *, campaign=None) -> Delivery:
    """A delivery sent to a new contact at ``email`` (the row the send pipeline leaves)."""
    contact = ContactFactory(workspace=workspace, email=email)
    campaign = campaign or draft(workspace, owner)
    return Delivery.objects.create(
        workspace=workspace,
        campaign=campaign,
        contact_id=contact.pk,
        email=email.lower(),
        status=DeliveryStatus.SENT,
        sent_at=timezone.now(),
    )


def received(delivery: Delivery, name: str) -> ReceivedBounce:
    raw = sample(
        name,
        workspace_id=delivery.workspace_id,
        delivery_id=delivery.pk,
        campaign_id=delivery.campaign_id,
    )
    return ReceivedBounce.objects.create(
        workspace_id=delivery.workspace_id,
        delivery_id=delivery.pk,
        recipient=mime.verp_address(delivery.workspace_id, delivery.pk),
        raw=raw,
    )


def suppressed(workspace) -> dict[str, str]:
    return dict(Suppression.objects.for_workspace(workspace).values_list("email", "reason"))


def events(workspace, kind: str):
    return list(Event.objects.for_workspace(workspace).filter(kind=kind).order_by("id"))


# --- Received reports ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_hard_bounce_marks_the_delivery_records_it_and_suppresses_at_once(
    workspace, owner, sender
):
    delivery = delivered(workspace, owner, "ann.lee@globex.example")
    row = received(delivery, "postfix_user_unknown.eml")
    assert feedback.process_received_bounces() == {"hard": 1}

    delivery.refresh_from_db()
    assert delivery.bounce == "hard" and delivery.bounced_at is not None
    row.refresh_from_db()
    assert (row.result, row.problem) == (BounceResult.HARD, "")
    assert row.processed_at is not None
    (event,) = events(workspace, "email.bounced")
    assert event.contact_id == delivery.contact_id
    assert event.properties == {
        "campaign": delivery.campaign_id,
        "delivery": delivery.pk,
        "type": "hard",
        "code": "5.1.1",
        "diagnostic": "550 5.1.1 <ann.lee@globex.example>: Recipient address rejected: "
        "User unknown in virtual mailbox table",
        "email": "ann.lee@globex.example",
        "origin": "report",
    }
    assert suppressed(workspace) == {"ann.lee@globex.example": "hard_bounce"}
    note = Suppression.objects.for_workspace(workspace).get().note
    assert note.startswith("5.1.1 550 5.1.1")


@pytest.mark.django_db
def test_the_same_report_twice_changes_nothing_the_second_time(workspace, owner, sender):
    delivery = delivered(workspace, owner, "ann.lee@globex.example")
    received(delivery, "postfix_user_unknown.eml")
    received(delivery, "postfix_user_unknown.eml")
    complaint = delivered(workspace, owner, "olga.reader@yahoo.com")
    received(complaint, "arf_yahoo_complaint.eml")
    received(complaint, "arf_yahoo_complaint.eml")
    assert feedback.process_received_bounces() == {"hard": 1, "repeated": 2, "complaint": 1}
    assert len(events(workspace, "email.bounced")) == 1
    assert len(events(workspace, "email.complained")) == 1
    assert len(events(workspace, "contact.suppressed")) == 2
    # Nothing pending: a second run has nothing to do.
    assert feedback.process_received_bounces() == {}


@pytest.mark.django_db
def test_a_complaint_sets_complained_at_records_and_suppresses(workspace, owner, sender):
    delivery = delivered(workspace, owner, "olga.reader@yahoo.com")
    received(delivery, "arf_yahoo_complaint.eml")
    assert feedback.process_received_bounces() == {"complaint": 1}
    delivery.refresh_from_db()
    assert delivery.complained_at is not None and delivery.bounce == ""
    (event,) = events(workspace, "email.complained")
    assert event.properties == {
        "campaign": delivery.campaign_id,
        "delivery": delivery.pk,
        "feedback_type": "abuse",
        "email": "olga.reader@yahoo.com",
        "origin": "report",
        "user_agent": "Yahoo!-Mail-Feedback/2.0",
    }
    assert suppressed(workspace) == {"olga.reader@yahoo.com": "complaint"}


@pytest.mark.django_db
def test_soft_bounces_suppress_only_at_the_limit_within_the_window(
    workspace, owner, sender, settings
):
    settings.SOFT_BOUNCE_LIMIT = 3
    settings.SOFT_BOUNCE_DAYS = 30
    address = "cara.full@gmail.com"
    start = timezone.now()
    first = delivered(workspace, owner, address)
    contact_id = first.contact_id

    def another() -> Delivery:
        return Delivery.objects.create(
            workspace=workspace,
            campaign=draft(workspace, owner),
            contact_id=contact_id,
            email=address,
            status=DeliveryStatus.SENT,
        )

    with freeze_time(start):
        received(first, "gmail_over_quota.eml")
        assert feedback.process_received_bounces() == {"soft": 1}
    # The second one falls outside the window of the fourth: only two count then.
    with freeze_time(start + timedelta(days=20)):
        received(another(), "exim_mailbox_full.eml")
        assert feedback.process_received_bounces() == {"soft": 1}
    assert suppressed(workspace) == {}
    with freeze_time(start + timedelta(days=40)):
        received(another(), "gmail_over_quota.eml")
        assert feedback.process_received_bounces() == {"soft": 1}
    assert suppressed(workspace) == {}  # two within 30 days (day 20 and day 40)
    with freeze_time(start + timedelta(days=45)):
        received(another(), "gmail_over_quota.eml")
        assert feedback.process_received_bounces() == {"soft": 1}
    assert suppressed(workspace) == {address: "soft_bounce"}
    assert [e.properties["type"] for e in events(workspace, "email.bounced")] == ["soft"] * 4
    note = Suppression.objects.for_workspace(workspace).get().note
    assert note == "3 soft bounces in 30 days"


@pytest.mark.django_db
def test_a_hard_bounce_after_a_soft_one_upgrades_the_delivery_never_the_reverse(
    workspace, owner, sender
):
    delivery = delivered(workspace, owner, "cara.full@gmail.com")
    received(delivery, "gmail_over_quota.eml")
    received(delivery, "gmail_address_not_found.eml")
    received(delivery, "exim_mailbox_full.eml")
    assert feedback.process_received_bounces() == {"soft": 1, "hard": 1, "repeated": 1}
    delivery.refresh_from_db()
    assert delivery.bounce == "hard"
    assert [e.properties["type"] for e in events(workspace, "email.bounced")] == ["soft", "hard"]


@pytest.mark.django_db
def test_delays_unreadable_messages_and_gone_deliveries_are_kept_with_why(workspace, owner, sender):
    delivery = delivered(workspace, owner, "mia@example.org")
    delay = received(delivery, "sendmail_delayed.eml")
    reply = received(delivery, "out_of_office.eml")
    gone = delivered(workspace, owner, "ann.lee@globex.example")
    orphan = received(gone, "postfix_user_unknown.eml")
    gone.delete()
    assert feedback.process_received_bounces() == {"delayed": 1, "unreadable": 1, "ignored": 1}
    for row in (delay, reply, orphan):
        row.refresh_from_db()
        assert row.processed_at is not None
    assert (delay.result, delay.problem) == ("delayed", "")
    assert reply.result == "unreadable"
    assert reply.problem == (
        "This does not look like a bounce (no failure report, no failed address)."
    )
    assert bytes(reply.raw).startswith(b"From: Nina Field")  # kept as received
    assert (orphan.result, orphan.problem) == (
        "ignored",
        "The delivery this report names no longer exists.",
    )
    assert suppressed(workspace) == {}
    delivery.refresh_from_db()
    assert delivery.bounce == ""


@pytest.mark.django_db
def test_a_row_that_fails_to_apply_keeps_the_error_and_the_others_go_on(
    workspace, owner, sender, monkeypatch
):
    first = received(delivered(workspace, owner, "ann.lee@globex.example"), "qmail_failure.eml")
    second = received(delivered(workspace, owner, "jack@example-isp.net"), "qmail_failure.eml")
    real = feedback.apply_received

    def flaky(row):
        if row.pk == first.pk:
            raise RuntimeError("disk on fire")
        return real(row)

    monkeypatch.setattr(feedback, "apply_received", flaky)
    assert feedback.process_received_bounces() == {"unreadable": 1, "hard": 1}
    first.refresh_from_db()
    assert first.problem == "Processing failed: RuntimeError: disk on fire"
    second.refresh_from_db()
    assert second.result == "hard"


@pytest.mark.django_db
def test_processing_works_in_batches(workspace, owner, sender):
    for n in range(5):
        received(delivered(workspace, owner, f"p{n}@example-isp.net"), "qmail_failure.eml")
    assert feedback.process_received_bounces(batch_size=2) == {"hard": 5}
    assert not ReceivedBounce.objects.for_workspace(workspace).filter(processed_at=None).exists()


@pytest.mark.django_db
def test_workspaces_stay_apart(workspace, owner, sender):
    delivery = delivered(workspace, owner, "ann.lee@globex.example")
    other = WorkspaceFactory()
    # A report stored under another workspace names no delivery of it.
    ReceivedBounce.objects.create(
        workspace=other,
        delivery_id=delivery.pk,
        recipient="x",
        raw=sample("postfix_user_unknown.eml", workspace_id=other.pk, delivery_id=delivery.pk),
    )
    assert feedback.process_received_bounces() == {"ignored": 1}
    delivery.refresh_from_db()
    assert delivery.bounce == ""
    assert suppressed(workspace) == {} and suppressed(other) == {}


# --- Refusals while sending ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_5xx_during_sending_counts_as_a_hard_bounce(workspace, owner, sender, settings):
    news = mailing_list(workspace)
    people = {}
    for name in ("good", "unknown", "reject"):
        contact = ContactFactory(workspace=workspace, email=f"{name}@example.net")
        subscribe(contact, news)
        people[name] = contact
    with MailServer() as server:
        settings.EMAIL_TRANSPORT = "smtp"
        settings.SMTP_URLS = [server.url()]
        from patron.mail import campaigns

        campaign = draft(workspace, owner, news)
        campaigns.schedule_campaign(campaign, user=owner)
        pipeline.start_campaign(campaign.pk)
        for chunk in SendChunk.objects.for_workspace(workspace).filter(campaign=campaign):
            pipeline.run_chunk(chunk.pk)
    rows = {
        row.email: row
        for row in Delivery.objects.for_workspace(workspace).filter(campaign=campaign)
    }
    assert rows["good@example.net"].status == "sent" and rows["good@example.net"].bounce == ""
    unknown = rows["unknown@example.net"]
    assert (unknown.status, unknown.smtp_code, unknown.bounce) == ("failed", 550, "hard")
    # "554 5.7.1 Message rejected as spam" refuses the message, not the address: soft.
    assert rows["reject@example.net"].bounce == "soft"
    assert suppressed(workspace) == {"unknown@example.net": "hard_bounce"}
    bounced = {e.contact_id: e.properties for e in events(workspace, "email.bounced")}
    assert bounced[people["unknown"].pk]["origin"] == "smtp"
    assert bounced[people["unknown"].pk]["code"] == "5.1.1"
    assert bounced[people["reject"].pk]["type"] == "soft"


def test_a_providers_own_failure_is_not_a_bounce():
    assert feedback.is_refusal(550, "5.1.1 No such user here")
    assert not feedback.is_refusal(451, "4.3.0 try later")
    assert not feedback.is_refusal(None, "Rendering failed: oops")
    assert not feedback.is_refusal(503, "Gave up after 6 attempts: SendGrid answered 503: busy")
    assert not feedback.is_refusal(500, "Gave up after 6 attempts: Amazon SES: InternalFailure")


# --- Through the inbound SMTP server ---------------------------------------------------------


@pytest.fixture
def inbound_server(settings):
    settings.RETURN_PATH_DOMAIN = "bounces.lumiar.example"
    controller = inbound.build_server("127.0.0.1", free_port())
    controller.start()
    yield controller
    controller.stop()
    controller.handler.close()


def send(server, raw: bytes, to: str) -> None:
    with smtplib.SMTP(server.hostname, server.port, timeout=10) as connection:
        connection.ehlo("mail.lumiar.example")
        connection.sendmail("", [to], raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


@pytest.mark.django_db(transaction=True)
def test_a_bounce_over_smtp_ends_as_a_suppressed_address(inbound_server, workspace, owner):
    verified_sender(workspace)
    delivery = delivered(workspace, owner, "gina@example-hosting.net")
    verp = mime.verp_address(workspace.pk, delivery.pk)
    assert verp.endswith("@bounces.lumiar.example")
    raw = sample(
        "exim_user_unknown.eml",
        workspace_id=workspace.pk,
        delivery_id=delivery.pk,
        campaign_id=delivery.campaign_id,
    )
    send(inbound_server, raw, verp)
    # The server enqueued the processing right after storing (tests run tasks inline).
    row = ReceivedBounce.objects.for_workspace(workspace).get()
    assert (row.delivery_id, row.result) == (delivery.pk, "hard")
    delivery.refresh_from_db()
    assert delivery.bounce == "hard"
    assert suppressed(workspace) == {"gina@example-hosting.net": "hard_bounce"}


@pytest.mark.django_db(transaction=True)
def test_an_arf_complaint_at_the_feedback_address_is_applied(inbound_server, workspace, owner):
    verified_sender(workspace)
    delivery = delivered(workspace, owner, "olga.reader@yahoo.com")
    raw = sample(
        "arf_yahoo_complaint.eml",
        workspace_id=workspace.pk,
        delivery_id=delivery.pk,
        campaign_id=delivery.campaign_id,
        to="fbl@bounces.lumiar.example",
    )
    send(inbound_server, raw, "fbl@bounces.lumiar.example")
    row = ReceivedBounce.objects.for_workspace(workspace).get()
    assert (row.recipient, row.delivery_id, row.result) == (
        "fbl@bounces.lumiar.example",
        delivery.pk,
        "complaint",
    )
    delivery.refresh_from_db()
    assert delivery.complained_at is not None
    assert suppressed(workspace) == {"olga.reader@yahoo.com": "complaint"}
    # Headers only, recipient redacted, at abuse@: the return path still names the delivery.
    second = delivered(workspace, owner, "pat@example-isp.net")
    raw = sample(
        "arf_headers_only_redacted.eml",
        workspace_id=workspace.pk,
        delivery_id=second.pk,
        campaign_id=second.campaign_id,
        to="abuse@bounces.lumiar.example",
    )
    send(inbound_server, raw, "abuse@bounces.lumiar.example")
    assert suppressed(workspace)["pat@example-isp.net"] == "complaint"


@pytest.mark.django_db(transaction=True)
def test_a_tampered_verp_token_is_refused(inbound_server, workspace, owner):
    verified_sender(workspace)
    delivery = delivered(workspace, owner, "ann.lee@globex.example")
    token = tokens.sign("verp", workspace.pk, delivery.pk)
    other = tokens.sign("verp", workspace.pk, delivery.pk + 1)
    forged = other[:-3] + token[-3:]
    raw = sample(
        "postfix_user_unknown.eml", workspace_id=workspace.pk, delivery_id=delivery.pk
    ).replace(token.encode(), forged.encode())
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(inbound_server, raw, f"bounce+{forged}@bounces.lumiar.example")
    assert refused.value.recipients[f"bounce+{forged}@bounces.lumiar.example"][0] == 550
    # At the feedback address, a report whose return path does not verify is refused too.
    with pytest.raises(smtplib.SMTPDataError) as data_refused:
        send(inbound_server, raw, "fbl@bounces.lumiar.example")
    assert data_refused.value.smtp_code == 550
    assert b"no signed return path" in data_refused.value.smtp_error
    assert not ReceivedBounce.objects.for_workspace(workspace).exists()
    assert suppressed(workspace) == {}


def test_processing_is_a_periodic_job():
    from patron.core.scheduler import PERIODIC_JOBS
    from patron.mail import tasks

    (job,) = [job for job in PERIODIC_JOBS.values() if job.task == tasks.process_bounces]
    assert job.every == timedelta(minutes=1)
