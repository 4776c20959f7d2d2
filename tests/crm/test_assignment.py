"""Assignment rules: fixed owner, fair round robin that survives restarts, conditions."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from patron.core.models import Membership
from patron.core.roles import Role
from patron.crm import assignment, importer, services
from patron.crm.models import AssignmentRule, Contact
from tests.conftest import member
from tests.factories import PASSWORD, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(workspace):
    return [member(workspace, Role.SALES, email=f"rep{i}@acme.example") for i in range(3)]


def round_robin(workspace, team, **extra):
    return assignment.save_rule(
        workspace=workspace,
        object_type="contact",
        name="Everybody in turn",
        conditions=extra.pop("conditions", []),
        strategy="round_robin",
        team=team,
        **extra,
    )


def owners(workspace, count, **values):
    return [
        services.create_contact(workspace=workspace, first_name=f"P{i}", **values).owner
        for i in range(count)
    ]


def test_round_robin_takes_turns_fairly_and_remembers_its_place(workspace, team):
    round_robin(workspace, team)
    assert owners(workspace, 4) == [team[0], team[1], team[2], team[0]]
    # A "restart": nothing held in memory, the place is on the rule row.
    assert AssignmentRule.objects.for_workspace(workspace).get().next_index == 1
    assert owners(workspace, 2) == [team[1], team[2]]


def test_round_robin_skips_members_who_left_or_were_deactivated(workspace, team):
    round_robin(workspace, team)
    Membership.objects.for_workspace(workspace).filter(user=team[1]).update(is_active=False)
    team[2].is_active = False
    team[2].save()
    assert owners(workspace, 3) == [team[0], team[0], team[0]]


def test_first_matching_rule_wins_and_explicit_owners_stay(workspace, owner, team):
    services.create_custom_field(
        workspace=workspace,
        object_type="contact",
        label="Region",
        field_type="single_select",
        options=["EU", "US"],
    )
    assignment.save_rule(
        workspace=workspace,
        object_type="contact",
        name="Europe",
        conditions=[{"field": "cf_region", "value": "eu"}, {"field": "source", "value": "fair"}],
        strategy="user",
        user=team[2],
        position=0,
    )
    round_robin(workspace, team[:2], position=1)
    europe = services.create_contact(
        workspace=workspace, first_name="E", source="Fair", custom={"region": "EU"}
    )
    assert europe.owner == team[2]
    elsewhere = services.create_contact(
        workspace=workspace, first_name="U", custom={"region": "US"}
    )
    assert elsewhere.owner == team[0]
    chosen = services.create_contact(workspace=workspace, first_name="O", owner=owner)
    assert chosen.owner == owner


def test_deals_have_their_own_rules(workspace, team):
    assignment.save_rule(
        workspace=workspace,
        object_type="deal",
        name="Deals to the closer",
        conditions=[],
        strategy="user",
        user=team[1],
    )
    assert services.create_deal(workspace=workspace, name="Big").owner == team[1]
    assert services.create_contact(workspace=workspace, first_name="C").owner is None


def test_imports_assign_new_contacts_in_turn(
    workspace, owner, team, django_capture_on_commit_callbacks
):
    round_robin(workspace, team, conditions=[{"field": "tag", "value": "fair"}])
    text = "Email\n" + "".join(f"p{i}@example.com\n" for i in range(4))
    job = importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=SimpleUploadedFile("fair.csv", text.encode()),
        actor=owner,
    )
    with django_capture_on_commit_callbacks(execute=False):
        importer.start_import(job=job, mapping=job.mapping, tags=["fair"], update_existing=True)
    importer.run_import(job.pk)
    assigned = list(
        Contact.objects.for_workspace(workspace)
        .order_by("email")
        .values_list("owner_id", flat=True)
    )
    assert assigned == [team[0].pk, team[1].pk, team[2].pk, team[0].pk]


def test_rules_are_validated(workspace, team):
    stranger = UserFactory()
    with pytest.raises(assignment.RuleInvalid) as caught:
        assignment.save_rule(
            workspace=workspace,
            object_type="contact",
            name="",
            conditions=[{"field": "password", "value": "x"}],
            strategy="user",
            user=stranger,
        )
    assert set(caught.value.errors) == {"name", "conditions", "user"}
    with pytest.raises(assignment.RuleInvalid, match="members of the team"):
        round_robin(workspace, [*team, stranger])


def test_settings_pages(logged_in, workspace, team, client):
    page = logged_in.get("/settings/assignment/").content.decode()
    assert "No assignment rules yet" in page
    response = logged_in.post(
        "/settings/assignment/new/",
        {
            "name": "Leads in turn",
            "object_type": "contact",
            "strategy": "round_robin",
            "team": [team[0].pk, team[1].pk],
            "condition_field_0": "lifecycle_stage",
            "condition_value_0": "lead",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    rule = AssignmentRule.objects.for_workspace(workspace).get()
    assert sorted(rule.team) == sorted([team[0].pk, team[1].pk])
    assert rule.conditions == [{"field": "lifecycle_stage", "value": "lead"}]
    listing = logged_in.get("/settings/assignment/").content.decode()
    assert "Lifecycle stage = lead" in listing and "In turn:" in listing
    bad = logged_in.post(
        f"/settings/assignment/{rule.pk}/edit/",
        {"name": "X", "object_type": "contact", "strategy": "user"},
    )
    assert "Choose a member of the workspace" in bad.content.decode()
    logged_in.post(f"/settings/assignment/{rule.pk}/delete/")
    assert not AssignmentRule.objects.for_workspace(workspace).exists()
    seller = team[0]
    logged_in.logout()
    logged_in.login(email=seller.email, password=PASSWORD)
    assert logged_in.get("/settings/assignment/").status_code == 403


def test_rules_of_another_workspace_do_not_apply(workspace, team):
    other = WorkspaceFactory()
    rep = member(other, Role.SALES)
    assignment.save_rule(
        workspace=other,
        object_type="contact",
        name="Theirs",
        conditions=[],
        strategy="user",
        user=rep,
    )
    assert services.create_contact(workspace=workspace, first_name="Mine").owner is None
