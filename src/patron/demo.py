"""The demo workspace: a small, believable business to click through.

``seed_demo_workspace`` is idempotent: it returns the owner's existing demo
workspace when there is one. Data is generated with a fixed seed so every
installation shows the same people. Later capabilities add their own demo
data here (deals, campaigns, workflows).
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone
from faker import Faker

from patron.activity.services import NewEvent, record_many
from patron.core.models import Membership, User, Workspace
from patron.core.roles import Role
from patron.core.services import create_workspace
from patron.crm import services as crm_services
from patron.crm.models import Company, Contact, LifecycleStage, Tag
from patron.crm.services import (
    add_note,
    add_tags,
    complete_task,
    create_deal,
    create_task,
    default_pipeline,
    move_deal,
)

DEMO_NAME = "Northwind Trading (demo)"
COMPANIES = 40
CONTACTS = 250
INDUSTRIES = [
    "Software",
    "Retail",
    "Manufacturing",
    "Hospitality",
    "Education",
    "Healthcare",
    "Logistics",
    "Finance",
    "Media",
    "Construction",
]
PAGES = ["/", "/pricing", "/features", "/blog/email-deliverability", "/contact", "/ebook/crm-guide"]
STAGE_WEIGHTS = {
    LifecycleStage.SUBSCRIBER: 35,
    LifecycleStage.LEAD: 30,
    LifecycleStage.MQL: 12,
    LifecycleStage.SQL: 8,
    LifecycleStage.OPPORTUNITY: 6,
    LifecycleStage.CUSTOMER: 9,
}


def find_demo_workspace(owner: User) -> Workspace | None:
    membership = (
        Membership.objects.unscoped()
        .filter(user=owner, workspace__is_demo=True)
        .select_related("workspace")
        .first()
    )
    return membership.workspace if membership else None


def _demo_member(workspace: Workspace, email: str, name: str, role: str) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        # No password: these colleagues exist to own records, not to log in.
        user = User.objects.create(email=email, name=name, password=make_password(None))
    Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
    return user


@transaction.atomic
def seed_demo_workspace(*, owner: User) -> Workspace:
    existing = find_demo_workspace(owner)
    if existing is not None:
        return existing
    fake = Faker()
    fake.seed_instance(20261125)
    rng = random.Random(20261125)  # noqa: S311 - demo data, not security
    now = timezone.now()

    workspace = create_workspace(name=DEMO_NAME, owner=owner, is_demo=True)
    sales = _demo_member(workspace, f"sales+{workspace.slug}@example.com", "Sam Seller", Role.SALES)
    marketing = _demo_member(
        workspace, f"marketing+{workspace.slug}@example.com", "Mia Marketer", Role.MARKETING
    )
    owners = [owner, sales, sales, None]
    _seed_custom_fields(workspace)

    companies = []
    for _ in range(COMPANIES):
        name = fake.unique.company()
        domain = name.lower().replace(",", "").replace(" ", "").replace("-", "")[:30] + ".example"
        companies.append(
            Company(
                workspace=workspace,
                name=name,
                domain=domain,
                industry=rng.choice(INDUSTRIES),
                size=rng.choice([5, 12, 30, 80, 150, 400, 1200]),
                annual_revenue=rng.choice([None, 250_000, 1_200_000, 8_500_000, 40_000_000]),
                city=fake.city(),
                country=fake.country(),
                owner=rng.choice(owners),
                custom={"plan": rng.choice(["Free", "Starter", "Pro", "Enterprise"])},
                created_at=now - timedelta(days=rng.randint(30, 400)),
            )
        )
    Company.objects.bulk_create(companies)
    companies = list(Company.objects.for_workspace(workspace).order_by("pk"))

    stages = list(STAGE_WEIGHTS)
    weights = list(STAGE_WEIGHTS.values())
    contacts = []
    emails: set[str] = set()
    for _ in range(CONTACTS):
        first, last = fake.first_name(), fake.last_name()
        company = rng.choice(companies) if rng.random() < 0.8 else None
        domain = company.domain if company else fake.free_email_domain()
        email = f"{first}.{last}@{domain}".lower().replace(" ", "").replace("'", "")
        if email in emails:
            email = f"{first}.{last}{rng.randint(2, 999)}@{domain}".lower().replace(" ", "")
        emails.add(email)
        created = now - timedelta(days=rng.randint(0, 365), minutes=rng.randint(0, 1440))
        contacts.append(
            Contact(
                workspace=workspace,
                first_name=first,
                last_name=last,
                email=email,
                phone=fake.phone_number()[:50],
                job_title=fake.job()[:150],
                company=company,
                lifecycle_stage=rng.choices(stages, weights)[0],
                owner=rng.choice(owners),
                source=rng.choice(["website", "import", "event", "referral", "ads"]),
                score=rng.randint(0, 120),
                city=fake.city(),
                country=fake.country(),
                time_zone=rng.choice(["Europe/Berlin", "America/New_York", "Asia/Jakarta", ""]),
                birthday=fake.date_of_birth(minimum_age=20, maximum_age=70)
                if rng.random() < 0.5
                else None,
                custom=_demo_custom_values(rng, now),
                created_at=created,
                updated_at=created,
            )
        )
    Contact.objects.bulk_create(contacts)

    def events():  # type: ignore[no-untyped-def]
        for contact in Contact.objects.for_workspace(workspace).only("pk", "created_at"):
            yield NewEvent(
                workspace_id=workspace.pk,
                kind="contact.created",
                contact_id=contact.pk,
                occurred_at=contact.created_at,
                source_type="crm.contact",
                source_id=str(contact.pk),
            )
            age = max((now - contact.created_at).days, 1)
            for _ in range(rng.randint(0, 6)):
                # Activity happens after the contact appeared, within the last 90 days.
                when = now - timedelta(
                    days=rng.randint(0, min(age, 90)), minutes=rng.randint(0, 1440)
                )
                when = max(when, contact.created_at)
                kind = rng.choice(
                    [
                        "page.viewed",
                        "page.viewed",
                        "email.opened",
                        "form.submitted",
                    ]
                )
                properties = {
                    "page.viewed": lambda: {"url": rng.choice(PAGES), "title": "Northwind"},
                    "email.opened": lambda: {"subject": "Northwind monthly news"},
                    "form.submitted": lambda: {"form": "Download the CRM guide"},
                }[kind]()
                yield NewEvent(
                    workspace_id=workspace.pk,
                    kind=kind,
                    contact_id=contact.pk,
                    occurred_at=when,
                    properties=properties,
                )

    record_many(events())
    _seed_tags_and_notes(workspace, rng, author=sales)
    _seed_deals(workspace, rng, owners=[owner, sales], now=now)
    _seed_tasks(workspace, rng, owner=owner, now=now)
    _seed_views_rules_and_duplicates(workspace, owner=owner, team=[owner, sales])
    _seed_calls_and_meetings(workspace, rng, owners=[owner, sales], now=now)
    _seed_tickets(workspace, rng, agents=[owner, sales], now=now)
    _seed_quotes(workspace, owner=owner, now=now)
    _seed_lists(workspace, actor=marketing)
    _seed_segments(workspace, author=marketing)
    _seed_suppressions(workspace, rng, actor=marketing)
    _seed_senders(workspace, actor=marketing)
    _seed_templates(workspace, author=marketing)
    _seed_campaigns(workspace, author=marketing)
    return workspace


def _seed_templates(workspace: Workspace, *, author: User) -> None:
    """Templates from the starters; the newsletter has a block for Gold customers only."""
    from patron.audience.models import Segment
    from patron.mail import blocks, templates_service

    newsletter = templates_service.create_from_starter(workspace, user=author, key="newsletter")
    gold = Segment.objects.for_workspace(workspace).get(name="Engaged Gold customers")
    design = newsletter.blocks
    thanks = blocks.new_block("text")
    thanks.update(
        text="<p><strong>For our Gold customers:</strong> early access to the spring range "
        "starts today. Thank you for being with us.</p>",
        background="#fef9c3",
        segment=gold.pk,
    )
    design["blocks"].insert(3, thanks)
    templates_service.update_template(newsletter, user=author, values={"blocks": design})
    for key in ("birthday", "product-announcement", "welcome", "follow-up", "support-reply"):
        templates_service.create_from_starter(workspace, user=author, key=key)


def _seed_lists(workspace: Workspace, *, actor: User) -> None:
    """Three lists, subscribers in every status, each with its consent history."""
    from patron.audience import lists
    from patron.audience.models import ConsentSource

    ids = list(Contact.objects.for_workspace(workspace).order_by("pk").values_list("pk", flat=True))
    newsletter = lists.create_list(
        workspace=workspace,
        name="Monthly newsletter",
        public_name="Northwind monthly",
        description="News, guides and offers, once a month.",
        actor=actor,
    )
    lists.subscribe_contacts(
        mailing_list=newsletter,
        contacts=ids[:120],
        consent=lists.Consent(
            source=ConsentSource.IMPORT,
            consent_text="Signed up on the website (newsletter box in the footer)",
            actor=actor,
        ),
    )
    manual = lists.Consent(source=ConsentSource.MANUAL, actor=actor)
    lists.unsubscribe_contacts(mailing_list=newsletter, contacts=ids[:10], consent=manual)
    lists.clean_contacts(
        mailing_list=newsletter,
        contacts=ids[10:14],
        consent=lists.Consent(source=ConsentSource.BOUNCE, details={"reason": "mailbox unknown"}),
    )
    updates = lists.create_list(
        workspace=workspace,
        name="Product updates",
        public_name="Northwind product updates",
        description="What is new in the product, when it ships.",
        double_opt_in=True,
        actor=actor,
    )
    lists.subscribe_contacts(
        mailing_list=updates,
        contacts=ids[100:130],
        consent=lists.Consent(
            source=ConsentSource.API,
            consent_text="Confirmed by email in the previous newsletter tool",
        ),
        confirmed=True,
    )
    form = lists.Consent(
        source=ConsentSource.FORM,
        consent_text="Yes, tell me about new features",
        ip_address="198.51.100.23",
        user_agent="Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Firefox/128.0",
    )
    lists.subscribe_contacts(mailing_list=updates, contacts=ids[130:138], consent=form)
    for contact_id in ids[130:133]:  # three of them confirmed by the link
        lists.confirm_subscription(
            token=lists.confirmation_token((workspace.pk, updates.pk, contact_id)),
            ip_address="198.51.100.23",
            user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_5) Mobile Safari",
        )
    events = lists.create_list(
        workspace=workspace,
        name="Event invitations",
        description="Webinars and meet-ups near you.",
        actor=actor,
    )
    lists.subscribe_contacts(mailing_list=events, contacts=ids[200:240], consent=manual)


def _seed_suppressions(workspace: Workspace, rng: random.Random, *, actor: User) -> None:
    """A few addresses that bounced, complained or left, and two added by hand."""
    from patron.audience import suppression

    emails = list(
        Contact.objects.for_workspace(workspace).order_by("pk").values_list("email", flat=True)
    )
    bounced, complained, left = rng.sample(emails, 3)
    for email, reason, note in [
        (bounced, "hard_bounce", "Mailbox does not exist (550 5.1.1)"),
        (complained, "complaint", "Marked the March newsletter as spam"),
        (left, "unsubscribed", "Unsubscribed from everything"),
        ("former.customer@example.org", "manual", "Asked by phone not to be emailed"),
        ("postmaster@northwind.example", "role", ""),
    ]:
        suppression.suppress_address(
            workspace=workspace, email=email, reason=reason, note=note, actor=actor
        )


def _seed_senders(workspace: Workspace, *, actor: User) -> None:
    """A verified sender address (the default) and one still waiting for its link."""
    from patron.mail import senders

    postal = f"{workspace.name}\nAvenida da Liberdade 110\n1250-146 Lisboa\nPortugal"
    news = senders.create_sender(
        workspace=workspace,
        from_name=workspace.name,
        from_email=f"news+{workspace.slug}@example.com",
        reply_to=f"hello+{workspace.slug}@example.com",
        postal_address=postal,
        actor=actor,
    )
    senders.verify_sender(token=senders.verification_token(news))
    senders.create_sender(
        workspace=workspace,
        from_name=f"{workspace.name} Events",
        from_email=f"events+{workspace.slug}@example.com",
        postal_address=postal,
        actor=actor,
    )


def _seed_campaigns(workspace: Workspace, *, author: User) -> None:
    """A newsletter sent to the monthly list (the worker sends it into the Outbox), and a
    draft for the pricing visitors that still lacks its subject."""
    from patron.audience.models import MailingList, Segment
    from patron.mail import campaigns

    newsletter = MailingList.objects.for_workspace(workspace).get(name="Monthly newsletter")
    sent = campaigns.create_campaign(
        workspace,
        user=author,
        values={
            **campaigns.starting_content(workspace, "newsletter"),
            "name": "Monthly newsletter: December",
            "subject": "{{ contact.first_name | default: 'Hello' }}, your December at Northwind",
            "preheader": "Three guides, one webinar and the year in numbers.",
            "audience": {"include": {"lists": [newsletter.pk]}},
        },
    )
    campaigns.schedule_campaign(sent, user=author)
    pricing = Segment.objects.for_workspace(workspace).get(
        name="Pricing visitors without an open deal"
    )
    campaigns.create_campaign(
        workspace,
        user=author,
        values={
            **campaigns.starting_content(workspace, "blank-code"),
            "name": "Pricing follow-up",
            "subject": "",
            "audience": {"include": {"segments": [pricing.pk]}},
        },
    )


INTERESTS = ["ebook-crm-guide", "webinar-2026", "newsletter", "vip", "pricing-page", "trial"]
NOTES = [
    "Called about the renewal; wants a quote for 20 more seats by Friday.",
    "Met at the trade fair. Interested in the email automation, not the CRM yet.",
    "Prefers WhatsApp over email. Decision maker is the finance director.",
    "Asked for a case study from the hospitality sector.",
]


def _seed_custom_fields(workspace: Workspace) -> None:
    define = crm_services.create_custom_field
    define(
        workspace=workspace,
        object_type="contact",
        label="Customer tier",
        field_type="single_select",
        options=["Bronze", "Silver", "Gold"],
    )
    define(workspace=workspace, object_type="contact", label="Renewal date", field_type="date")
    define(
        workspace=workspace,
        object_type="contact",
        label="Interests",
        field_type="multi_select",
        options=["Newsletter", "Webinars", "Product updates"],
    )
    define(
        workspace=workspace,
        object_type="company",
        label="Plan",
        field_type="single_select",
        options=["Free", "Starter", "Pro", "Enterprise"],
    )
    define(workspace=workspace, object_type="deal", label="Signed contract", field_type="boolean")


def _demo_custom_values(rng: random.Random, now) -> dict:  # type: ignore[no-untyped-def]
    values: dict = {}
    if rng.random() < 0.7:
        values["customer_tier"] = rng.choice(["Bronze", "Silver", "Gold"])
    if rng.random() < 0.4:
        values["renewal_date"] = (now + timedelta(days=rng.randint(-30, 365))).date().isoformat()
    interests = [i for i in ["Newsletter", "Webinars", "Product updates"] if rng.random() < 0.4]
    if interests:
        values["interests"] = interests
    return values


def _seed_tags_and_notes(workspace: Workspace, rng: random.Random, *, author: User) -> None:
    contacts = list(Contact.objects.for_workspace(workspace).order_by("pk"))
    for contact in contacts[::3]:
        add_tags(record_=contact, names=rng.sample(INTERESTS, rng.randint(1, 2)))
    for contact in contacts[:20]:
        add_note(workspace=workspace, author=author, body=rng.choice(NOTES), contact=contact)


def _seed_segments(workspace: Workspace, *, author: User) -> None:
    """Segments of every kind of condition, evaluated so their counts show."""
    from patron.audience import segment_services

    pricing = Tag.objects.for_workspace(workspace).get(name="pricing-page")
    definitions = {
        "Engaged Gold customers": {
            "match": "all",
            "conditions": [
                {"type": "field", "field": "custom.customer_tier", "op": "in", "value": ["Gold"]},
                {
                    "type": "event",
                    "kind": "email.opened",
                    "count": {"op": "at_least", "value": 1},
                    "window": {"type": "last_days", "days": 30},
                },
            ],
        },
        "Pricing visitors without an open deal": {
            "match": "all",
            "conditions": [
                {
                    "match": "any",
                    "conditions": [
                        {"type": "tag", "op": "has", "tag": pricing.pk},
                        {
                            "type": "event",
                            "kind": "page.viewed",
                            "filters": [{"property": "url", "op": "contains", "value": "/pricing"}],
                            "count": {"op": "at_least", "value": 2},
                            "window": {"type": "last_days", "days": 90},
                        },
                    ],
                },
                {"type": "deal", "op": "has_no_open", "pipeline": None},
            ],
        },
        "Birthdays this week": {
            "match": "all",
            "conditions": [
                {"type": "field", "field": "birthday", "op": "anniversary_in_days", "value": 7}
            ],
        },
        "Leads nobody owns": {
            "match": "all",
            "conditions": [
                {"type": "field", "field": "lifecycle_stage", "op": "in", "value": ["lead", "mql"]},
                {"type": "field", "field": "owner", "op": "empty"},
            ],
        },
    }
    for name, definition in definitions.items():
        segment = segment_services.create_segment(
            workspace=workspace, name=name, definition=definition, actor=author
        )
        segment_services.refresh_segment(segment)


TASKS = [
    "Call back about the quote",
    "Send the onboarding guide",
    "Prepare the demo",
    "Follow up after the webinar",
    "Check in after the first month",
]


def _seed_quotes(workspace: Workspace, *, owner: User, now) -> None:  # type: ignore[no-untyped-def]
    """A quote in each state on the deals that have a contact with an email."""
    from patron.crm import quotes
    from patron.crm.models import Deal, Quote

    deals = [
        deal
        for deal in Deal.objects.for_workspace(workspace).order_by("pk")[:20]
        if deal.contacts.exclude(email="").exists()
    ][:5]
    lines = [
        {
            "description": "Annual licence, 10 seats",
            "quantity": 10,
            "unit_price": "240",
            "tax_percent": 19,
        },
        {
            "description": "Onboarding workshop",
            "quantity": 1,
            "unit_price": "900",
            "discount_percent": 20,
        },
    ]
    for index, deal in enumerate(deals):
        quote = quotes.create_quote(
            deal=deal,
            title=f"Offer for {deal.name}",
            valid_until=(now + timedelta(days=30)).date(),
            lines=lines,
            actor=owner,
        )
        if index == 0:
            continue  # stays a draft
        quotes.send_quote(quote=quote, actor=owner)
        if index == 2:
            quotes.answer_quote(quote=quote, accept=True, name=str(quote.contact))
        elif index == 3:
            quotes.answer_quote(quote=quote, accept=False, name="", reason="Budget moved to Q3")
        elif index == 4:
            # Sent last quarter and never answered: the hourly job marks it expired.
            Quote.objects.for_workspace(workspace).filter(pk=quote.pk).update(
                sent_at=now - timedelta(days=75), valid_until=(now - timedelta(days=45)).date()
            )
    quotes.expire_quotes()


def _seed_tickets(workspace: Workspace, rng: random.Random, *, agents: list[User], now) -> None:  # type: ignore[no-untyped-def]
    """Tickets in every status and priority, some answered, some past their target."""
    from django.db.models import F

    from patron.crm import tickets
    from patron.crm.models import Ticket

    subjects = [
        "Invoice shows the wrong VAT number",
        "Cannot reset my password",
        "Delivery arrived damaged",
        "How do I add a second user?",
        "Export to CSV times out",
        "Discount code not accepted",
        "Please change our billing address",
        "Order stuck in processing",
    ]
    customers = list(
        Contact.objects.for_workspace(workspace)
        .filter(lifecycle_stage=LifecycleStage.CUSTOMER)
        .order_by("pk")[:16]
    )
    company = Company.objects.for_workspace(workspace).order_by("pk").first()
    # Priorities cycle by four and statuses by five, so the pairs vary; the last
    # ticket is for a company as a whole, with no contact named.
    for index, contact in enumerate([*customers, None]):
        priority = ["low", "normal", "high", "urgent"][index % 4]
        ticket = tickets.open_ticket(
            workspace=workspace,
            subject=subjects[index % len(subjects)],
            contact=contact,
            company=company if contact is None else None,
            priority=priority,
            channel=rng.choice(["email", "phone", "web", "manual"]),
            assignee=rng.choice([*agents, None]),
        )
        # Spread their age over the last ten days (due times follow the same shift).
        age = timedelta(hours=rng.randint(1, 240))
        shifted = [
            "created_at",
            "updated_at",
            "first_response_due_at",
            "first_response_warn_at",
            "resolution_due_at",
            "resolution_warn_at",
        ]
        Ticket.objects.for_workspace(workspace).filter(pk=ticket.pk).update(
            **{name: F(name) - age for name in shifted}
        )
        ticket.refresh_from_db()
        status = ["new", "open", "pending", "solved", "closed"][index % 5]
        if index % 3 == 0:
            tickets.reply_to_ticket(
                ticket=ticket,
                author=agents[-1],
                body="Customer since 2019, handle with care.",
                internal=True,
            )
        if status != "new":
            tickets.reply_to_ticket(
                ticket=ticket, author=agents[0], body="Thanks, we are looking into it."
            )
        if status in {"pending", "solved", "closed"}:
            tickets.update_ticket(ticket=ticket, status=status, actor=agents[0])


CALL_NOTES = [
    "Talked through the renewal; wants a quote for 20 more seats by Friday.",
    "Asked about the API and single sign-on. Sending the docs.",
    "Budget is approved for next quarter. Follow up in two weeks.",
    "",
    "",
]
MEETING_TOPICS = [
    "Discovery call",
    "Product demo",
    "Pricing review",
    "Onboarding",
    "Quarterly check-in",
]


def _seed_calls_and_meetings(
    workspace: Workspace, rng: random.Random, *, owners: list[User], now
) -> None:  # type: ignore[no-untyped-def]
    """Calls in the past weeks; meetings done (with outcomes) and coming this week and next,
    in working hours of the workspace's time zone, so the calendar has something real."""
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    from patron.crm import meetings
    from patron.crm.models import Deal

    people = list(
        Contact.objects.for_workspace(workspace)
        .exclude(lifecycle_stage=LifecycleStage.SUBSCRIBER)
        .select_related("company")
        .order_by("pk")[:30]
    )
    deal_of: dict[int, Deal] = {}
    for deal in Deal.objects.for_workspace(workspace).prefetch_related("contacts"):
        for contact in deal.contacts.all():
            deal_of.setdefault(contact.pk, deal)
    outcomes = ["connected", "connected", "connected", "voicemail", "no_answer", "busy"]
    for contact in people[:18]:
        outcome = rng.choice(outcomes)
        when = now - timedelta(days=rng.randint(1, 20), hours=rng.randint(0, 8))
        meetings.log_call(
            workspace=workspace,
            contact=contact,
            outcome=outcome,
            direction=rng.choice(["outbound", "outbound", "inbound"]),
            occurred_at=max(when, contact.created_at + timedelta(minutes=5)),
            duration_minutes=rng.randint(3, 25) if outcome == "connected" else rng.randint(0, 1),
            notes=rng.choice(CALL_NOTES) if outcome == "connected" else "",
            deal=deal_of.get(contact.pk),
            logged_by=rng.choice(owners),
        )
    zone = ZoneInfo(workspace.time_zone or "UTC")
    today = now.astimezone(zone).date()
    past_outcomes = ["completed", "completed", "completed", "no_show", "rescheduled", "cancelled"]
    for index, contact in enumerate(people[8:30]):
        # From ten days ago to the end of next week, on weekdays, in working hours.
        day = today + timedelta(days=index - 10)
        if day.weekday() >= 5:
            day -= timedelta(days=day.weekday() - 4)
        starts_at = datetime.combine(day, time(rng.choice([9, 10, 11, 14, 15, 16])), zone)
        attendees = [contact]
        colleague = next(
            (p for p in people if p.company_id and p.company_id == contact.company_id), None
        )
        if colleague is not None and colleague != contact:
            attendees.append(colleague)
        meeting = meetings.schedule_meeting(
            workspace=workspace,
            title=f"{rng.choice(MEETING_TOPICS)}: {contact.company or contact}",
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=rng.choice([30, 45, 60])),
            contacts=attendees,
            organizer=rng.choice(owners),
            location=rng.choice(["Video call", "Their office", "Our office"]),
            description="Agenda: where they are today, what they need, next steps.",
            deal=deal_of.get(contact.pk),
        )
        if starts_at < now:
            meetings.record_meeting_outcome(meeting=meeting, outcome=rng.choice(past_outcomes))


