"""The lead scoring pages, the score history panel and the hand-off list."""

from __future__ import annotations

import pytest
from django.test import Client

from patron.activity.services import record
from patron.automation import scoring
from patron.automation.models import (
    Handoff,
    HandoffStatus,
    LifecycleRule,
    ScoreRecompute,
    ScoringRule,
    ScoringRuleKind,
)
from patron.core.roles import Role
from patron.crm import services as crm
from tests.conftest import member
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return client


@pytest.fixture
def marketer(workspace):
    return client_for(member(workspace, Role.MARKETING, email="mia@acme.example"))


@pytest.fixture
def seller_user(workspace):
    return member(workspace, Role.SALES, email="sam@acme.example")


def test_only_marketing_and_admins_edit_scoring(workspace, marketer, seller_user):
    assert marketer.get("/automation/scoring/").status_code == 200
    assert client_for(seller_user).get("/automation/scoring/").status_code == 403
    assert client_for(seller_user).post("/automation/scoring/reapply/").status_code == 403


def test_create_a_behaviour_rule_with_a_filter_and_a_cap(workspace, marketer):
    response = marketer.post(
        "/automation/scoring/rules/new/?kind=behaviour",
        {
            "name": "Pricing page",
            "points": "20",
            "is_active": "on",
            "event_kind": "page.viewed",
            "filter_property_0": "url",
            "filter_op_0": "contains",
            "filter_value_0": "/pricing",
            "cap_points": "60",
            "cap_period": "week",
        },
    )
    assert response.status_code == 302
    rule = ScoringRule.objects.for_workspace(workspace).get()
    assert rule.filters == [{"property": "url", "op": "contains", "value": "/pricing"}]
    assert (rule.points, rule.cap_points, rule.cap_period) == (20, 60, "week")
    page = marketer.get("/automation/scoring/").content.decode()
    assert "Pricing page" in page and "/pricing" in page
    # Editing shows the saved values.
    form = marketer.get(f"/automation/scoring/rules/{rule.pk}/").content.decode()
    assert 'value="/pricing"' in form


