"""Workflow templates: ready programs installed in one click, then edited like any workflow.

Installing a template creates its email templates (real copy, Liquid merge
fields, an unsubscribe link and the postal address), whatever it needs that is
missing (a list, a segment, a custom field) and the workflow as a **draft**:
nothing runs until it is reviewed and published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from patron.automation import workflows
from patron.automation.models import Workflow
from patron.core.models import User, Workspace
from patron.mail.models import EmailTemplate

FOOTER = (
    '<p style="font-size:12px;color:#6c757d">{{ postal_address }} · '
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)


def _html(*paragraphs: str) -> str:
    body = "".join(f"<p>{text}</p>" for text in paragraphs)
    return f"<html><body>{body}{FOOTER}</body></html>"


@dataclass(frozen=True)
class Email:
    name: str
    subject: str
    preheader: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class WorkflowTemplate:
    key: str
    name: Promise
    description: Promise
    emails: tuple[Email, ...]
    build: Callable[[Workspace, dict[str, int]], dict[str, Any]]


def _email_templates(
    workspace: Workspace, emails: tuple[Email, ...], actor: User | None
) -> dict[str, int]:
    ids = {}
    for email in emails:
        existing = EmailTemplate.objects.for_workspace(workspace).filter(name=email.name).first()
        if existing is None:
            existing = EmailTemplate.objects.create(
                workspace=workspace,
                name=email.name,
                format="html",
                subject=email.subject,
                preheader=email.preheader,
                body=_html(*email.paragraphs),
                created_by=actor,
            )
        ids[email.name] = existing.pk
    return ids


def _first_list(workspace: Workspace) -> int:
    from patron.audience import lists
    from patron.audience.models import MailingList

    found = MailingList.objects.for_workspace(workspace).order_by("pk").first()
    if found is None:
        found = lists.create_list(workspace=workspace, name="Newsletter")
    return found.pk


def _settings(**values: Any) -> dict[str, Any]:
    return {"reenrol": "never", "reenrol_days": 0, "goal": None, "window": None, **values}


def _welcome(workspace: Workspace, emails: dict[str, int]) -> dict[str, Any]:
    return {
        "trigger": {"type": "list_joined", "list": _first_list(workspace)},
        "settings": _settings(),
        "steps": [
            {
                "id": "welcome",
                "type": "send_email",
                "template": emails["Welcome 1 · Thanks for joining"],
            },
            {"id": "wait1", "type": "wait", "days": 2},
            {"id": "best", "type": "send_email", "template": emails["Welcome 2 · Our best reads"]},
            {"id": "wait2", "type": "wait", "days": 4},
            {
                "id": "engaged",
                "type": "if",
                "condition": {"type": "opened_last_email"},
                "yes": [{"id": "tag_engaged", "type": "add_tag", "tag": "engaged subscriber"}],
                "no": [
                    {
                        "id": "nudge",
                        "type": "send_email",
                        "template": emails["Welcome 3 · What would you like?"],
                    }
                ],
            },
        ],
    }


def _ebook(workspace: Workspace, emails: dict[str, int]) -> dict[str, Any]:
    return {
        "trigger": {"type": "form_submitted", "form": None},
        "settings": _settings(
            goal={
                "match": "all",
                "conditions": [
                    {
                        "type": "field",
                        "field": "lifecycle_stage",
                        "op": "in",
                        "value": ["sql", "opportunity", "customer"],
                    }
                ],
            }
        ),
        "steps": [
            {"id": "deliver", "type": "send_email", "template": emails["E-book · Your copy"]},
            {"id": "wait1", "type": "wait", "days": 2},
            {
                "id": "read",
                "type": "if",
                "condition": {"type": "opened_last_email"},
                "yes": [{"id": "score_read", "type": "change_score", "points": 10}],
                "no": [],
            },
            {
                "id": "case",
                "type": "send_email",
                "template": emails["E-book · How Northwind did it"],
            },
            {"id": "wait2", "type": "wait", "days": 3},
            {
                "id": "clicked",
                "type": "if",
                "condition": {"type": "clicked_last_email"},
                "yes": [
                    {"id": "mql", "type": "set_lifecycle", "stage": "mql"},
                    {
                        "id": "handoff_task",
                        "type": "create_task",
                        "title": "Follow up on the e-book download",
                        "due_days": 1,
                        "assignee": "owner",
                    },
                    {
                        "id": "handoff_note",
                        "type": "notify",
                        "user": "owner",
                        "text": "Hand-off: an e-book reader read the case study",
                    },
                ],
                "no": [{"id": "cold", "type": "add_tag", "tag": "nurture: cold"}],
            },
        ],
    }


def _webinar(workspace: Workspace, emails: dict[str, int]) -> dict[str, Any]:
    day = (timezone.now() + timedelta(days=14)).date()
    return {
        "trigger": {
            "type": "event",
            "kind": "custom.event",
            "filters": [{"property": "name", "op": "eq", "value": "webinar_registered"}],
        },
        "settings": _settings(),
        "steps": [
            {"id": "confirm", "type": "send_email", "template": emails["Webinar · You are in"]},
            {
                "id": "day_before",
                "type": "wait_until",
                "mode": "datetime",
                "at": f"{day - timedelta(days=1)}T10:00",
            },
            {"id": "remind", "type": "send_email", "template": emails["Webinar · Tomorrow"]},
            {"id": "after", "type": "wait_until", "mode": "datetime", "at": f"{day}T18:00"},
            {
                "id": "attended",
                "type": "if",
                "condition": {
                    "type": "event_since",
                    "kind": "custom.event",
                    "filters": [{"property": "name", "op": "eq", "value": "webinar_attended"}],
                },
                "yes": [
                    {
                        "id": "thanks",
                        "type": "send_email",
                        "template": emails["Webinar · Thank you for coming"],
                    },
                    {"id": "score", "type": "change_score", "points": 15},
                ],
                "no": [
                    {
                        "id": "missed",
                        "type": "send_email",
                        "template": emails["Webinar · Sorry we missed you"],
                    }
                ],
            },
        ],
    }


def _cart(workspace: Workspace, emails: dict[str, int]) -> dict[str, Any]:
    return {
        "trigger": {
            "type": "event",
            "kind": "custom.event",
            "filters": [{"property": "name", "op": "eq", "value": "cart_abandoned"}],
        },
        "settings": _settings(
            reenrol="after",
            reenrol_days=7,
            goal={
                "match": "all",
                "conditions": [
                    {
                        "type": "event",
                        "kind": "custom.event",
                        "filters": [{"property": "name", "op": "eq", "value": "order_placed"}],
                        "count": {"op": "at_least", "value": 1},
                        "window": {"type": "last_days", "days": 7},
                    }
                ],
            },
        ),
        "steps": [
            {"id": "wait1", "type": "wait", "hours": 1},
            {
                "id": "reminder",
                "type": "send_email",
                "template": emails["Cart · You left something behind"],
            },
            {"id": "wait2", "type": "wait", "days": 1},
            {
                "id": "opened",
                "type": "if",
                "condition": {"type": "opened_last_email"},
                "yes": [],
                "no": [
                    {
                        "id": "coupon",
                        "type": "send_email",
                        "template": emails["Cart · 10% to finish your order"],
                    }
                ],
            },
            {"id": "wait3", "type": "wait", "days": 2},
            {"id": "last", "type": "send_email", "template": emails["Cart · Last call"]},
        ],
    }


def _birthday(workspace: Workspace, emails: dict[str, int]) -> dict[str, Any]:
    from patron.crm.models import CustomField
    from patron.crm.services import create_custom_field

    if not CustomField.objects.for_workspace(workspace).filter(key="birthday_coupon").exists():
        create_custom_field(
            workspace=workspace, object_type="contact", label="Birthday coupon", field_type="text"
        )
    return {
        "trigger": {"type": "date", "field": "birthday", "hour": 9, "offset_days": 0},
        "settings": _settings(),
        "steps": [
            {"id": "gift", "type": "send_email", "template": emails["Birthday · A gift for you"]},
            {"id": "tag", "type": "add_tag", "tag": "birthday gift sent"},
        ],
    }


def _onboarding(workspace: Workspace, emails: dict[str, int]) -> dict[str, Any]:
    return {
        "trigger": {"type": "field_changed", "field": "lifecycle_stage", "to": "customer"},
        "settings": _settings(window={"days": [0, 1, 2, 3, 4], "start_hour": 9, "end_hour": 17}),
        "steps": [
            {
                "id": "hello",
                "type": "send_email",
                "template": emails["Onboarding 1 · Welcome aboard"],
            },
            {"id": "wait1", "type": "wait", "days": 2},
            {
                "id": "setup",
                "type": "send_email",
                "template": emails["Onboarding 2 · Set up in 10 minutes"],
            },
            {"id": "wait2", "type": "wait", "days": 3},
            {
                "id": "active",
                "type": "if",
                "condition": {"type": "clicked_last_email"},
                "yes": [{"id": "activated", "type": "add_tag", "tag": "activated"}],
                "no": [
                    {
                        "id": "call",
                        "type": "create_task",
                        "title": "Offer an onboarding call",
                        "due_days": 1,
                        "assignee": "owner",
                    }
                ],
            },
            {"id": "wait3", "type": "wait", "days": 7},
            {
                "id": "tips",
                "type": "send_email",
                "template": emails["Onboarding 3 · Three habits of happy customers"],
            },
        ],
    }


def _reengagement(workspace: Workspace, emails: dict[str, int]) -> dict[str, Any]:
    from patron.audience import segment_services
    from patron.audience.models import Segment

    definition = {
        "match": "all",
        "conditions": [
            {
                "type": "event",
                "kind": "email.opened",
                "count": {"op": "never", "value": 0},
                "window": {"type": "last_days", "days": 90},
            },
            {"type": "field", "field": "email", "op": "not_empty"},
        ],
    }
    segment = Segment.objects.for_workspace(workspace).filter(name="No opens in 90 days").first()
    if segment is None:
        segment = segment_services.create_segment(
            workspace=workspace, name="No opens in 90 days", definition=definition
        )
    return {
        "trigger": {"type": "segment_entered", "segment": segment.pk},
        "settings": _settings(reenrol="after", reenrol_days=180),
        "steps": [
            {"id": "miss", "type": "send_email", "template": emails["Re-engagement · We miss you"]},
            {
                "id": "wait1",
                "type": "wait_until",
                "mode": "event",
                "kind": "email.opened",
                "of_workflow": True,
                "timeout_days": 5,
                "timeout_hours": 0,
            },
            {
                "id": "back",
                "type": "if",
                "condition": {"type": "opened_last_email"},
                "yes": [
                    {"id": "reengaged", "type": "add_tag", "tag": "re-engaged"},
                    {"id": "done", "type": "exit"},
                ],
                "no": [],
            },
            {
                "id": "last",
                "type": "send_email",
                "template": emails["Re-engagement · Should we stop writing?"],
            },
            {"id": "wait2", "type": "wait", "days": 7},
            {
                "id": "still",
                "type": "if",
                "condition": {"type": "opened_last_email"},
                "yes": [{"id": "reengaged2", "type": "add_tag", "tag": "re-engaged"}],
                "no": [{"id": "sunset", "type": "add_tag", "tag": "sunset"}],
            },
        ],
    }


HELLO = 'Hi {{ contact.first_name | default: "there" }},'

TEMPLATES: dict[str, WorkflowTemplate] = {
    t.key: t
    for t in [
        WorkflowTemplate(
            key="welcome",
            name=_("Welcome series"),
            description=_(
                "Three emails over a week for new subscribers of your first list; engaged "
                "readers are tagged."
            ),
            emails=(
                Email(
                    "Welcome 1 · Thanks for joining",
                    'Welcome, {{ contact.first_name | default: "friend" }}!',
                    "Here is what to expect from us.",
                    (
                        HELLO,
                        (
                            "Thank you for subscribing. Every other Thursday we send one email: a "
                            "practical idea you can use the same day, a short story from a "
                            "customer and nothing else."
                        ),
                        "Reply to this email at any time: a person reads every answer.",
                    ),
                ),
                Email(
                    "Welcome 2 · Our best reads",
                    "Our five most-read guides",
                    "Start with the ones other readers liked best.",
                    (
                        HELLO,
                        (
                            "New readers often ask where to start. These are the guides our "
                            "subscribers opened most last year:"
                        ),
                        '<a href="https://example.com/guides">Browse the five guides</a>',
                        "Each takes less than ten minutes to read.",
                    ),
                ),
                Email(
                    "Welcome 3 · What would you like?",
                    "What should we write about?",
                    "One click tells us what you care about.",
                    (
                        HELLO,
                        (
                            "We noticed our last emails may not have been what you were looking "
                            "for. Tell us what you would like to read about and we will send more "
                            "of it:"
                        ),
                        '<a href="{{ preferences_url }}">Choose your topics</a>',
                    ),
                ),
            ),
            build=_welcome,
        ),
        WorkflowTemplate(
            key="ebook",
            name=_("E-book nurture with hand-off"),
            description=_(
                "Delivers the e-book after any form, follows up with a case study, scores "
                "readers and hands clickers to sales as MQLs."
            ),
            emails=(
                Email(
                    "E-book · Your copy",
                    "Your e-book is ready",
                    "Download it now — it is yours to keep.",
                    (
                        HELLO,
                        "Thanks for your interest. Here is your copy of the guide:",
                        '<a href="https://example.com/ebook.pdf">Download the e-book (PDF)</a>',
                        (
                            "Chapter 3, on measuring what matters, is the one readers tell us "
                            "they reread."
                        ),
                    ),
                ),
                Email(
                    "E-book · How Northwind did it",
                    "How Northwind cut onboarding time in half",
                    "A real team, the steps they took and their numbers.",
                    (
                        HELLO,
                        (
                            "Reading about a method is one thing; seeing it work is another. "
                            "Northwind's operations team applied the ideas in the e-book and "
                            "halved the time a new customer needs to get started."
                        ),
                        (
                            '<a href="https://example.com/case-studies/northwind">'
                            "Read the case study</a>"
                        ),
                    ),
                ),
            ),
            build=_ebook,
        ),
        WorkflowTemplate(
            key="webinar",
            name=_("Webinar invitation with reminders and follow-ups"),
            description=_(
                "On the custom event webinar_registered: confirmation, a reminder the day "
                "before, and a follow-up for attendees (webinar_attended) and for those who "
                "missed it. Set the webinar's date in the two waits."
            ),
            emails=(
                Email(
                    "Webinar · You are in",
                    "You are registered — save the date",
                    "Your link and the agenda inside.",
                    (
                        HELLO,
                        (
                            "You are registered for our live webinar. Add it to your calendar now "
                            "so it does not slip away."
                        ),
                        "Agenda: 20 minutes of practical examples, 20 minutes of your questions.",
                        '<a href="https://example.com/webinar/join">Your personal join link</a>',
                    ),
                ),
                Email(
                    "Webinar · Tomorrow",
                    "Tomorrow: see you at the webinar",
                    "Bring your questions.",
                    (
                        HELLO,
                        (
                            "A quick reminder: the webinar is tomorrow. If you send us your "
                            "question in advance by replying to this email, we will make sure to "
                            "answer it live."
                        ),
                        '<a href="https://example.com/webinar/join">Join link</a>',
                    ),
                ),
                Email(
                    "Webinar · Thank you for coming",
                    "Thanks for joining — slides and recording",
                    "Everything from today in one place.",
                    (
                        HELLO,
                        (
                            "Thank you for attending. As promised, here are the slides and the "
                            "recording:"
                        ),
                        '<a href="https://example.com/webinar/recording">Watch the recording</a>',
                        (
                            "If you would like to talk about your own situation, book 20 minutes "
                            "with our team."
                        ),
                    ),
                ),
                Email(
                    "Webinar · Sorry we missed you",
                    "We missed you — here is the recording",
                    "Watch it when it suits you.",
                    (
                        HELLO,
                        "Something came up? No problem. The full recording is online:",
                        '<a href="https://example.com/webinar/recording">Watch the recording</a>',
                    ),
                ),
            ),
            build=_webinar,
        ),
        WorkflowTemplate(
            key="abandoned_cart",
            name=_("Abandoned cart"),
            description=_(
                "On the custom event cart_abandoned: a reminder after an hour, a 10% code for "
                "those who did not open it, a last call; an order_placed event ends it."
            ),
            emails=(
                Email(
                    "Cart · You left something behind",
                    "You left something in your cart",
                    "It is still waiting for you.",
                    (
                        HELLO,
                        "You were almost done. Your cart is saved and waiting for you:",
                        '<a href="https://example.com/cart">Return to your cart</a>',
                        "Questions about sizes, delivery or returns? Just reply.",
                    ),
                ),
                Email(
                    "Cart · 10% to finish your order",
                    "10% off to finish your order",
                    "Use code COMEBACK10 at checkout.",
                    (
                        HELLO,
                        (
                            "To help you decide: use the code <strong>COMEBACK10</strong> at "
                            "checkout for 10% off your cart. It is valid for 48 hours."
                        ),
                        '<a href="https://example.com/cart">Complete your order</a>',
                    ),
                ),
                Email(
                    "Cart · Last call",
                    "Last call for your cart",
                    "We will clear it soon.",
                    (
                        HELLO,
                        (
                            "We keep carts for a few days only. If you still want these items, "
                            "now is the time:"
                        ),
                        '<a href="https://example.com/cart">Go to your cart</a>',
                    ),
                ),
            ),
            build=_cart,
        ),
        WorkflowTemplate(
            key="birthday",
            name=_("Yearly birthday"),
            description=_(
                "Every year at 09:00 on the contact's birthday (in their time zone): a "
                "birthday email with their coupon (the Birthday coupon field, else a default "
                "code)."
            ),
            emails=(
                Email(
                    "Birthday · A gift for you",
                    'Happy birthday, {{ contact.first_name | default: "friend" }}!',
                    "A small gift from all of us.",
                    (
                        HELLO,
                        (
                            "Happy birthday from everyone here! To celebrate, here is a gift: "
                            "use the code <strong>"
                            '{{ contact.birthday_coupon | default: "HAPPYBIRTHDAY15" }}'
                            "</strong> for 15% off anything in the next 30 days."
                        ),
                        '<a href="https://example.com/shop">Treat yourself</a>',
                    ),
                ),
            ),
            build=_birthday,
        ),
        WorkflowTemplate(
            key="onboarding",
            name=_("Customer onboarding"),
            description=_(
                "When a contact becomes a customer: welcome, a setup guide, an onboarding "
                "call offered to those who did not click, and tips after two weeks — sent on "
                "weekdays in office hours."
            ),
            emails=(
                Email(
                    "Onboarding 1 · Welcome aboard",
                    'Welcome aboard, {{ contact.first_name | default: "there" }}',
                    "Your first steps, in order.",
                    (
                        HELLO,
                        (
                            "Welcome! We are glad to have you. Over the next two weeks we will "
                            "send you three short emails, each with one thing to set up."
                        ),
                        (
                            'Your contact here is {{ owner.name | default: "our customer team" }}: '
                            "reply any time."
                        ),
                    ),
                ),
                Email(
                    "Onboarding 2 · Set up in 10 minutes",
                    "Set up your account in 10 minutes",
                    "The three settings that matter most.",
                    (
                        HELLO,
                        (
                            "Most customers get the most value after three settings: importing "
                            "their contacts, connecting their sending domain and creating a first "
                            "segment."
                        ),
                        (
                            '<a href="https://example.com/docs/getting-started">'
                            "Follow the 10-minute guide</a>"
                        ),
                    ),
                ),
                Email(
                    "Onboarding 3 · Three habits of happy customers",
                    "Three habits of our happiest customers",
                    "Small routines, big difference.",
                    (
                        HELLO,
                        (
                            "We asked our longest-standing customers what they do every week. "
                            "Three habits came up again and again: they review one report on "
                            "Mondays, they clean their lists monthly, and they write to new "
                            "contacts within a day."
                        ),
                        '<a href="https://example.com/blog/habits">Read the full article</a>',
                    ),
                ),
            ),
            build=_onboarding,
        ),
        WorkflowTemplate(
            key="reengagement",
            name=_("Re-engagement"),
            description=_(
                "Contacts entering the segment “No opens in 90 days” get a we-miss-you email "
                "and a last one; those who open are tagged re-engaged, the others sunset."
            ),
            emails=(
                Email(
                    "Re-engagement · We miss you",
                    "Are we still welcome in your inbox?",
                    "One click keeps you on the list.",
                    (
                        HELLO,
                        (
                            "It has been a while since you opened one of our emails. That is fine "
                            "— inboxes are busy. If you still want to hear from us, simply open "
                            "this one or click below:"
                        ),
                        '<a href="https://example.com/yes-keep-me">Yes, keep me on the list</a>',
                    ),
                ),
                Email(
                    "Re-engagement · Should we stop writing?",
                    "Should we stop writing?",
                    "We will stop unless you tell us otherwise.",
                    (
                        HELLO,
                        (
                            "We do not want to send email nobody reads. Unless you click below, "
                            "this is the last message we send you for now."
                        ),
                        '<a href="https://example.com/yes-keep-me">Keep me subscribed</a>',
                        (
                            'Prefer fewer emails? <a href="{{ preferences_url }}">'
                            "Choose what you get</a>."
                        ),
                    ),
                ),
            ),
            build=_reengagement,
        ),
    ]
}


@transaction.atomic
def install_template(*, workspace: Workspace, key: str, actor: User | None = None) -> Workflow:
    """Create the template's emails and its workflow as a draft; returns the workflow."""
    template = TEMPLATES.get(key)
    if template is None:
        raise workflows.WorkflowInvalid(str(_("Unknown workflow template.")))
    emails = _email_templates(workspace, template.emails, actor)
    graph = {"schema": 1, **template.build(workspace, emails)}
    name = str(template.name)
    taken = set(
        Workflow.objects.for_workspace(workspace)
        .filter(name__startswith=name)
        .values_list("name", flat=True)
    )
    number = 2
    unique = name
    while unique in taken:
        unique = f"{name} ({number})"
        number += 1
    return workflows.create_workflow(
        workspace=workspace,
        name=unique,
        description=str(template.description),
        graph=graph,
        actor=actor,
        template_key=key,
    )
