"""Every figure of the reports against a value worked out by hand (see conftest.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from patron.activity.models import Event
from patron.audience.models import ConsentRecord, MailingList, Subscription
from patron.capture.models import Form, FormSubmission
from patron.insights import (
    reports_funnel,
    reports_marketing,
    reports_sales,
    reports_support,
)
from patron.insights.periods import Filters, InvalidPeriod, Period, period_for
from tests.factories import ContactFactory
from tests.insights.conftest import Q1, at

pytestmark = pytest.mark.django_db
NONE = Filters()
D = Decimal


# --- Periods -------------------------------------------------------------------------------------


def test_named_ranges_and_the_period_before():
    utc = ZoneInfo("UTC")
    today = date(2026, 2, 15)
    assert period_for("this_month", zone=utc, today=today).end == date(2026, 2, 28)
    last = period_for("last_month", zone=utc, today=today)
    assert (last.start, last.end) == (date(2026, 1, 1), date(2026, 1, 31))
    year = period_for("last_12_months", zone=utc, today=today)
    assert (year.start, year.end) == (date(2025, 3, 1), date(2026, 2, 28))
    quarter = period_for("this_quarter", zone=utc, today=today)
    assert (quarter.start, quarter.end) == (date(2026, 1, 1), date(2026, 3, 31))
    previous = period_for("last_30_days", zone=utc, today=today).previous()
    assert previous is not None
    assert (previous.start, previous.end) == (date(2025, 12, 18), date(2026, 1, 16))
    assert period_for("all_time", zone=utc).previous() is None
    with pytest.raises(InvalidPeriod):
        period_for("custom", zone=utc, start=date(2026, 2, 1), end=date(2026, 1, 1))
    with pytest.raises(InvalidPeriod):
        period_for("fortnight", zone=utc)


# --- Sales ---------------------------------------------------------------------------------------


def test_pipeline_by_stage_sums_per_stage_and_keeps_other_currencies_apart(sales):
    rows = reports_sales.pipeline_by_stage(sales.workspace, Q1, NONE)
    got = [(r.stage, r.currency, r.deals, r.amount, r.weighted_amount) for r in rows]
    assert got == [
        ("Qualified", "USD", 1, D("1000.00"), D("100.00")),
        ("Meeting booked", "USD", 0, D("0.00"), D("0.00")),
        ("Proposal sent", "USD", 1, D("2000.00"), D("1000.00")),
        ("Proposal sent", "EUR", 1, D("3000.00"), D("1500.00")),
        ("Negotiation", "USD", 1, D("4000.00"), D("3000.00")),
        ("Won", "USD", 1, D("5000.00"), D("5000.00")),
        ("Lost", "USD", 2, D("1000.00"), D("0.00")),
    ]
    open_only = reports_sales.pipeline_by_stage(sales.workspace, Q1, Filters(outcome="open"))
    assert {r.stage for r in open_only} == {
        "Qualified",
        "Meeting booked",
        "Proposal sent",
        "Negotiation",
    }
    mine = reports_sales.pipeline_by_stage(
        sales.workspace, Q1, Filters(owner_id=sales.bob.pk, outcome="open")
    )
    assert sum(r.deals for r in mine) == 2  # d2 and d4


def test_expected_revenue_by_month_with_empty_months_and_deals_without_a_close_date(sales):
    rows = reports_sales.expected_revenue(sales.workspace, Q1, NONE)
    got = [(r.period_start, r.currency, r.deals, r.amount, r.weighted_amount) for r in rows]
    assert got == [
        (date(2026, 1, 1), "USD", 0, D("0.00"), D("0.00")),
        (date(2026, 2, 1), "USD", 2, D("3000.00"), D("1100.00")),
        (date(2026, 3, 1), "USD", 0, D("0.00"), D("0.00")),
        (date(2026, 3, 1), "EUR", 1, D("3000.00"), D("1500.00")),
        (None, "USD", 1, D("4000.00"), D("3000.00")),
    ]
    yearly = reports_sales.expected_revenue(sales.workspace, Q1, NONE, by="year")
    assert [(r.period_start, r.currency, r.weighted_amount) for r in yearly] == [
        (date(2026, 1, 1), "USD", D("1100.00")),
        (date(2026, 1, 1), "EUR", D("1500.00")),
        (None, "USD", D("3000.00")),
    ]


def test_won_and_lost_with_reasons(sales):
    rows = reports_sales.won_lost(sales.workspace, Q1, NONE)
    assert [(r.outcome, r.reason, r.currency, r.deals, r.amount) for r in rows] == [
        ("won", "", "USD", 2, D("6200.00")),
        ("lost", "Price", "USD", 2, D("1000.00")),
    ]
    lost = reports_sales.won_lost(sales.workspace, Q1, Filters(outcome="lost"))
    assert [(r.outcome, r.deals) for r in lost] == [("lost", 2)]
    empty = Period(start=date(2025, 6, 1), end=date(2025, 6, 30), zone=ZoneInfo("UTC"))
    assert reports_sales.won_lost(sales.workspace, empty, NONE) == []


def test_deal_velocity_average_and_median_days(sales):
    rows = reports_sales.deal_velocity(sales.workspace, Q1, NONE)
    assert [(r.outcome, r.deals, r.average_days, r.median_days) for r in rows] == [
        ("won", 2, 55.0, 55.0),  # 20 and 90 days
        ("lost", 2, 20.0, 20.0),  # 30 and 10 days
    ]


def test_activities_per_salesperson(activities):
    rows = {
        r.name: r for r in reports_sales.activities_per_salesperson(activities.workspace, Q1, NONE)
    }
    alice = rows[activities.alice.display_name]
    assert (alice.calls, alice.calls_connected, alice.meetings, alice.meetings_completed) == (
        2,
        1,
        1,
        1,
    )
    assert (alice.emails, alice.tasks_done, alice.deals_won, alice.deals_lost) == (1, 1, 1, 0)
    bob = rows[activities.bob.display_name]
    assert (bob.calls, bob.calls_connected, bob.meetings, bob.emails, bob.tasks_done) == (
        1,
        0,
        0,
        0,
        0,
    )
    assert (bob.deals_won, bob.deals_lost) == (1, 2)
    only_bob = reports_sales.activities_per_salesperson(
        activities.workspace, Q1, Filters(owner_id=activities.bob.pk)
    )
    assert [r.user_id for r in only_bob] == [activities.bob.pk]


def test_workload_per_person_and_nobody(activities):
    ws = activities.workspace
    from patron.crm.models import Ticket

    Ticket.objects.create(workspace=ws, subject="Open", assignee=activities.alice, status="open")
    Ticket.objects.create(workspace=ws, subject="Done", assignee=activities.alice, status="solved")
    rows = {r.user_id: r for r in reports_sales.workload(ws, Q1, NONE)}
    alice = rows[activities.alice.pk]
    assert (alice.open_tasks, alice.overdue_tasks, alice.open_tickets, alice.open_deals) == (
        2,
        1,
        1,
        2,
    )
    bob = rows[activities.bob.pk]
    assert (bob.open_tasks, bob.open_tickets, bob.open_deals) == (0, 0, 2)
    assert rows[None].open_tasks == 1


# --- Support -------------------------------------------------------------------------------------


def test_tickets_by_priority(tickets):
    rows = {r.key: r for r in reports_support.ticket_report(tickets.workspace, Q1, NONE)}
    assert list(rows) == ["low", "normal", "high", "urgent"]
    high = rows["high"]
    assert (high.opened, high.solved) == (2, 1)
    assert (high.first_response_average_hours, high.first_response_median_hours) == (1.5, 1.5)
    assert (high.resolution_average_hours, high.resolution_median_hours) == (24.0, 24.0)
    assert (high.first_response_breaches, high.resolution_breaches) == (1, 1)
    normal = rows["normal"]
    assert (normal.opened, normal.solved) == (1, 2)
    assert normal.first_response_average_hours == 3.0
    assert (normal.resolution_average_hours, normal.resolution_median_hours) == (9.72, 9.72)
    assert (normal.first_response_breaches, normal.resolution_breaches) == (0, 0)
    low = rows["low"]
    assert (low.opened, low.solved, low.first_response_average_hours) == (0, 0, None)


def test_tickets_by_agent_and_by_month(tickets):
    by_agent = {
        r.key: r for r in reports_support.ticket_report(tickets.workspace, Q1, NONE, by="agent")
    }
    assert by_agent[str(tickets.alice.pk)].opened == 2
    assert by_agent[str(tickets.alice.pk)].solved == 3
    assert by_agent[""].opened == 1
    assert by_agent[""].label == "Nobody"
    by_month = reports_support.ticket_report(tickets.workspace, Q1, NONE, by="month")
    assert [(r.key, r.opened, r.solved) for r in by_month] == [
        ("2026-01", 1, 2),
        ("2026-02", 1, 0),
        ("2026-03", 1, 1),
    ]


# --- Funnel --------------------------------------------------------------------------------------


def test_funnel_conversion_and_median_days(lifecycle):
    rows = {r.stage: r for r in reports_funnel.funnel(lifecycle.workspace, Q1, NONE)}
    assert [r for r in rows] == ["subscriber", "lead", "mql", "sql", "opportunity", "customer"]
    lead = rows["lead"]
    assert (lead.reached, lead.converted, lead.conversion_rate, lead.median_days_to_next) == (
        3,
        2,
        0.6667,
        15.0,
    )
    mql = rows["mql"]
    assert (mql.reached, mql.converted, mql.conversion_rate, mql.median_days_to_next) == (
        3,
        1,
        0.3333,
        30.0,
    )
    customer = rows["customer"]
    assert (customer.reached, customer.converted, customer.conversion_rate) == (1, 0, 0.0)
    assert rows["sql"].conversion_rate is None
    assert [rows[s].contacts_now for s in rows] == [1, 1, 2, 0, 0, 1]
    ads = {
        r.stage: r for r in reports_funnel.funnel(lifecycle.workspace, Q1, Filters(source="ads"))
    }
    assert (ads["mql"].reached, ads["lead"].reached, ads["mql"].contacts_now) == (1, 0, 1)


def test_lifecycle_over_time_and_by_source(lifecycle):
    rows = reports_funnel.lifecycle_over_time(lifecycle.workspace, Q1, NONE)
    counted = {(r.month, r.stage): r.contacts for r in rows if r.contacts}
    assert counted == {
        (date(2026, 1, 1), "lead"): 2,
        (date(2026, 1, 1), "mql"): 2,
        (date(2026, 2, 1), "lead"): 1,
        (date(2026, 2, 1), "customer"): 1,
        (date(2026, 3, 1), "mql"): 1,
    }
    assert len(rows) == 3 * 6  # every month, every stage
    by_source = {
        (r.source, r.stage): r.reached
        for r in reports_funnel.funnel_by_source(lifecycle.workspace, Q1, NONE)
        if r.reached
    }
    assert by_source == {
        ("web", "lead"): 3,
        ("web", "mql"): 2,
        ("web", "customer"): 1,
        ("ads", "mql"): 1,
    }


def test_funnel_by_campaign_keeps_the_contacts_who_engaged(lifecycle):
    ws = lifecycle.workspace
    Event.objects.create(
        workspace=ws,
        kind="email.clicked",
        contact_id=lifecycle.contacts["c2"].pk,
        properties={"campaign": 77},
        occurred_at=at(1, 2),
    )
    rows = {r.stage: r for r in reports_funnel.funnel(ws, Q1, Filters(campaign_id=77))}
    assert (rows["lead"].reached, rows["mql"].reached, rows["customer"].reached) == (1, 1, 0)


# --- Marketing -----------------------------------------------------------------------------------


def test_form_conversion(sales):
    ws = sales.workspace
    form = Form.objects.create(workspace=ws, name="E-book")
    Form.objects.create(workspace=ws, name="Unused")
    c1, c3 = sales.contacts["c1"], sales.contacts["c3"]  # c1 is a customer
    for contact, when in [(c1, at(1, 2)), (c1, at(2, 2)), (c3, at(3, 3)), (c3, at(5, 5))]:
        FormSubmission.objects.create(workspace=ws, form=form, contact=contact, submitted_at=when)
    rows = reports_marketing.form_conversion(ws, Q1, NONE)
    assert [(r.form, r.submissions, r.people, r.customers, r.conversion_rate) for r in rows] == [
        ("E-book", 3, 2, 1, 0.5),
        ("Unused", 0, 0, 0, None),
    ]


def test_list_growth_and_churn(sales):
    ws = sales.workspace
    news = MailingList.objects.create(workspace=ws, name="News")
    people = [ContactFactory(workspace=ws) for _ in range(3)]
    for contact, status, when in [
        (people[0], "subscribed", at(1, 3)),
        (people[1], "subscribed", at(1, 4)),
        (people[2], "subscribed", at(2, 4)),
        (people[2], "unsubscribed", at(3, 4)),
        (people[0], "unsubscribed", at(6, 4)),  # after the period
    ]:
        ConsentRecord.objects.create(
            workspace=ws,
            contact=contact,
            mailing_list=news,
            status=status,
            source="manual",
            occurred_at=when,
        )
    for contact in people[:2]:
        Subscription.objects.create(
            workspace=ws, mailing_list=news, contact=contact, status="subscribed"
        )
    (row,) = reports_marketing.list_growth(ws, Q1, NONE)
    assert (row.subscribed, row.unsubscribed, row.net, row.subscribers) == (3, 1, 2, 2)
    assert row.churn_rate == 0.3333  # 1 left of 0 at the start + 3 joined


def test_email_engagement_by_hour_and_weekday(sales):
    ws = sales.workspace
    c1 = sales.contacts["c1"].pk
    for kind, when in [
        ("email.opened", at(1, 5, 9)),  # a Monday
        ("email.opened", at(1, 5, 9)),
        ("email.clicked", at(1, 7, 14)),  # a Wednesday
        ("email.opened", at(4, 7, 14)),  # after the period
    ]:
        Event.objects.create(workspace=ws, kind=kind, contact_id=c1, occurred_at=when)
    hours = reports_marketing.email_engagement(ws, Q1, NONE)
    assert len(hours) == 24
    assert (hours[9].opens, hours[9].clicks, hours[14].clicks, hours[14].opens) == (2, 0, 1, 0)
    assert sum(h.opens for h in hours) == 2
    days = reports_marketing.email_engagement(ws, Q1, NONE, by="weekday")
    assert [(d.label, d.opens, d.clicks) for d in days if d.opens or d.clicks] == [
        ("Mon", 2, 0),
        ("Wed", 0, 1),
    ]
    # In the workspace's time zone: 09:00 UTC is 18:00 in Tokyo.
    tokyo = Period(start=Q1.start, end=Q1.end, zone=ZoneInfo("Asia/Tokyo"))
    assert reports_marketing.email_engagement(ws, tokyo, NONE)[18].opens == 2


def test_campaigns_compared_are_the_campaign_reports_numbers(sales):
    from patron.mail import reports as campaign_reports
    from tests.isolation import _campaign

    ws = sales.workspace
    campaign = _campaign(ws)
    campaign.status = "sent"
    campaign.started_at = at(2, 1)
    campaign.save()
    from patron.mail.models import Delivery

    Delivery.objects.for_workspace(ws).update(status="sent")
    (row,) = reports_marketing.campaigns_compared(ws, Q1, NONE)
    numbers = campaign_reports.campaign_numbers(campaign)
    assert (row.sent, row.delivered, row.open_rate) == (
        numbers.sent,
        numbers.delivered,
        numbers.open_rate,
    )
    assert row.sent == 1
    outside = Period(start=date(2025, 1, 1), end=date(2025, 1, 31), zone=ZoneInfo("UTC"))
    assert reports_marketing.campaigns_compared(ws, outside, NONE) == []
