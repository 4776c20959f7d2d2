"""Shared makers for campaign and pipeline tests: a verified sender, a list, people, a campaign."""

from __future__ import annotations

from patron.audience.models import MailingList, Subscription
from patron.mail import campaigns, senders
from patron.mail.models import Campaign
from tests.factories import ContactFactory

POSTAL = "Acme Ltd\n1 Main Street\nLisbon"
BODY = (
    "<html><head><style>p { color: #333; }</style></head><body>"
    "<p>Hello {{ contact.first_name | default: 'there' }},</p>"
    "<p>Our news for {{ company.name | default: 'you' }}.</p>"
    '<p><a href="https://acme.example/a">A</a> <a href="https://acme.example/b">B</a></p>'
    '<p><a href="{{ view_in_browser_url }}">View in your browser</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> · {{ postal_address }}</p>'
    "</body></html>"
)


def verified_sender(workspace, email="news@acme.example"):
    identity = senders.create_sender(
        workspace=workspace, from_name="Acme News", from_email=email, postal_address=POSTAL
    )
    identity, _changed = senders.verify_sender(token=senders.verification_token(identity))
    return identity


def mailing_list(workspace, name="Newsletter") -> MailingList:
    return MailingList.objects.create(workspace=workspace, name=name)


def subscribe(contact, to: MailingList, status="subscribed") -> Subscription:
    return Subscription.objects.create(
        workspace=contact.workspace, contact=contact, mailing_list=to, status=status
    )


def subscribers(workspace, to: MailingList, count: int, prefix="reader"):
    people = []
    for n in range(count):
        contact = ContactFactory(
            workspace=workspace, first_name=f"R{n}", email=f"{prefix}{n}@example.net"
        )
        subscribe(contact, to)
        people.append(contact)
    return people


def draft(workspace, user, to: MailingList | None = None, **values) -> Campaign:
    given = {
        "name": "December news",
        "subject": "News for {{ contact.first_name | default: 'you' }}",
        "format": "html",
        "body": BODY,
        **values,
    }
    if to is not None:
        given.setdefault("audience", {"include": {"lists": [to.pk]}})
    return campaigns.create_campaign(workspace, user=user, values=given)


def won_deal(workspace, contacts, amount, closed_at, currency="USD", won=True):
    """A deal of ``contacts`` in a pipeline of its own, won at ``closed_at`` (or open)."""
    from decimal import Decimal

    from patron.crm.models import Deal, Stage, StageOutcome
    from tests.factories import make_pipeline

    pipeline = make_pipeline(
        workspace, name=f"Sales {Deal.objects.for_workspace(workspace).count()}"
    )
    stage = (
        Stage.objects.for_workspace(workspace)
        .filter(pipeline=pipeline, outcome=StageOutcome.WON if won else StageOutcome.OPEN)
        .first()
    )
    deal = Deal.objects.create(
        workspace=workspace,
        pipeline=pipeline,
        stage=stage,
        name=f"Deal {amount}",
        amount=Decimal(amount),
        currency=currency,
        closed_at=closed_at if won else None,
    )
    deal.contacts.set(contacts)
    return deal
