"""Event webhooks of the email service providers (django-anymail's tracking views).

Each workspace that sends through a provider gets its own webhook address:

    https://patron:<secret>@<host>/hooks/esp/<provider>/<token>/

``token`` is signed (kind "esphook": workspace and provider), and the basic-auth
``secret`` is derived from the installation's secret key and the workspace, so
anymail's own check (``WEBHOOK_SECRET``) is made per workspace; anymail's
global settings cannot be. On top, Mailgun's events are signed with the
account's webhook signing key (kept encrypted in ``DeliveryConfig.esp_webhook_key``,
the API key being anymail's fallback) and SendGrid's when its signed event
webhook is on (the public key in the same field). A request that fails a check
gets 400 and changes nothing.

The events are read by anymail (``parse_events``) and applied here, with the
workspace the address names:

- ``bounced`` -> ``feedback.record_bounces`` (hard or soft from what the
  provider says: Postmark's HardBounce/SoftBounce, SES's Permanent/Transient,
  else the status code and words, as for received bounces);
- ``complained`` -> ``feedback.record_complaint``;
- ``unsubscribed`` -> ``patron.mail.unsubscribe.unsubscribe_from_all``;
- ``delivered``, ``opened``, ``clicked`` -> ``email.delivered``,
  ``email.opened``, ``email.clicked`` with ``{"campaign", "delivery", "esp": true}``
  (and ``"url"`` for clicks), once per provider event id.

The delivery is found from the message's metadata (``patron``: the signed VERP
token the provider transports attach, see ``esp.py``), else from our
Message-ID (``<d<delivery>.c<campaign>@...>``), else from the
``X-Patron-Campaign`` header with the recipient's address; always within the
workspace the address names. Events about other messages (test sends, mail
that is not a campaign's) are acknowledged and left alone.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from typing import Any

from anymail.exceptions import AnymailNotSupportedWarning
from anymail.signals import AnymailTrackingEvent, EventType
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from anymail.webhooks.base import AnymailCoreWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from patron.activity.models import Event
from patron.activity.services import record
from patron.core.crypto import SecretUnreadable, decrypt_secret, encrypt_secret
from patron.core.models import User, Workspace
from patron.core.services import record_audit
from patron.crm.models import Contact
from patron.mail import bounces, feedback, tokens
from patron.mail.esp import PROVIDERS
from patron.mail.models import BounceType, Delivery, DeliveryConfig

logger = logging.getLogger(__name__)

TOKEN_KIND = "esphook"  # noqa: S105 - a token kind, not a password
AUTH_KIND = "esphook-auth"
AUTH_USER = "patron"
EVENT_SOURCE = "mail.esp"
METADATA_KEY = "patron"  # the signed VERP token of the delivery
_MESSAGE_ID = re.compile(r"\bd(\d{1,19})\.c(\d{1,19})@")


# --- Addresses -------------------------------------------------------------------------------


def webhook_token(workspace_id: int, provider: str) -> str:
    return tokens.sign(TOKEN_KIND, workspace_id, PROVIDERS.index(provider))


def webhook_secret(workspace_id: int) -> str:
    """The basic-auth ``user:password`` the provider must send (anymail's WEBHOOK_SECRET)."""
    return f"{AUTH_USER}:{tokens.sign(AUTH_KIND, workspace_id)}"


def webhook_url(workspace_id: int, provider: str) -> str:
    """The address to paste into the provider's event webhook settings, secret included."""
    scheme, _sep, rest = settings.BASE_URL.partition("://")
    token = webhook_token(workspace_id, provider)
    return f"{scheme}://{webhook_secret(workspace_id)}@{rest}/hooks/esp/{provider}/{token}/"


def read_webhook_token(provider: str, token: str) -> int | None:
    """The workspace a webhook token names for ``provider``, or None."""
    values = tokens.unsign(TOKEN_KIND, token)
    if values is None or len(values) != 2 or provider not in PROVIDERS:
        return None
    workspace_id, index = values
    return workspace_id if index == PROVIDERS.index(provider) else None


def set_webhook_key(*, workspace: Workspace, key: str, actor: User | None) -> DeliveryConfig:
    """Keep the provider's webhook signing key (Mailgun) or public key (SendGrid), encrypted."""
    key = key.strip()
    with transaction.atomic():
        config, _created = DeliveryConfig.objects.for_workspace(workspace).get_or_create(
            workspace=workspace
        )
        config.esp_webhook_key = encrypt_secret(key) if key else ""
        config.updated_at = timezone.now()
        config.updated_by = actor
        config.save(update_fields=["esp_webhook_key", "updated_at", "updated_by"])
        record_audit(
            action="delivery.webhook_key_changed",
            workspace=workspace,
            actor=actor,
            target=config.esp_provider,
            data={"set": bool(key)},
        )
    return config


# --- The views -------------------------------------------------------------------------------


class _Receiver(AnymailCoreWebhookView):
    """Mixed in before an anymail tracking view: applies the events it parsed (after its
    checks passed) to one workspace, instead of sending anymail's global signal."""

    patron_workspace_id = 0
    patron_provider = ""
    # Per-request options (``as_view`` takes only names the class has).
    webhook_secret: Any = None
    auto_confirm_sns_subscriptions: Any = None

    def parse_events(self, request: HttpRequest) -> list[Any]:
        for event in super().parse_events(request):
            apply_event(self.patron_workspace_id, self.patron_provider, event)
        return []


_VIEWS: dict[str, type[AnymailCoreWebhookView]] = {
    provider: type(f"Patron{base.__name__}", (_Receiver, base), {})
    for provider, base in (
        ("amazon_ses", AmazonSESTrackingWebhookView),
        ("sendgrid", SendGridTrackingWebhookView),
        ("mailgun", MailgunTrackingWebhookView),
        ("postmark", PostmarkTrackingWebhookView),
    )
}


def _secret(token: str) -> str:
    if not token:
        return ""
    try:
        return decrypt_secret(token)
    except SecretUnreadable:
        return ""


@csrf_exempt
def esp_webhook(request: HttpRequest, provider: str, token: str) -> HttpResponse:
    """The workspace's webhook for one provider: anymail's checks and parsing, our mapping."""
    workspace_id = read_webhook_token(provider, token)
    if workspace_id is None:
        raise Http404
    config = DeliveryConfig.objects.for_workspace(workspace_id).first()
    options: dict[str, Any] = {
        "patron_workspace_id": workspace_id,
        "patron_provider": provider,
        "webhook_secret": [webhook_secret(workspace_id)],
    }
    key = _secret(config.esp_webhook_key) if config else ""
    if provider == "mailgun":
        signing_key = key or (_secret(config.esp_secret) if config else "")
        if not signing_key:
            raise Http404  # nothing to check Mailgun's signature with: not set up here
        options["webhook_signing_key"] = signing_key
    elif provider == "sendgrid" and key:
        options["tracking_webhook_verification_key"] = key
    elif provider == "amazon_ses":
        # Confirming an SNS subscription fetches its SubscribeURL: only once the
        # request passed the basic-auth check, which anymail makes first.
        options["auto_confirm_sns_subscriptions"] = True
    view = _VIEWS[provider].as_view(**options)
    with warnings.catch_warnings():
        # anymail warns on every SendGrid view that its maintainers dropped official support.
        warnings.simplefilter("ignore", AnymailNotSupportedWarning)
        response: HttpResponse = view(request)
    return response


# --- Applying events -------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _campaign_header(value: Any) -> int | None:
    """X-Patron-Campaign in a provider's copy of the headers (name/value pairs or a dict)."""
    if isinstance(value, dict):
        name = str(value.get("name", value.get("Name", ""))).lower()
        if name == "x-patron-campaign":
            found = str(value.get("value", value.get("Value", ""))).strip()
            return int(found) if found.isdigit() else None
        for key, item in value.items():
            if str(key).lower() == "x-patron-campaign" and str(item).strip().isdigit():
                return int(str(item).strip())
            found_in = _campaign_header(item)
            if found_in is not None:
                return found_in
    elif isinstance(value, list):
        for item in value:
            found_in = _campaign_header(item)
            if found_in is not None:
                return found_in
    return None


def find_delivery(
    workspace_id: int, event: AnymailTrackingEvent
) -> tuple[int, int, int, str] | None:
    """(delivery, campaign, contact, address) of the event's message in the workspace."""
    rows = Delivery.objects.for_workspace(workspace_id).values_list(
        "pk", "campaign_id", "contact_id", "email"
    )
    token = (event.metadata or {}).get(METADATA_KEY)
    if isinstance(token, str):
        values = tokens.unsign("verp", token)
        if values is not None and len(values) == 2 and values[0] == workspace_id:
            found = rows.filter(pk=values[1]).first()
            if found is not None:
                return found
    for text in [str(event.message_id or ""), *_strings(event.esp_event)]:
        match = _MESSAGE_ID.search(text)
        if match:
            found = rows.filter(pk=int(match.group(1)), campaign_id=int(match.group(2))).first()
            if found is not None:
                return found
            break
    campaign_id = _campaign_header(event.esp_event)
    if campaign_id is not None and event.recipient:
        return rows.filter(campaign_id=campaign_id, email=event.recipient.strip().lower()).first()
    return None


def bounce_type(provider: str, event: AnymailTrackingEvent) -> str:
    """Hard or soft, from the provider's own word when it has one, else the code and text."""
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    if provider == "postmark" and raw.get("Type") in ("HardBounce", "SoftBounce"):
        return BounceType.HARD if raw["Type"] == "HardBounce" else BounceType.SOFT
    if provider == "amazon_ses":
        kind = str((raw.get("bounce") or {}).get("bounceType", ""))
        if kind in ("Permanent", "Transient", "Undetermined"):
            return BounceType.HARD if kind == "Permanent" else BounceType.SOFT
    if provider == "sendgrid" and raw.get("type") == "blocked":
        return BounceType.SOFT  # the receiver refused the sender, not the address
    text = _diagnostic(event)
    status = str(raw.get("status", "")) if provider == "sendgrid" else ""
    return bounces.classify(bounces.status_in(status) or bounces.status_in(text), text)


def _diagnostic(event: AnymailTrackingEvent) -> str:
    return " ".join(str(part) for part in (event.mta_response, event.description) if part)


def _seen(workspace_id: int, key: str) -> bool:
    return (
        Event.objects.for_workspace(workspace_id)
        .filter(source_type=EVENT_SOURCE, source_id=key)
        .exists()
    )


def apply_event(workspace_id: int, provider: str, event: AnymailTrackingEvent) -> str:
    """Apply one provider event to the workspace; returns what was done (for logs and tests)."""
    if event.event_type not in (
        EventType.BOUNCED,
        EventType.COMPLAINED,
        EventType.UNSUBSCRIBED,
        EventType.DELIVERED,
        EventType.OPENED,
        EventType.CLICKED,
    ):
        return "not handled"
    found = find_delivery(workspace_id, event)
    if found is None:
        logger.info(
            "%s %s event for a message that is not a campaign's (%s)",
            provider,
            event.event_type,
            event.message_id,
        )
        return "not ours"
    delivery_id, campaign_id, contact_id, _address = found
    if event.event_type == EventType.BOUNCED:
        text = _diagnostic(event)
        applied = feedback.record_bounces(
            workspace=workspace_id,
            bounces=[
                feedback.Bounce(
                    delivery_id=delivery_id,
                    type=bounce_type(provider, event),
                    code=bounces.status_in(text),
                    diagnostic=text,
                    recipient=event.recipient or "",
                    origin=feedback.ESP,
                )
            ],
        )
        return "bounced" if applied.changed else "repeated"
    if event.event_type == EventType.COMPLAINED:
        done = feedback.record_complaint(
            workspace=workspace_id,
            delivery_id=delivery_id,
            origin=feedback.ESP,
            details={"esp": provider},
        )
        return "complained" if done else "repeated"
    if event.event_type == EventType.UNSUBSCRIBED:
        from patron.mail.unsubscribe import PAGE, unsubscribe_from_all

        contact = Contact.objects.for_workspace(workspace_id).filter(pk=contact_id).first()
        if contact is None:
            return "contact gone"
        workspace = Workspace.objects.get(pk=workspace_id)
        result = unsubscribe_from_all(
            workspace=workspace,
            contact=contact,
            campaign_id=campaign_id,
            method=PAGE,
            details={"esp": provider},
        )
        return "unsubscribed" if result.changed else "repeated"
    kind = {
        EventType.DELIVERED: "email.delivered",
        EventType.OPENED: "email.opened",
        EventType.CLICKED: "email.clicked",
    }[event.event_type]
    key = f"{provider}:{event.event_id}" if event.event_id else ""
    if key and _seen(workspace_id, key):
        return "repeated"
    properties: dict[str, Any] = {"campaign": campaign_id, "delivery": delivery_id, "esp": True}
    if event.event_type == EventType.CLICKED:
        properties["url"] = str(event.click_url or "")[:2000]
    record(
        workspace=workspace_id,
        kind=kind,
        contact_id=contact_id,
        source=(EVENT_SOURCE, key) if key else None,
        properties=properties,
        occurred_at=event.timestamp or None,
    )
    return kind