def _seed_views_rules_and_duplicates(
    workspace: Workspace, *, owner: User, team: list[User]
) -> None:
    """A shared view, a round-robin rule for website leads, and one duplicate to merge."""
    from patron.crm.assignment import save_rule

    crm_services.save_view(
        workspace=workspace,
        owner=owner,
        name="Gold customers",
        query={"stage": "customer", "cf_customer_tier": "Gold", "sort": "-last_activity"},
        shared=True,
    )
    save_rule(
        workspace=workspace,
        object_type="contact",
        name="Website leads in turn",
        conditions=[{"field": "source", "value": "website"}],
        strategy="round_robin",
        team=team,
    )
    original = Contact.objects.for_workspace(workspace).exclude(phone="").order_by("pk").first()
    if original is not None:
        crm_services.create_contact(
            workspace=workspace,
            first_name=original.first_name,
            last_name=original.last_name,
            email=f"{original.first_name}.{original.last_name}@personal.example".lower().replace(
                " ", ""
            ),
            phone=original.phone,
            source="event",
        )


def _seed_tasks(workspace: Workspace, rng: random.Random, *, owner: User, now) -> None:  # type: ignore[no-untyped-def]
    """Tasks for the owner: some overdue, some today, some later, one done."""
    contacts = list(Contact.objects.for_workspace(workspace).order_by("pk")[:8])
    offsets = [-2, -1, 0, 0, 1, 3, 7, None]
    for contact, days in zip(contacts, offsets, strict=True):
        due = None if days is None else now + timedelta(days=days, hours=rng.randint(1, 5))
        task = create_task(
            workspace=workspace,
            title=rng.choice(TASKS),
            contact=contact,
            company=contact.company,
            assignee=owner,
            due_at=due,
        )
        if days == -2:
            complete_task(task=task)