def test_bad_rule_input_is_explained_and_nothing_saved(workspace, marketer):
    response = marketer.post(
        "/automation/scoring/rules/new/?kind=behaviour",
        {
            "name": "X",
            "points": "5",
            "event_kind": "page.viewed",
            "filter_property_0": "Bad!",
            "filter_value_0": "x",
            "filter_op_0": "contains",
            "cap_period": "day",
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Give the most points per period." in body
    assert not ScoringRule.objects.for_workspace(workspace).exists()


def test_create_a_firmographic_rule(workspace, marketer):
    response = marketer.post(
        "/automation/scoring/rules/new/?kind=firmographic",
        {
            "name": "Mid-size",
            "points": "15",
            "is_active": "on",
            "field": "company:size",
            "op": "between",
            "value": "50",
            "value_to": "500",
        },
    )
    assert response.status_code == 302
    rule = ScoringRule.objects.for_workspace(workspace).get()
    assert rule.kind == ScoringRuleKind.FIRMOGRAPHIC
    assert rule.condition["conditions"][0] == {
        "type": "company",
        "field": "size",
        "op": "between",
        "value": [50, 500],
    }


def test_lifecycle_rule_and_settings_forms(workspace, marketer):
    response = marketer.post(
        "/automation/scoring/lifecycle/", {"trigger": "score", "threshold": "100", "stage": "mql"}
    )
    assert response.status_code == 302
    assert LifecycleRule.objects.for_workspace(workspace).get().threshold == 100
    response = marketer.post("/automation/scoring/lifecycle/", {"trigger": "form", "stage": "sql"})
    assert "Choose the form." in response.content.decode()
    response = marketer.post(
        "/automation/scoring/settings/",
        {
            "decay_percent": "10",
            "decay_days": "30",
            "handoff_due_hours": "8",
            "handoff_business_hours": "on",
        },
    )
    assert response.status_code == 302
    chosen = scoring.settings_for(workspace)
    assert (chosen.handoff_due_hours, chosen.handoff_business_hours) == (8, True)
    page = marketer.get("/automation/scoring/").content.decode()
    assert 'name="handoff_business_hours"' in page and "checked" in page


def test_reapply_runs_in_the_background_with_visible_progress(
    workspace, marketer, django_capture_on_commit_callbacks
):
    contact = crm.create_contact(workspace=workspace, first_name="Ann", email="a@x.test")
    record(workspace=workspace, kind="email.opened", contact_id=contact.pk)
    scoring.follow_activity()
    scoring.save_scoring_rule(
        workspace=workspace,
        name="Opened",
        kind="behaviour",
        points=10,
        event_kind="email.opened",
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert marketer.post("/automation/scoring/reapply/").status_code == 302
    job = ScoreRecompute.objects.for_workspace(workspace).get()
    progress = marketer.get(f"/automation/scoring/reapply/{job.pk}/").content.decode()
    assert "Done" in progress and "1 of 1 contacts, 1 scores changed" in progress
    assert "hx-trigger" not in progress  # finished: no more polling


def test_score_history_panel_explains_the_score(workspace, owner, client):
    client.force_login(owner)
    contact = crm.create_contact(workspace=workspace, first_name="Ann", email="a@x.test")
    crm.change_score(contact=contact, points=40, reason="File downloaded", rule="E-book")
    crm.change_score(contact=contact, points=45, reason="Page viewed (3 times)", rule="Pricing")
    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert f"/contacts/{contact.pk}/score-history/" in page
    panel = client.get(f"/contacts/{contact.pk}/score-history/").content.decode()
    assert "Why the score is 85" in panel
    assert panel.index("Pricing") < panel.index("E-book")  # newest first
    assert "+45" in panel and "Page viewed (3 times)" in panel


def test_handoff_list_accept_and_reject(workspace, seller_user, marketer):
    contacts = [
        crm.create_contact(
            workspace=workspace, first_name=name, email=f"{name}@x.test", lifecycle_stage="mql"
        )
        for name in ("Ann", "Bo")
    ]
    rows = [
        Handoff.objects.create(workspace=workspace, contact=c, owner=seller_user) for c in contacts
    ]
    sales = client_for(seller_user)
    page = sales.get("/handoffs/?status=pending").content.decode()
    assert "Ann" in page and "Bo" in page and "/accept/" in page
    # Marketing sees the list but does not decide.
    assert "/accept/" not in marketer.get("/handoffs/").content.decode()
    assert marketer.post(f"/handoffs/{rows[0].pk}/accept/").status_code == 403
    assert sales.post(f"/handoffs/{rows[0].pk}/accept/").status_code == 302
    response = sales.post(f"/handoffs/{rows[1].pk}/reject/", {"reason": ""}, follow=True)
    assert "Say why" in response.content.decode()
    sales.post(f"/handoffs/{rows[1].pk}/reject/", {"reason": "No budget"})
    statuses = dict(Handoff.objects.for_workspace(workspace).values_list("pk", "status"))
    assert statuses == {rows[0].pk: HandoffStatus.ACCEPTED, rows[1].pk: HandoffStatus.REJECTED}
    accepted = sales.get("/handoffs/?status=accepted").content.decode()
    assert f"/contacts/{contacts[0].pk}/" in accepted
    assert f"/contacts/{contacts[1].pk}/" not in accepted
    assert "Median time from marketing-qualified to first sales touch" in accepted


def test_handoff_list_queries_do_not_grow_with_rows(
    workspace, seller_user, django_assert_max_num_queries
):
    for index in range(5):
        contact = crm.create_contact(
            workspace=workspace,
            first_name=f"P{index}",
            email=f"p{index}@x.test",
            lifecycle_stage="mql",
        )
        Handoff.objects.create(workspace=workspace, contact=contact, owner=seller_user)
    sales = client_for(seller_user)
    with django_assert_max_num_queries(15):
        assert sales.get("/handoffs/").status_code == 200
