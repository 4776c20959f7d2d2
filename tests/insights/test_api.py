"""API: /api/v1/reports and /api/v1/reports/{report}."""

from __future__ import annotations

import pytest

from patron.insights import catalog

pytestmark = pytest.mark.django_db


def test_the_list_of_reports(api):
    response = api.get("/api/v1/reports")
    assert response.status_code == 200
    keys = [item["key"] for item in response.json()]
    assert keys == list(catalog.REPORTS)
    pipeline = response.json()[0]
    assert pipeline["columns"][4] == {"key": "amount", "label": "Amount", "kind": "money"}


def test_a_report_for_a_custom_range(api, sales):
    response = api.get(
        "/api/v1/reports/expected_revenue", range="custom", start="2026-01-01", end="2026-03-31"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["period"] == {
        "range": "custom",
        "start": "2026-01-01",
        "end": "2026-03-31",
        "time_zone": "UTC",
    }
    assert body["currency"] == "USD"
    assert body["rows"][1] == {
        "period_start": "2026-02-01",
        "currency": "USD",
        "deals": 2,
        "amount": "3000.00",
        "weighted_amount": "1100.00",
    }
    assert body["rows"][-1]["period_start"] == ""  # open deals without a close date


def test_filters_and_named_ranges(api, sales):
    body = api.get(
        "/api/v1/reports/pipeline_by_stage", range="all_time", owner=sales.bob.pk, outcome="open"
    ).json()
    assert sum(row["deals"] for row in body["rows"]) == 2
    assert {row["stage"] for row in body["rows"]} == {
        "Qualified",
        "Meeting booked",
        "Proposal sent",
        "Negotiation",
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"range": "fortnight"}, "range"),
        ({"range": "custom", "start": "2026-01-01"}, "range"),
        ({"range": "custom", "start": "2026-02-01", "end": "2026-01-01"}, "end"),
        ({"start": "not a date"}, "start"),
    ],
)
def test_bad_parameters_get_a_clear_error(api, params, field):
    response = api.get("/api/v1/reports/funnel", **params)
    assert response.status_code == 422
    assert field in response.json()["error"]["fields"]


def test_an_unknown_report_and_no_key(api, client):
    assert api.get("/api/v1/reports/nope").status_code == 404
    assert api.get("/api/v1/reports/nope").json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/reports/funnel").status_code == 401


def test_the_campaign_report_routes_are_untouched(api):
    assert api.get("/api/v1/campaigns/compare").status_code == 200
