"""Set-up shared by the campaign page, API and browser tests: a verified sender,
a list with subscribers, a segment, and a draft that passes every check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from patron.audience import lists, segment_services
from patron.audience.models import ConsentSource, MailingList, Segment
from patron.core.models import Workspace
from patron.crm import services as crm
from patron.crm.models import Contact
from patron.mail import senders
from patron.mail.models import SenderIdentity

GOOD_BODY = (
    "<html><body>\n"
    '<p>Hello {{ contact.first_name | default: "there" }},</p>\n'
    '<p><a href="https://example.com/spring">Our spring books</a></p>\n'
    '<p>{{ postal_address }} · <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>\n'
    "</body></html>\n"
)


@dataclass
class Audience:
    sender: SenderIdentity
    newsletter: MailingList
    readers: Segment
    ann: Contact
    bob: Contact
    cy: Contact


def verified_sender(workspace: Workspace, email: str = "news@lumiar.example") -> SenderIdentity:
    """A sender address added and verified as a person would, through its link."""
    identity = senders.create_sender(
        workspace=workspace,
        from_name="Livraria Lumiar",
        from_email=email,
        postal_address="Rua do Lumiar 1, Lisboa",
    )
    identity, _changed = senders.verify_sender(token=senders.verification_token(identity))
    return identity


def make_audience(workspace: Workspace) -> Audience:
    """Ann and Bob subscribe to the newsletter; the "Readers" segment is everyone
    whose address is at lumiar.example (Ann and Cy)."""
    sender = verified_sender(workspace)
    ann = crm.create_contact(
        workspace=workspace, first_name="Ann", last_name="Reis", email="ann@lumiar.example"
    )
    bob = crm.create_contact(
        workspace=workspace, first_name="Bob", last_name="Sá", email="bob@elsewhere.example"
    )
    cy = crm.create_contact(
        workspace=workspace, first_name="Cy", last_name="Lobo", email="cy@lumiar.example"
    )
    newsletter = lists.create_list(workspace=workspace, name="Newsletter")
    consent = lists.Consent(source=ConsentSource.API, consent_text="Yes, send me the news")
    for contact in (ann, bob):
        lists.subscribe(mailing_list=newsletter, contact=contact, consent=consent, confirmed=True)
    readers = segment_services.create_segment(
        workspace=workspace,
        name="Readers",
        definition={
            "match": "all",
            "conditions": [
                {"type": "field", "field": "email", "op": "contains", "value": "@lumiar.example"}
            ],
        },
    )
    return Audience(sender, newsletter, readers, ann, bob, cy)


def ready_values(audience: Audience, **overrides: Any) -> dict[str, Any]:
    """Values of a campaign that passes every check, to the "Readers" segment."""
    values: dict[str, Any] = {
        "name": "Spring news",
        "subject": "Spring at Lumiar, {{ contact.first_name }}",
        "format": "html",
        "body": GOOD_BODY,
        "sender": audience.sender.pk,
        "audience": {"include": {"segments": [audience.readers.pk]}},
    }
    values.update(overrides)
    return values
