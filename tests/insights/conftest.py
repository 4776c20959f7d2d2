"""A small fixed data set whose every figure is worked out by hand in the tests.

The period is January to March 2026 (UTC). The workspace's currency is USD;
one deal is in EUR.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from patron.activity.models import Event
from patron.core.models import User, Workspace
from patron.crm.models import (
    Call,
    Contact,
    Deal,
    Meeting,
    Pipeline,
    Stage,
    Task,
    Ticket,
)
from patron.crm.services import create_pipeline
from patron.insights.periods import Period
from patron.insights.rollups import refresh_stage_entries
from tests.conftest import member
from tests.factories import ContactFactory


def at(month: int, day: int, hour: int = 12, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


Q1 = Period(start=date(2026, 1, 1), end=date(2026, 3, 31), zone=ZoneInfo("UTC"))


@dataclass
class Sales:
    workspace: Workspace
    alice: User
    bob: User
    pipeline: Pipeline
    stages: dict[str, Stage]
    deals: dict[str, Deal]
    contacts: dict[str, Contact]


def _deal(ws, pipeline, stage, name, amount, currency="USD", **values) -> Deal:
    return Deal.objects.create(
        workspace=ws,
        pipeline=pipeline,
        stage=stage,
        name=name,
        amount=Decimal(amount),
        currency=currency,
        **values,
    )


@pytest.fixture
def sales(workspace, owner) -> Sales:
    ws = workspace
    alice = owner
    bob = member(ws, "sales", "bob@acme.example")
    pipeline = create_pipeline(workspace=ws, name="Sales")
    stages = {s.name: s for s in Stage.objects.for_workspace(ws).filter(pipeline=pipeline)}
    deals = {
        "d1": _deal(
            ws, pipeline, stages["Qualified"], "d1", "1000",
            expected_close_date=date(2026, 2, 10), owner=alice, created_at=at(1, 5),
        ),
        "d2": _deal(
            ws, pipeline, stages["Proposal sent"], "d2", "2000",
            expected_close_date=date(2026, 2, 20), owner=bob, created_at=at(1, 10),
        ),
        "d3": _deal(
            ws, pipeline, stages["Negotiation"], "d3", "4000", owner=alice, created_at=at(2, 1)
        ),
        "d4": _deal(
            ws, pipeline, stages["Proposal sent"], "d4", "3000", "EUR",
            expected_close_date=date(2026, 3, 5), owner=bob, created_at=at(2, 2),
        ),
        "d5": _deal(
            ws, pipeline, stages["Won"], "d5", "5000", owner=alice,
            expected_close_date=date(2026, 1, 20), created_at=at(1, 1), closed_at=at(1, 21),
        ),
        "d6": _deal(
            ws, pipeline, stages["Lost"], "d6", "700", owner=bob, lost_reason="Price",
            created_at=at(1, 15), closed_at=at(2, 14),
        ),
        "d7": _deal(
            ws, pipeline, stages["Lost"], "d7", "300", owner=bob, lost_reason="Price",
            created_at=at(2, 1), closed_at=at(2, 11),
        ),
        "d8": _deal(
            ws, pipeline, stages["Won"], "d8", "1200", owner=bob,
            created_at=at(12, 1, year=2025), closed_at=at(3, 1),
        ),
    }  # fmt: skip
    contacts = {
        name: ContactFactory(workspace=ws, first_name=name, source=source, lifecycle_stage=stage)
        for name, source, stage in [
            ("c1", "web", "customer"),
            ("c2", "web", "mql"),
            ("c3", "web", "lead"),
            ("c4", "ads", "mql"),
            ("c5", "web", "subscriber"),
        ]
    }
    return Sales(ws, alice, bob, pipeline, stages, deals, contacts)


@pytest.fixture
def activities(sales: Sales) -> Sales:
    ws, alice, bob = sales.workspace, sales.alice, sales.bob
    c1 = sales.contacts["c1"]
    for outcome, when, who in [
        ("connected", at(1, 3), alice),
        ("no_answer", at(2, 3), alice),
        ("no_answer", at(2, 4), bob),
        ("connected", at(4, 4), alice),  # after the period
    ]:
        Call.objects.create(
            workspace=ws, contact=c1, outcome=outcome, occurred_at=when, logged_by=who
        )
    Meeting.objects.create(
        workspace=ws,
        title="Demo",
        starts_at=at(2, 5),
        ends_at=at(2, 5, 13),
        organizer=alice,
        outcome="completed",
    )
    Event.objects.create(
        workspace=ws, kind="email.sent", contact_id=c1.pk, actor=alice, occurred_at=at(1, 8)
    )
    Event.objects.create(workspace=ws, kind="email.sent", contact_id=c1.pk, occurred_at=at(1, 8))
    now = datetime.now(UTC)
    Task.objects.create(workspace=ws, title="done", assignee=alice, completed_at=at(3, 3))
    Task.objects.create(workspace=ws, title="late", assignee=alice, due_at=now - timedelta(days=1))
    Task.objects.create(workspace=ws, title="soon", assignee=alice, due_at=now + timedelta(days=1))
    Task.objects.create(workspace=ws, title="nobody's", due_at=now + timedelta(days=1))
    return sales


@pytest.fixture
def tickets(sales: Sales) -> Sales:
    ws, alice = sales.workspace, sales.alice

    def ticket(**values) -> Ticket:
        return Ticket.objects.create(workspace=ws, subject="Help", **values)

    ticket(
        priority="high",
        assignee=alice,
        status="solved",
        created_at=at(1, 10, 10),
        first_responded_at=at(1, 10, 12),
        first_response_seconds=7200,
        first_response_due_at=at(1, 10, 11),
        solved_at=at(1, 11, 10),
        resolution_seconds=86400,
        resolution_due_at=at(1, 12, 10),
    )
    ticket(
        priority="high",
        status="open",
        created_at=at(2, 1, 0),
        first_responded_at=at(2, 1, 1),
        first_response_seconds=3600,
        first_response_due_at=at(2, 1, 4),
        resolution_due_at=at(2, 2, 0),
    )
    ticket(
        priority="normal",
        assignee=alice,
        status="solved",
        created_at=at(3, 1, 0),
        first_responded_at=at(3, 1, 3),
        first_response_seconds=10800,
        solved_at=at(3, 2, 0),
        resolution_seconds=20000,
    )
    ticket(
        priority="normal",
        assignee=alice,
        status="solved",
        created_at=at(12, 20, year=2025),
        first_responded_at=at(12, 21, year=2025),
        first_response_seconds=1000,
        solved_at=at(1, 5),
        resolution_seconds=50000,
    )
    return sales


@pytest.fixture
def lifecycle(sales: Sales) -> Sales:
    ws, c = sales.workspace, sales.contacts
    for contact, stage, when in [
        ("c1", "lead", at(1, 1)),
        ("c1", "mql", at(1, 11)),
        ("c1", "customer", at(2, 10)),
        ("c2", "lead", at(1, 5)),
        ("c2", "mql", at(1, 25)),
        ("c3", "lead", at(2, 1)),
        ("c4", "mql", at(3, 1)),
        ("c3", "lead", at(4, 1)),  # after the period
    ]:
        Event.objects.create(
            workspace=ws,
            kind="contact.lifecycle_changed",
            contact_id=c[contact].pk,
            properties={"from": "", "to": stage, "reason": ""},
            occurred_at=when,
        )
    refresh_stage_entries()
    return sales