DEAL_NAMES = [
    "annual licence",
    "pilot project",
    "renewal",
    "team upgrade",
    "onboarding package",
    "support contract",
    "expansion",
    "training days",
]


def _seed_deals(workspace: Workspace, rng: random.Random, *, owners: list[User], now) -> None:  # type: ignore[no-untyped-def]
    """Deals at every stage of the sales pipeline, moved there through the service."""
    pipeline = default_pipeline(workspace)
    stages = list(pipeline.stages.order_by("position"))
    customers = list(
        Contact.objects.for_workspace(workspace)
        .filter(company__isnull=False)
        .select_related("company")
        .order_by("pk")[:60]
    )
    for index, contact in enumerate(customers[:36]):
        company = contact.company
        assert company is not None
        target = stages[index % len(stages)]
        deal = create_deal(
            workspace=workspace,
            name=f"{company.name}: {rng.choice(DEAL_NAMES)}",
            pipeline=pipeline,
            amount=Decimal(rng.choice([1200, 4800, 9500, 18000, 42000, 75000])),
            expected_close_date=(now + timedelta(days=rng.randint(-30, 120))).date(),
            owner=rng.choice(owners),
            company=company,
            contacts=[contact],
            source=rng.choice(["website", "referral", "event", "outbound"]),
        )
        for stage in stages[1 : stages.index(target) + 1]:
            if stage.outcome == "lost" and target.outcome != "lost":
                continue
            if stage.outcome == "won" and target.outcome == "lost":
                continue
            reason = rng.choice(["Price", "Chose a competitor", "No budget this year"])
            move_deal(deal=deal, stage=stage, lost_reason=reason if stage.outcome == "lost" else "")
