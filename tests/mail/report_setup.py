"""A sent campaign with hand-made deliveries, hits and events, for the report tests.

Eight recipients, each with a story (times are after the start, 09:30 UTC):

========  =========  ======  ======================================================
who       status     bounce  hits
========  =========  ======  ======================================================
ann       sent               opens +1 h and +3 h; clicks link 0 twice at +3 h
bob       sent               a privacy proxy's open, a scanner's click on link 1
cy        sent               clicks link 1 at +50 h (no open: images blocked);
                             unsubscribed through the campaign
dee       sent       soft    (bounced after it was accepted)
eve       failed     hard    (refused at sending time)
fay       sent               none; marked the message as spam
gus       sent               one open at +2 h, not yet processed
hal       cancelled          (never sent)
========  =========  ======  ======================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from patron.activity.services import record
from patron.core.models import User, Workspace
from patron.crm.models import Contact
from patron.mail import campaigns
from patron.mail.models import Campaign, CampaignStatus, Delivery
from patron.tracking.models import Hit, MachineReason, TrackedLink
from tests.factories import ContactFactory

STARTED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
NOW = STARTED + timedelta(days=4)
LINKS = [
    "https://lumiar.example/books",
    "https://lumiar.example/events",
    "https://lumiar.example/about",
]
NAMES = ["ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal"]


@dataclass
class Story:
    campaign: Campaign
    contacts: dict[str, Contact]
    deliveries: dict[str, Delivery]
    hits: list[Hit] = field(default_factory=list)

    def ids(self, *names: str) -> set[int]:
        return {self.contacts[name].pk for name in names}


def sent_campaign(
    workspace: Workspace, user: User | None, *, name: str = "Spring news", started=STARTED
) -> Campaign:
    campaign = campaigns.create_campaign(
        workspace, user=user, values={"name": name, "subject": "Spring books"}
    )
    Campaign.objects.for_workspace(workspace).filter(pk=campaign.pk).update(
        status=CampaignStatus.SENT,
        started_at=started,
        finished_at=started + timedelta(minutes=5),
        total=len(NAMES),
        sent=6,
        failed=1,
    )
    campaign.refresh_from_db()
    return campaign


def hit(story: Story, who: str, kind: str, after: timedelta, **values) -> Hit:
    delivery = story.deliveries[who]
    values.setdefault("processed_at", story.campaign.started_at + after + timedelta(seconds=30))
    made = Hit.objects.create(
        workspace_id=story.campaign.workspace_id,
        kind=kind,
        campaign_id=story.campaign.pk,
        delivery_id=delivery.pk,
        contact_id=delivery.contact_id,
        occurred_at=story.campaign.started_at + after,
        **values,
    )
    story.hits.append(made)
    return made


def make_story(
    workspace: Workspace,
    user: User | None = None,
    *,
    name: str = "Spring news",
    contacts: dict[str, Contact] | None = None,
) -> Story:
    """The campaign and its recipients' stories; ``contacts``: the same people again
    (another campaign to them)."""
    campaign = sent_campaign(workspace, user, name=name)
    contacts = contacts or {
        who: ContactFactory(
            workspace=workspace, first_name=who.title(), email=f"{who}@lumiar.example"
        )
        for who in NAMES
    }
    sent_at = STARTED + timedelta(minutes=1)
    plan = {
        "ann": {"status": "sent"},
        "bob": {"status": "sent"},
        "cy": {"status": "sent", "unsubscribed_at": STARTED + timedelta(hours=51)},
        "dee": {"status": "sent", "bounce": "soft", "bounced_at": STARTED + timedelta(hours=1)},
        "eve": {"status": "failed", "bounce": "hard", "smtp_code": 550, "sent_at": None},
        "fay": {"status": "sent", "complained_at": STARTED + timedelta(hours=5)},
        "gus": {"status": "sent"},
        "hal": {"status": "cancelled", "sent_at": None},
    }
    deliveries = {}
    for who in NAMES:
        values = {"sent_at": sent_at, **plan[who]}
        deliveries[who] = Delivery.objects.create(
            workspace=workspace,
            campaign=campaign,
            contact_id=contacts[who].pk,
            email=contacts[who].email,
            **values,
        )
    for index, url in enumerate(LINKS):
        TrackedLink.objects.create(
            workspace=workspace, campaign_id=campaign.pk, index=index, url=url
        )
    story = Story(campaign=campaign, contacts=contacts, deliveries=deliveries)
    hours = timedelta(hours=1)
    hit(story, "ann", "open", 1 * hours)
    hit(story, "ann", "open", 3 * hours)
    hit(story, "ann", "click", 3 * hours, link=0)
    hit(story, "ann", "click", 3 * hours + timedelta(minutes=2), link=0)
    hit(story, "bob", "open", timedelta(seconds=40), machine=MachineReason.PRIVACY_PROXY)
    hit(story, "bob", "click", timedelta(seconds=45), link=1, machine=MachineReason.SCANNER_AGENT)
    hit(story, "cy", "click", 50 * hours, link=1)
    hit(story, "gus", "open", 2 * hours, processed_at=None)
    return story


def record_events(story: Story) -> None:
    """The activity log as sending, tracking, bounce and unsubscribe processing write it:
    ``email.sent`` for accepted messages, opens and clicks of people (processed hits),
    bounces, and the unsubscribe (recorded with ``campaign_id``)."""
    campaign = story.campaign
    workspace = campaign.workspace_id
    about = {"campaign": campaign.pk}
    for delivery in story.deliveries.values():
        if delivery.status == "sent":
            record(
                workspace=workspace,
                kind="email.sent",
                contact_id=delivery.contact_id,
                properties={**about, "subject": campaign.subject},
                occurred_at=delivery.sent_at,
            )
        if delivery.bounce:
            record(
                workspace=workspace,
                kind="email.bounced",
                contact_id=delivery.contact_id,
                properties=about,
            )
        if delivery.unsubscribed_at:
            record(
                workspace=workspace,
                kind="email.unsubscribed",
                contact_id=delivery.contact_id,
                properties={"campaign": campaign.pk},
            )
    for made in story.hits:
        if made.machine or made.processed_at is None:
            continue
        record(
            workspace=workspace,
            kind="email.opened" if made.kind == "open" else "email.clicked",
            contact_id=made.contact_id,
            properties={**about, "delivery": made.delivery_id, "link": made.link},
            occurred_at=made.occurred_at,
        )
