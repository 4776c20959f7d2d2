"""Providers' event webhooks (``patron.mail.esp_webhooks``): real-looking payloads of
Postmark, SendGrid, Mailgun and Amazon SES (through SNS) posted to the workspace's webhook
address with the Django test client; anymail checks and parses them, Patron applies them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
import responses
from django.test import Client
from django.utils import timezone

from patron.activity.models import Event
from patron.audience import lists
from patron.audience.models import Suppression
from patron.core.crypto import encrypt_secret
from patron.crm.models import Contact
from patron.mail import esp_webhooks, mime, tokens
from patron.mail.esp import EspTransport
from patron.mail.models import Delivery, DeliveryConfig, DeliveryStatus
from patron.mail.transports import Outgoing
from tests.factories import ContactFactory, WorkspaceFactory
from tests.mail.campaign_helpers import draft, mailing_list, subscribe, verified_sender

pytestmark = pytest.mark.django_db

MAILGUN_SIGNING_KEY = "9f2c1d7e4b6a8c0e3f5a7b9d1c3e5f70"


@pytest.fixture
def sender(workspace):
    return verified_sender(workspace)


@pytest.fixture
def campaign(workspace, owner, sender):
    return draft(workspace, owner)


def delivered(workspace, campaign, email: str) -> Delivery:
    contact = ContactFactory(workspace=workspace, email=email)
    return Delivery.objects.create(
        workspace=workspace,
        campaign=campaign,
        contact_id=contact.pk,
        email=email,
        status=DeliveryStatus.SENT,
        sent_at=timezone.now(),
    )


def configure(workspace, provider: str, *, webhook_key: str = "") -> None:
    DeliveryConfig.objects.create(
        workspace=workspace,
        mode="esp",
        esp_provider=provider,
        esp_secret=encrypt_secret("provider-api-key"),
    )
    if webhook_key:
        esp_webhooks.set_webhook_key(workspace=workspace, key=webhook_key, actor=None)


def url_of(workspace, provider: str) -> str:
    return f"/hooks/esp/{provider}/{esp_webhooks.webhook_token(workspace.pk, provider)}/"


def auth(workspace) -> dict[str, str]:
    secret = esp_webhooks.webhook_secret(workspace.pk)
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def post(workspace, provider: str, payload, *, headers=None, authorised=True):
    extra = {**(auth(workspace) if authorised else {}), **(headers or {})}
    return Client().post(
        url_of(workspace, provider),
        data=json.dumps(payload),
        content_type="application/json",
        **extra,
    )


def token_of(delivery: Delivery) -> str:
    return tokens.sign("verp", delivery.workspace_id, delivery.pk)


def message_id(delivery: Delivery) -> str:
    return mime.message_id_for(f"d{delivery.pk}.c{delivery.campaign_id}")


def suppressed(workspace) -> dict[str, str]:
    return dict(Suppression.objects.for_workspace(workspace).values_list("email", "reason"))


def events(workspace, kind: str):
    return list(Event.objects.for_workspace(workspace).filter(kind=kind).order_by("id"))


# --- The address -----------------------------------------------------------------------------


def test_the_webhook_url_carries_the_secret_and_a_signed_token(workspace, settings):
    settings.BASE_URL = "https://crm.acme.example"
    url = esp_webhooks.webhook_url(workspace.pk, "postmark")
    secret = esp_webhooks.webhook_secret(workspace.pk)
    token = esp_webhooks.webhook_token(workspace.pk, "postmark")
    assert url == f"https://{secret}@crm.acme.example/hooks/esp/postmark/{token}/"
    assert esp_webhooks.read_webhook_token("postmark", token) == workspace.pk
    # A token is for one provider only, and for one workspace's secret.
    assert esp_webhooks.read_webhook_token("sendgrid", token) is None
    assert esp_webhooks.webhook_secret(workspace.pk + 1) != secret


# --- Postmark --------------------------------------------------------------------------------


def postmark_bounce(delivery: Delivery, kind: str = "HardBounce") -> dict:
    return {
        "RecordType": "Bounce",
        "MessageStream": "broadcast",
        "ID": 4323372036854775807,
        "Type": kind,
        "TypeCode": 1 if kind == "HardBounce" else 4096,
        "Name": "Hard bounce" if kind == "HardBounce" else "Soft bounce/Undeliverable",
        "Tag": "",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"patron": token_of(delivery)},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, "
        "mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": delivery.email,
        "From": "news@lumiar.example",
        "BouncedAt": "2026-12-01T10:00:00Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "December news",
    }


def test_a_postmark_hard_bounce_suppresses_and_a_retry_changes_nothing(workspace, campaign):
    configure(workspace, "postmark")
    delivery = delivered(workspace, campaign, "ann@example.net")
    payload = postmark_bounce(delivery)
    assert post(workspace, "postmark", payload).status_code == 200
    delivery.refresh_from_db()
    assert delivery.bounce == "hard" and delivery.bounced_at is not None
    assert suppressed(workspace) == {"ann@example.net": "hard_bounce"}
    (event,) = events(workspace, "email.bounced")
    assert event.properties["origin"] == "esp"
    assert event.properties["code"] == "5.1.1"
    assert event.properties["campaign"] == campaign.pk
    # The provider sends it again (it did not hear our answer): nothing more happens.
    assert post(workspace, "postmark", payload).status_code == 200
    assert len(events(workspace, "email.bounced")) == 1


def test_a_postmark_soft_bounce_is_soft(workspace, campaign):
    configure(workspace, "postmark")
    delivery = delivered(workspace, campaign, "ann@example.net")
    payload = postmark_bounce(delivery, "SoftBounce")
    payload["Details"] = "smtp;452 4.2.2 The email account that you tried to reach is over quota."
    assert post(workspace, "postmark", payload).status_code == 200
    delivery.refresh_from_db()
    assert delivery.bounce == "soft"
    assert suppressed(workspace) == {}


def test_a_request_without_the_secret_or_with_a_forged_token_changes_nothing(workspace, campaign):
    configure(workspace, "postmark")
    delivery = delivered(workspace, campaign, "ann@example.net")
    payload = postmark_bounce(delivery)
    assert post(workspace, "postmark", payload, authorised=False).status_code == 400
    wrong = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"patron:guess").decode()}
    assert (
        Client()
        .post(url_of(workspace, "postmark"), json.dumps(payload), "application/json", **wrong)
        .status_code
        == 400
    )
    token = esp_webhooks.webhook_token(workspace.pk, "postmark")
    forged = f"/hooks/esp/postmark/{token[:-2]}xx/"
    response = Client().post(forged, json.dumps(payload), "application/json", **auth(workspace))
    assert response.status_code == 404
    # Another workspace's address and secret do not reach this workspace's deliveries.
    other = WorkspaceFactory()
    configure(other, "postmark")
    assert post(other, "postmark", payload).status_code == 200
    delivery.refresh_from_db()
    assert delivery.bounce == ""
    assert suppressed(workspace) == {} and suppressed(other) == {}


def test_postmark_opens_clicks_deliveries_complaints_and_unsubscribes(workspace, campaign):
    configure(workspace, "postmark")
    delivery = delivered(workspace, campaign, "ann@example.net")
    news = mailing_list(workspace)
    contact = Contact.objects.for_workspace(workspace).get(pk=delivery.contact_id)
    subscribe(contact, news)
    common = {"MessageID": "883953f4", "Metadata": {"patron": token_of(delivery)}}
    assert (
        post(
            workspace,
            "postmark",
            {
                **common,
                "RecordType": "Delivery",
                "Recipient": delivery.email,
                "DeliveredAt": "2026-12-01T10:00:01Z",
                "Details": "Test delivery webhook details",
                "ServerID": 23,
                "Tag": "",
            },
        ).status_code
        == 200
    )
    post(
        workspace,
        "postmark",
        {
            **common,
            "RecordType": "Open",
            "FirstOpen": True,
            "Recipient": delivery.email,
            "ReceivedAt": "2026-12-01T10:05:00Z",
            "Platform": "WebMail",
            "ReadSeconds": 5,
            "UserAgent": "Mozilla/5.0",
        },
    )
    post(
        workspace,
        "postmark",
        {
            **common,
            "RecordType": "Click",
            "ClickLocation": "HTML",
            "Recipient": delivery.email,
            "OriginalLink": "https://lumiar.example/a",
            "ReceivedAt": "2026-12-01T10:06:00Z",
        },
    )
    assert [e.properties for e in events(workspace, "email.delivered")] == [
        {"campaign": campaign.pk, "delivery": delivery.pk, "esp": True}
    ]
    assert [e.properties for e in events(workspace, "email.opened")] == [
        {"campaign": campaign.pk, "delivery": delivery.pk, "esp": True}
    ]
    assert [e.properties for e in events(workspace, "email.clicked")] == [
        {
            "campaign": campaign.pk,
            "delivery": delivery.pk,
            "esp": True,
            "url": "https://lumiar.example/a",
        }
    ]
    assert events(workspace, "email.opened")[0].contact_id == delivery.contact_id

    post(
        workspace,
        "postmark",
        {
            **common,
            "RecordType": "SubscriptionChange",
            "ChangedAt": "2026-12-01T10:07:00Z",
            "Recipient": delivery.email,
            "Origin": "Recipient",
            "SuppressSending": True,
            "SuppressionReason": "Unsubscribe",
            "Tag": "",
        },
    )
    (subscription, _history) = lists.contact_subscriptions(contact)[0]
    assert subscription.status == "unsubscribed"
    (unsubscribed,) = events(workspace, "email.unsubscribed")
    assert unsubscribed.properties["campaign"] == campaign.pk
    assert suppressed(workspace) == {"ann@example.net": "unsubscribed"}

    second = delivered(workspace, campaign, "bob@example.net")
    post(
        workspace,
        "postmark",
        {
            "RecordType": "SpamComplaint",
            "ID": 42,
            "Type": "SpamComplaint",
            "TypeCode": 512,
            "MessageID": "99a0b1c2",
            "Metadata": {"patron": token_of(second)},
            "Email": second.email,
            "BouncedAt": "2026-12-01T11:00:00Z",
            "Description": "The subscriber explicitly marked this message as spam.",
        },
    )
    second.refresh_from_db()
    assert second.complained_at is not None
    assert events(workspace, "email.complained")[0].properties["esp"] == "postmark"
    assert suppressed(workspace)["bob@example.net"] == "complaint"


# --- SendGrid --------------------------------------------------------------------------------


def test_sendgrid_batches_are_applied_event_by_event_once(workspace, campaign):
    configure(workspace, "sendgrid")
    ann = delivered(workspace, campaign, "ann@example.net")
    bob = delivered(workspace, campaign, "bob@example.net")
    base = {"timestamp": 1764583331, "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648"}
    batch = [
        {
            **base,
            "email": ann.email,
            "event": "open",
            "sg_event_id": "sg-open-1",
            "smtp-id": message_id(ann),
            "useragent": "Mozilla/5.0",
            "ip": "203.0.113.9",
            "patron": token_of(ann),
        },
        {
            **base,
            "email": ann.email,
            "event": "click",
            "sg_event_id": "sg-click-1",
            "url": "https://lumiar.example/b",
            "patron": token_of(ann),
        },
        {
            **base,
            "email": bob.email,
            "event": "bounce",
            "sg_event_id": "sg-bounce-1",
            "type": "bounce",
            "status": "5.1.1",
            "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
            # Without metadata: our Message-ID (smtp-id) names the delivery.
            "smtp-id": message_id(bob),
        },
    ]
    assert post(workspace, "sendgrid", batch).status_code == 200
    assert post(workspace, "sendgrid", batch).status_code == 200  # delivered twice
    assert len(events(workspace, "email.opened")) == 1
    (click,) = events(workspace, "email.clicked")
    assert click.properties["url"] == "https://lumiar.example/b"
    bob.refresh_from_db()
    assert bob.bounce == "hard"
    assert suppressed(workspace) == {"bob@example.net": "hard_bounce"}


def test_a_sendgrid_block_is_a_soft_bounce(workspace, campaign):
    configure(workspace, "sendgrid")
    ann = delivered(workspace, campaign, "ann@example.net")
    event = {
        "email": ann.email,
        "timestamp": 1764583331,
        "event": "bounce",
        "type": "blocked",
        "status": "5.7.1",
        "reason": "550 5.7.1 Service unavailable; client host blocked using Spamhaus",
        "sg_event_id": "sg-block-1",
        "patron": token_of(ann),
    }
    assert post(workspace, "sendgrid", [event]).status_code == 200
    ann.refresh_from_db()
    assert ann.bounce == "soft"
    assert suppressed(workspace) == {}


# --- Mailgun ---------------------------------------------------------------------------------


def mailgun_payload(delivery: Delivery, event: dict, key: str = MAILGUN_SIGNING_KEY) -> dict:
    timestamp, token = "1764583331", "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {
            "id": "CPgfbmQMTCKtHW6uIWtuVe",
            "timestamp": 1764583331.853,
            "recipient": delivery.email,
            "message": {
                "headers": {
                    "to": delivery.email,
                    "message-id": message_id(delivery).strip("<>"),
                    "from": "news@lumiar.example",
                    "subject": "December news",
                }
            },
            "user-variables": {"patron": token_of(delivery)},
            **event,
        },
    }


def test_a_signed_mailgun_failure_is_applied_and_a_bad_signature_refused(workspace, campaign):
    configure(workspace, "mailgun", webhook_key=MAILGUN_SIGNING_KEY)
    ann = delivered(workspace, campaign, "ann@example.net")
    failed = {
        "event": "failed",
        "severity": "permanent",
        "reason": "bounce",
        "delivery-status": {
            "code": 550,
            "message": "5.1.1 The email account that you tried to reach does not exist.",
            "description": "",
            "attempt-no": 1,
        },
    }
    forged = mailgun_payload(ann, failed, key="not-the-key")
    assert post(workspace, "mailgun", forged).status_code == 400
    ann.refresh_from_db()
    assert ann.bounce == ""
    assert post(workspace, "mailgun", mailgun_payload(ann, failed)).status_code == 200
    ann.refresh_from_db()
    assert ann.bounce == "hard"
    bob = delivered(workspace, campaign, "bob@example.net")
    assert (
        post(workspace, "mailgun", mailgun_payload(bob, {"event": "complained"})).status_code == 200
    )
    bob.refresh_from_db()
    assert bob.complained_at is not None
    assert suppressed(workspace) == {
        "ann@example.net": "hard_bounce",
        "bob@example.net": "complaint",
    }


def test_mailgun_without_any_key_is_not_served(workspace):
    DeliveryConfig.objects.create(workspace=workspace, mode="esp", esp_provider="mailgun")
    assert post(workspace, "mailgun", {}).status_code == 404


# --- Amazon SES (through SNS) ----------------------------------------------------------------


def sns(ses_event: dict, message_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324") -> tuple:
    body = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:patron-events",
        "Message": json.dumps(ses_event),
        "Timestamp": "2026-12-01T10:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+...",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }
    headers = {
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification",
        "HTTP_X_AMZ_SNS_MESSAGE_ID": message_id,
        "HTTP_X_AMZ_SNS_TOPIC_ARN": body["TopicArn"],
    }
    return body, headers


def ses_mail(delivery: Delivery) -> dict:
    # SES keeps the raw message's headers: our Message-ID and X-Patron-Campaign.
    return {
        "timestamp": "2026-12-01T09:59:58.000Z",
        "source": "news@lumiar.example",
        "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/lumiar.example",
        "messageId": "0102018d3f8c1a2b-5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9-000000",
        "destination": [delivery.email],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": "Lumiar News <news@lumiar.example>"},
            {"name": "To", "value": delivery.email},
            {"name": "Message-ID", "value": message_id(delivery)},
            {"name": "X-Patron-Campaign", "value": str(delivery.campaign_id)},
        ],
        "commonHeaders": {
            "from": ["Lumiar News <news@lumiar.example>"],
            "to": [delivery.email],
            "messageId": message_id(delivery),
            "subject": "December news",
        },
    }


def test_ses_bounces_and_complaints_through_sns(workspace, campaign):
    configure(workspace, "amazon_ses")
    ann = delivered(workspace, campaign, "ann@example.net")
    bob = delivered(workspace, campaign, "bob@example.net")
    bounce = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": ann.email,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2026-12-01T10:00:00.000Z",
            "feedbackId": "0102018d3f8c1a2b-bounce",
            "reportingMTA": "dsn; a1-2.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": ses_mail(ann),
    }
    body, headers = sns(bounce)
    # Without credentials SNS is first asked for them (401), as SNS expects.
    assert post(workspace, "amazon_ses", body, headers=headers, authorised=False).status_code == 401
    assert post(workspace, "amazon_ses", body, headers=headers).status_code == 200
    ann.refresh_from_db()
    assert ann.bounce == "hard"
    complaint = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": bob.email}],
            "timestamp": "2026-12-01T11:00:00.000Z",
            "feedbackId": "0102018d3f8c1a2b-complaint",
            "userAgent": "Yahoo!-Mail-Feedback/2.0",
            "complaintFeedbackType": "abuse",
        },
        "mail": ses_mail(bob),
    }
    body, headers = sns(complaint, "5f0d3b2a-1c4e-4a6b-8d9f-0e1a2b3c4d5e")
    assert post(workspace, "amazon_ses", body, headers=headers).status_code == 200
    bob.refresh_from_db()
    assert bob.complained_at is not None
    assert suppressed(workspace) == {
        "ann@example.net": "hard_bounce",
        "bob@example.net": "complaint",
    }


def test_a_transient_ses_bounce_is_soft(workspace, campaign):
    configure(workspace, "amazon_ses")
    ann = delivered(workspace, campaign, "ann@example.net")
    event = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Transient",
            "bounceSubType": "MailboxFull",
            "bouncedRecipients": [{"emailAddress": ann.email}],
            "timestamp": "2026-12-01T10:00:00.000Z",
            "feedbackId": "x",
        },
        "mail": ses_mail(ann),
    }
    body, headers = sns(event)
    assert post(workspace, "amazon_ses", body, headers=headers).status_code == 200
    ann.refresh_from_db()
    assert ann.bounce == "soft"


# --- What goes out ---------------------------------------------------------------------------


@responses.activate
def test_provider_messages_carry_the_delivery_token_as_metadata():
    responses.add(
        responses.POST,
        "https://api.postmarkapp.com/email",
        json={"ErrorCode": 0, "Message": "OK", "MessageID": "b7bc2f4a", "To": "ada@example.net"},
    )
    verp = mime.verp_address(1, 41)
    data = mime.build_message(
        from_name="Acme News",
        from_email="news@acme.example",
        to_email="ada@example.net",
        subject="Hello",
        html="<p>Hello</p>",
        text="Hello",
        message_id="<d41.c7@mail.acme.example>",
    )
    transport = EspTransport("postmark", secret="00000000-0000-0000-0000-000000000000")
    transport.send(
        [
            Outgoing(
                key="41",
                envelope_from=verp,
                recipients=["ada@example.net"],
                data=data,
                workspace_id=1,
            )
        ]
    )
    body = json.loads(responses.calls[0].request.body)
    assert body["Metadata"] == {"patron": tokens.sign("verp", 1, 41)}
