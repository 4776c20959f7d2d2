"""Dashboards and widgets: the services, the pages, CSV export and the emailed dashboard."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest

from patron.core.models import AuditEntry, Membership
from patron.crm.models import SavedView
from patron.insights import catalog, selectors, services
from patron.insights.emails import send_due_dashboards
from patron.insights.models import Dashboard, DashboardSchedule, Widget
from patron.insights.services import WidgetInvalid, WidgetSettings
from patron.mail.models import OutboxMessage
from tests.conftest import member

pytestmark = pytest.mark.django_db


def membership_of(user, workspace) -> Membership:
    return Membership.objects.for_workspace(workspace).select_related("workspace").get(user=user)


# --- Services ----------------------------------------------------------------------------------


def test_a_new_person_gets_a_default_dashboard_fitting_their_role(workspace, owner):
    dashboard = services.ensure_home_dashboard(
        workspace=workspace, membership=membership_of(owner, workspace)
    )
    reports = [w.report for w in selectors.widgets(dashboard)]
    assert reports == [
        "won_lost",
        "pipeline_by_stage",
        "expected_revenue",
        "funnel",
        "tickets_by_priority",
        "activities",
        "campaigns",
    ]
    again = services.ensure_home_dashboard(
        workspace=workspace, membership=membership_of(owner, workspace)
    )
    assert again.pk == dashboard.pk  # one home dashboard per person
    support = member(workspace, "support")
    theirs = services.ensure_home_dashboard(
        workspace=workspace, membership=membership_of(support, workspace)
    )
    # Support sees no deals: no sales widgets.
    assert [w.report for w in selectors.widgets(theirs)] == [
        "funnel",
        "tickets_by_priority",
        "campaigns",
    ]


def test_add_configure_move_and_remove_widgets(workspace, owner):
    membership = membership_of(owner, workspace)
    board = services.create_dashboard(workspace=workspace, name="Sales review", created_by=owner)
    first = services.add_widget(
        dashboard=board, membership=membership, settings=WidgetSettings(report="pipeline_by_stage")
    )
    second = services.add_widget(
        dashboard=board,
        membership=membership,
        settings=WidgetSettings(report="won_lost", display="number"),
    )
    third = services.add_widget(
        dashboard=board,
        membership=membership,
        settings=WidgetSettings(report="funnel", filters={"source": "web", "pipeline": "3"}),
    )
    # The report's usual way, range and first value when not chosen; unknown filters dropped.
    assert (first.display, first.date_range, first.measure) == (
        "bar",
        "all_time",
        "weighted_amount",
    )
    assert (second.display, second.measure) == ("number", "amount")
    assert third.filters == {"source": "web"}
    services.move_widget(widget=third, direction="up")
    assert [w.pk for w in selectors.widgets(board)] == [first.pk, third.pk, second.pk]
    services.move_widget(widget=first, direction="up")  # already first: stays
    assert [w.pk for w in selectors.widgets(board)] == [first.pk, third.pk, second.pk]
    services.remove_widget(widget=third)
    assert [(w.pk, w.position) for w in selectors.widgets(board)] == [(first.pk, 0), (second.pk, 1)]
    services.update_widget(
        widget=first,
        membership=membership,
        settings=WidgetSettings(
            report="pipeline_by_stage",
            display="pie",
            measure="deals",
            date_range="custom",
            start_date=date(2026, 1, 1),
            end_date=date(2026, 3, 31),
        ),
    )
    first.refresh_from_db()
    assert (first.display, first.measure, first.start_date) == ("pie", "deals", date(2026, 1, 1))


@pytest.mark.parametrize(
    ("chosen", "message"),
    [
        (WidgetSettings(report="nope"), "Choose a report"),
        (WidgetSettings(report="funnel", display="pie"), "cannot be shown as"),
        (WidgetSettings(report="funnel", measure="amount"), "values"),
        (WidgetSettings(report="campaigns", display="number", measure="open_rate"), "adds up"),
        (WidgetSettings(report="funnel", date_range="fortnight"), "date range"),
        (WidgetSettings(report="funnel", date_range="custom"), "start and an end"),
        (
            WidgetSettings(
                report="funnel",
                date_range="custom",
                start_date=date(2026, 2, 1),
                end_date=date(2026, 1, 1),
            ),
            "before its start",
        ),
        (WidgetSettings(saved_view_id=987654), "saved views"),
    ],
)
def test_bad_widget_settings_are_refused_and_nothing_is_saved(workspace, owner, chosen, message):
    board = services.create_dashboard(workspace=workspace, name="B", created_by=owner)
    with pytest.raises(WidgetInvalid, match=message):
        services.add_widget(
            dashboard=board, membership=membership_of(owner, workspace), settings=chosen
        )
    assert not Widget.objects.for_workspace(workspace).exists()


def test_a_role_cannot_add_a_report_it_may_not_read(workspace):
    agency = member(workspace, "agency")
    board = services.create_dashboard(workspace=workspace, name="B", created_by=agency)
    with pytest.raises(WidgetInvalid, match="role"):
        services.add_widget(
            dashboard=board,
            membership=membership_of(agency, workspace),
            settings=WidgetSettings(report="pipeline_by_stage"),
        )


def test_a_number_widget_compares_with_the_period_before(sales):
    from tests.insights.conftest import _deal, at

    ws = sales.workspace
    # Won in March 2026: d8 (1,200). In February: one more of 800 -> +50 %.
    _deal(ws, sales.pipeline, sales.stages["Won"], "feb", "800", created_at=at(2, 1),
          closed_at=at(2, 15))  # fmt: skip
    membership = membership_of(sales.alice, ws)
    board = services.create_dashboard(workspace=ws, name="B", created_by=sales.alice)
    widget = services.add_widget(
        dashboard=board,
        membership=membership,
        settings=WidgetSettings(
            report="won_lost",
            display="number",
            measure="amount",
            date_range="custom",
            start_date=date(2026, 3, 1),
            end_date=date(2026, 3, 31),
            filters={"outcome": "won"},
        ),
    )
    shown = selectors.show_widget(widget, membership)
    assert shown.number == "$1,200.00"
    assert shown.previous_number == "$800.00"  # 28 days before: 1 to 28 February
    assert shown.change is not None and shown.change.percent == 50.0


def test_a_saved_view_widget_counts_the_records_of_the_view(logged_in, workspace, owner, sales):
    view = SavedView.objects.create(
        workspace=workspace, object_type="deal", name="Bob's", owner=owner,
        query={"owner": str(sales.bob.pk)},
    )  # fmt: skip
    board = services.create_dashboard(workspace=workspace, name="Views", created_by=owner)
    services.add_widget(
        dashboard=board,
        membership=membership_of(owner, workspace),
        settings=WidgetSettings(display="saved_view", saved_view_id=view.pk),
    )
    page = logged_in.get(f"/reports/dashboards/{board.pk}/").content.decode()
    assert f"/deals/list/?view={view.pk}" in page
    assert ">5</a>" in page  # bob's deals: d2, d4, d6, d7 and d8


# --- Pages ---------------------------------------------------------------------------------------


def test_the_home_page_shows_the_persons_dashboard(logged_in, sales):
    page = logged_in.get("/").content.decode()
    assert "My dashboard" in page
    assert 'id="dashboard-widgets"' in page
    assert "Open pipeline" in page  # the default widget's title
    assert 'role="img"' in page  # a chart drawn on the server
    assert "/deals/list/?stage=" in page  # ... whose bars open the stage's deals


def test_the_home_pages_latest_activity_reads_as_words(logged_in, workspace):
    from patron.activity.services import record

    record(
        workspace=workspace,
        kind="email.sent",
        properties={"campaign": 1, "subject": "Your December, Ann"},
    )
    page = logged_in.get("/").content.decode()
    assert "Latest activity" in page
    assert ">Email sent</a>" in page and "Your December, Ann" in page
    assert ">email.sent<" not in page


def test_a_chart_links_each_bar_to_its_records_and_lists_the_values(logged_in, sales):
    response = logged_in.get("/reports/pipeline_by_stage/?range=all_time&display=bar")
    page = response.content.decode()
    stage = sales.stages["Proposal sent"]
    assert f'<a href="/deals/list/?stage={stage.pk}" aria-label="Proposal sent">' in page
    assert "<title" in page and "<desc" in page
    # Charted in USD; the EUR deal is in the table, apart.
    assert "amounts in EUR are in the table only" in page
    assert "€3,000.00" in page
    deals = logged_in.get(f"/deals/list/?stage={stage.pk}").content.decode()
    assert ">d2<" in deals and ">d4<" in deals and ">d1<" not in deals


def test_widget_pages_add_edit_move_and_remove(logged_in, workspace, owner):
    board = services.create_dashboard(workspace=workspace, name="Ops", created_by=owner)
    base = f"/reports/dashboards/{board.pk}"
    for report in ("tickets_by_priority", "funnel"):
        response = logged_in.post(f"{base}/widgets/new/", {"report": report})
        assert response.status_code == 302
    tickets, funnel = selectors.widgets(board)
    response = logged_in.post(
        f"/reports/widgets/{tickets.pk}/",
        {"report": "tickets_by_priority", "display": "bar", "date_range": "last_90_days",
         "title": "Tickets"},
    )  # fmt: skip
    assert response.status_code == 302
    tickets.refresh_from_db()
    assert (tickets.display, tickets.date_range, tickets.title) == (
        "bar",
        "last_90_days",
        "Tickets",
    )
    logged_in.post(f"/reports/widgets/{funnel.pk}/move/", {"direction": "up"})
    assert [w.pk for w in selectors.widgets(board)] == [funnel.pk, tickets.pk]
    page = logged_in.get(base + "/").content.decode()
    assert "Move Tickets up" in page and "Move Lifecycle funnel down" in page
    logged_in.post(f"/reports/widgets/{funnel.pk}/delete/")
    assert [w.pk for w in selectors.widgets(board)] == [tickets.pk]
    bad = logged_in.post(
        f"/reports/widgets/{tickets.pk}/", {"report": "tickets_by_priority", "display": "funnel"}
    )
    assert bad.status_code == 200
    assert "cannot be shown as" in bad.content.decode()


def test_only_the_owner_changes_a_home_dashboard(client, workspace, owner):
    from tests.factories import PASSWORD

    home = services.ensure_home_dashboard(
        workspace=workspace, membership=membership_of(owner, workspace)
    )
    widget = selectors.widgets(home)[0]
    colleague = member(workspace, "admin", "colleague@acme.example")
    assert client.login(email=colleague.email, password=PASSWORD)
    assert client.get(f"/reports/dashboards/{home.pk}/").status_code == 404
    assert client.post(f"/reports/widgets/{widget.pk}/delete/").status_code == 404
    shared = services.create_dashboard(workspace=workspace, name="Team", created_by=owner)
    assert client.get(f"/reports/dashboards/{shared.pk}/").status_code == 200
    sales_person = member(workspace, "sales", "seller@acme.example")
    assert client.login(email=sales_person.email, password=PASSWORD)
    assert (
        client.post(
            f"/reports/dashboards/{shared.pk}/widgets/new/", {"report": "funnel"}
        ).status_code
        == 403
    )


def test_csv_export_of_a_report(logged_in, sales):
    response = logged_in.get(
        "/reports/expected_revenue/export.csv?range=custom&start=2026-01-01&end=2026-03-31"
    )
    assert response["Content-Type"].startswith("text/csv")
    assert "expected_revenue-" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        ["Month", "Currency", "Deals", "Amount", "Weighted amount"],
        ["2026-01-01", "USD", "0", "0.00", "0.00"],
        ["2026-02-01", "USD", "2", "3000.00", "1100.00"],
        ["2026-03-01", "USD", "0", "0.00", "0.00"],
        ["2026-03-01", "EUR", "1", "3000.00", "1500.00"],
        ["", "USD", "1", "4000.00", "3000.00"],
    ]
    assert AuditEntry.objects.filter(workspace=sales.workspace, action="data.exported").exists()


def test_csv_export_keeps_formulas_as_text(logged_in, sales):
    sales.deals["d6"].lost_reason = "=HYPERLINK(1)"
    sales.deals["d6"].save()
    text = logged_in.get("/reports/won_lost/export.csv?range=all_time").content.decode()
    assert "'=HYPERLINK(1)" in text


def test_support_cannot_export_or_open_sales_reports(client, workspace):
    from tests.factories import PASSWORD

    support = member(workspace, "support", "help@acme.example")
    assert client.login(email=support.email, password=PASSWORD)
    assert client.get("/reports/pipeline_by_stage/").status_code == 403
    assert client.get("/reports/tickets_by_priority/").status_code == 200
    assert client.get("/reports/tickets_by_priority/export.csv").status_code == 403
    assert client.get("/reports/no_such_report/").status_code == 404


# --- The emailed dashboard ---------------------------------------------------------------------


def test_a_scheduled_dashboard_is_emailed_to_its_recipients(logged_in, sales):
    ws, alice = sales.workspace, sales.alice
    board = services.create_dashboard(workspace=ws, name="Weekly sales", created_by=alice)
    services.add_widget(
        dashboard=board,
        membership=membership_of(alice, ws),
        settings=WidgetSettings(report="pipeline_by_stage", display="bar", date_range="all_time"),
    )
    support = member(ws, "support", "help@acme.example")
    response = logged_in.post(
        f"/reports/dashboards/{board.pk}/email/",
        {"frequency": "weekly", "recipients": [str(sales.bob.pk), str(support.pk)]},
    )
    assert response.status_code == 302
    schedule = DashboardSchedule.objects.for_workspace(ws).get(dashboard=board)
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert send_due_dashboards(now) == 2
    by_address = {m.to[0]: m for m in OutboxMessage.objects.filter(workspace=ws)}
    to_bob = by_address["bob@acme.example"]
    assert to_bob.subject.startswith("Weekly sales: Acme on ")
    assert "Pipeline by stage" in to_bob.text_body
    assert "Sales | Proposal sent | USD | 1 | $2,000.00 | $1,000.00" in to_bob.text_body
    assert "Proposal sent" in to_bob.html_body
    assert "/reports/pipeline_by_stage/" in to_bob.html_body
    # Support may not read deals: their copy says so instead of showing them.
    assert "Your role cannot see this report." in by_address["help@acme.example"].text_body
    schedule.refresh_from_db()
    assert schedule.next_send_at == now + timedelta(days=7)
    assert schedule.last_sent_at == now
    assert send_due_dashboards(now) == 0  # not due again before next week
    assert send_due_dashboards(now + timedelta(days=7)) == 2
    assert OutboxMessage.objects.filter(workspace=ws).count() == 4


def test_a_failed_dashboard_email_is_visible_and_retried(sales, monkeypatch):
    ws, alice = sales.workspace, sales.alice
    board = services.create_dashboard(workspace=ws, name="Daily", created_by=alice)
    services.schedule_dashboard(
        dashboard=board, frequency="daily", recipient_ids=[alice.pk], actor=alice
    )

    def broken(**kwargs):
        raise ConnectionError("mail server down")

    monkeypatch.setattr("patron.insights.emails.send_workspace_mail", broken)
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert send_due_dashboards(now) == 0
    schedule = DashboardSchedule.objects.for_workspace(ws).get(dashboard=board)
    assert schedule.last_error == "ConnectionError: mail server down"
    assert schedule.next_send_at == now + timedelta(minutes=30)


def test_schedules_only_go_to_members(workspace, owner):
    from patron.insights.services import ScheduleInvalid
    from tests.factories import UserFactory

    board = services.create_dashboard(workspace=workspace, name="X", created_by=owner)
    stranger = UserFactory(email="stranger@example.org")
    with pytest.raises(ScheduleInvalid):
        services.schedule_dashboard(
            dashboard=board, frequency="daily", recipient_ids=[stranger.pk], actor=owner
        )
    assert not DashboardSchedule.objects.for_workspace(workspace).exists()
    services.schedule_dashboard(
        dashboard=board, frequency="daily", recipient_ids=[owner.pk], actor=owner
    )
    services.schedule_dashboard(dashboard=board, frequency="daily", recipient_ids=[], actor=owner)
    assert not DashboardSchedule.objects.for_workspace(workspace).exists()


def test_the_email_job_is_registered_with_the_scheduler():
    from patron.core.scheduler import PERIODIC_JOBS

    assert any(name.endswith("send_dashboard_emails") for name in PERIODIC_JOBS)


def test_every_report_renders_in_every_way_it_offers(logged_in, sales):
    for key, spec in catalog.REPORTS.items():
        for display in spec.displays:
            if display == "number":
                continue
            response = logged_in.get(f"/reports/{key}/?range=all_time&display={display}")
            assert response.status_code == 200, (key, display)
            assert str(spec.label) in response.content.decode()
    # Reading made only the person's home dashboard (for "Add to my dashboard").
    assert Dashboard.objects.for_workspace(sales.workspace).get().owner_id == sales.alice.pk


def test_charts_are_accessible_svg_with_escaped_labels():
    from patron.insights.charts import ChartData, Series, render

    data = ChartData(
        categories=["<b>Won</b>", "Lost"],
        series=[Series("Amount", [3.0, 1.0])],
        links=["/deals/list/?outcome=won", ""],
    )
    for display in ("bar", "stacked_bar", "line", "funnel", "pie"):
        svg = str(render(data, display, title="Won & lost", description="Amount by outcome."))
        assert svg.startswith("<svg") and 'role="img"' in svg
        assert "<title" in svg and "Won &amp; lost" in svg and "<desc" in svg
        assert "<b>" not in svg and "&lt;b&gt;Won&lt;/b&gt;" in svg
        assert '<a href="/deals/list/?outcome=won"' in svg
        assert "style=" not in svg and "<script" not in svg


def test_the_home_page_queries_do_not_grow_with_the_records(logged_in, sales):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.insights.conftest import _deal, at

    logged_in.get("/")  # makes the home dashboard
    with CaptureQueriesContext(connection) as before:
        logged_in.get("/")
    for index in range(30):
        _deal(sales.workspace, sales.pipeline, sales.stages["Won"], f"more {index}", "10",
              owner=sales.bob, created_at=at(1, 2), closed_at=at(1, 3))  # fmt: skip
    with CaptureQueriesContext(connection) as after:
        logged_in.get("/")
    assert len(after.captured_queries) == len(before.captured_queries)
