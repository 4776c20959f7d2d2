"""Pipelines, deals and the board."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from patron.activity.models import Event
from patron.core.roles import Role
from patron.crm import services
from patron.crm.models import Deal, Pipeline, StageOutcome
from tests.conftest import member
from tests.factories import (
    PASSWORD,
    CompanyFactory,
    ContactFactory,
    DealFactory,
    WorkspaceFactory,
    make_pipeline,
)

pytestmark = pytest.mark.django_db


def stage(pipeline: Pipeline, name: str):
    return pipeline.stages.get(name=name)


def test_a_default_pipeline_is_made_once_with_ordered_stages(workspace):
    pipeline = services.default_pipeline(workspace)
    assert services.default_pipeline(workspace) == pipeline
    stages = list(pipeline.stages.order_by("position"))
    assert [s.name for s in stages][:2] == ["Qualified", "Meeting booked"]
    assert [s.outcome for s in stages][-2:] == [StageOutcome.WON, StageOutcome.LOST]
    assert all(a.position < b.position for a, b in itertools.pairwise(stages))


def test_creating_a_deal_records_it_on_each_contact(workspace, owner):
    ann, bob = ContactFactory(workspace=workspace), ContactFactory(workspace=workspace)
    deal = services.create_deal(
        workspace=workspace,
        name="50 seats",
        amount=Decimal("12000"),
        contacts=[ann, bob],
        actor=owner,
    )
    assert deal.currency == "USD" and deal.stage.name == "Qualified"
    assert deal.expected_revenue == Decimal("1200.00")
    created = Event.objects.for_workspace(workspace).filter(kind="deal.created")
    assert sorted(created.values_list("contact_id", flat=True)) == sorted([ann.pk, bob.pk])
    assert created.first().properties["deal"] == "50 seats"


def test_moving_a_deal_records_who_moved_it_from_where_to_where(workspace, owner):
    contact = ContactFactory(workspace=workspace)
    deal = services.create_deal(
        workspace=workspace, name="Renewal", amount=Decimal("900"), contacts=[contact]
    )
    pipeline = deal.pipeline
    services.move_deal(deal=deal, stage=stage(pipeline, "Proposal sent"), actor=owner)
    deal.refresh_from_db()
    assert deal.stage.name == "Proposal sent" and deal.closed_at is None
    assert deal.expected_revenue == Decimal("450.00")
    change = Event.objects.for_workspace(workspace).get(kind="deal.stage_changed")
    assert change.actor == owner and change.contact_id == contact.pk
    assert (change.properties["from_stage"], change.properties["to_stage"]) == (
        "Qualified",
        "Proposal sent",
    )
    services.move_deal(deal=deal, stage=stage(pipeline, "Lost"), lost_reason="Budget cut")
    deal.refresh_from_db()
    assert deal.outcome == StageOutcome.LOST and deal.lost_reason == "Budget cut"
    assert deal.closed_at is not None
    services.move_deal(deal=deal, stage=stage(pipeline, "Negotiation"))
    deal.refresh_from_db()
    assert deal.closed_at is None and deal.lost_reason == ""


def test_a_deal_stays_in_its_own_pipeline_and_workspace(workspace):
    deal = services.create_deal(workspace=workspace, name="A")
    other = make_pipeline(workspace, "Partners")
    with pytest.raises(services.InvalidStage):
        services.move_deal(deal=deal, stage=other.stages.first())
    foreign = ContactFactory(workspace=WorkspaceFactory())
    with pytest.raises(services.CrossWorkspaceReference):
        services.create_deal(workspace=workspace, name="B", contacts=[foreign])
    with pytest.raises(services.CrossWorkspaceReference):
        services.create_deal(
            workspace=workspace, name="C", company=CompanyFactory(workspace=WorkspaceFactory())
        )


def test_the_board_shows_columns_totals_and_cards_in_few_queries(
    logged_in, workspace, django_assert_max_num_queries
):
    pipeline = services.default_pipeline(workspace)
    for i in range(12):
        services.create_deal(
            workspace=workspace,
            name=f"Deal {i}",
            amount=Decimal("1000"),
            stage=pipeline.stages.order_by("position")[i % 4],
            company=CompanyFactory(workspace=workspace),
        )
    with django_assert_max_num_queries(12):
        page = logged_in.get(f"/deals/pipelines/{pipeline.pk}/").content.decode()
    assert page.count('class="card board-card"') == 12
    assert "$12,000.00" in page  # open pipeline total
    assert "$4,800.00" in page  # weighted: 3 x (10 + 25 + 50 + 75)% of 1000
    assert logged_in.get("/deals/")["Location"] == f"/deals/pipelines/{pipeline.pk}/"


def test_moving_from_the_board_menu_and_by_drag_and_drop_requests(logged_in, workspace):
    deal = services.create_deal(workspace=workspace, name="Big one", amount=Decimal("5000"))
    won = stage(deal.pipeline, "Won")
    response = logged_in.post(f"/deals/{deal.pk}/move/", {"stage": won.pk, "next": "board"})
    assert response["Location"] == f"/deals/pipelines/{deal.pipeline_id}/"
    deal.refresh_from_db()
    assert deal.outcome == StageOutcome.WON
    # The board's drag and drop posts through htmx and gets the board back.
    negotiation = stage(deal.pipeline, "Negotiation")
    partial = logged_in.post(
        f"/deals/{deal.pk}/move/", {"stage": negotiation.pk}, headers={"HX-Request": "true"}
    )
    assert partial.status_code == 200 and 'id="board"' in partial.content.decode()
    assert "<html" not in partial.content.decode()
    deal.refresh_from_db()
    assert deal.stage == negotiation
    other_pipeline = make_pipeline(workspace, "Other")
    refused = logged_in.post(
        f"/deals/{deal.pk}/move/",
        {"stage": other_pipeline.stages.first().pk},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 422


def test_create_edit_list_and_detail_pages(logged_in, workspace, owner):
    contact = ContactFactory(workspace=workspace, first_name="Lan")
    pipeline = services.default_pipeline(workspace)
    form = logged_in.get(f"/deals/new/?contact={contact.pk}").content.decode()
    assert f'<option value="{contact.pk}" selected>' in form
    bad = logged_in.post(
        "/deals/new/",
        {"name": "X", "stage": pipeline.stages.first().pk, "amount": "-5", "currency": "U$"},
    )
    assert "greater than or equal to 0" in bad.content.decode()
    logged_in.post(
        "/deals/new/",
        {
            "name": "Annual plan",
            "stage": pipeline.stages.first().pk,
            "amount": "2400",
            "currency": "eur",
            "contacts": [contact.pk],
            "owner": owner.pk,
        },
    )
    deal = Deal.objects.for_workspace(workspace).get()
    assert deal.currency == "EUR" and list(deal.contacts.all()) == [contact]
    logged_in.post(
        f"/deals/{deal.pk}/edit/",
        {
            "name": "Annual plan",
            "amount": "3000",
            "currency": "EUR",
            "stage": stage(pipeline, "Negotiation").pk,
            "contacts": [contact.pk],
        },
    )
    deal.refresh_from_db()
    assert deal.amount == 3000 and deal.stage.name == "Negotiation"
    detail = logged_in.get(f"/deals/{deal.pk}/").content.decode()
    assert "Qualified → Negotiation" in detail and "Lan" in detail
    listing = logged_in.get("/deals/list/", {"outcome": "open"}).content.decode()
    assert "Annual plan" in listing and "€2,250.00" in listing  # 75% of 3000
    contact_page = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Annual plan" in contact_page


def test_agency_members_see_no_deals(client, workspace):
    agency = member(workspace, Role.AGENCY)
    deal = DealFactory(workspace=workspace)
    client.login(email=agency.email, password=PASSWORD)
    assert client.get("/deals/").status_code == 403
    assert client.get(f"/deals/{deal.pk}/").status_code == 403
    assert "/deals/" not in client.get("/contacts/").content.decode()


def test_deal_list_views_owner_closing_and_custom_filters(logged_in, workspace, owner):
    from datetime import timedelta

    from django.utils import timezone

    from patron.crm import services

    services.create_custom_field(
        workspace=workspace,
        object_type="deal",
        label="Channel",
        field_type="single_select",
        options=["Partner", "Direct"],
    )
    soon = services.create_deal(
        workspace=workspace,
        name="Closing soon",
        owner=owner,
        expected_close_date=timezone.localdate(),
        custom={"channel": "Partner"},
    )
    later = services.create_deal(
        workspace=workspace,
        name="Next year",
        expected_close_date=timezone.localdate() + timedelta(days=400),
        custom={"channel": "Direct"},
    )
    page = logged_in.get("/deals/list/", {"outcome": "open", "closing": "this_month"})
    assert soon.name in page.content.decode() and later.name not in page.content.decode()
    mine = logged_in.get("/deals/list/", {"owner": "me"}).content.decode()
    assert soon.name in mine and later.name not in mine
    direct = logged_in.get("/deals/list/", {"cf_channel": "Direct"}).content.decode()
    assert later.name in direct and soon.name not in direct
    assert "Closing this month" in direct


def test_deal_export_follows_the_list_filters(logged_in, workspace):
    import csv
    import io

    DealFactory(workspace=workspace, name="=SUM(A1)")
    deal = DealFactory(workspace=workspace, name="Plain")
    won_stage = deal.pipeline.stages.get(outcome=StageOutcome.WON)
    services.move_deal(deal=deal, stage=won_stage)
    response = logged_in.get("/deals/export/", {"outcome": "open"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row[1] for row in rows[1:]] == ["'=SUM(A1)"]
    assert rows[0][:4] == ["id", "name", "pipeline", "stage"]


def test_deal_list_saved_views_and_bulk(logged_in, workspace, owner):
    from patron.crm.models import SavedView

    first = services.create_deal(workspace=workspace, name="First", source="fair")
    second = services.create_deal(workspace=workspace, name="Second")
    logged_in.post("/deals/views/", {"name": "Mine", "query_string": "owner=me&outcome=open"})
    view = SavedView.objects.for_workspace(workspace).get(object_type="deal")
    assert view.query == {"owner": "me", "outcome": "open"}
    assert "First" not in logged_in.get("/deals/list/", {"view": view.pk}).content.decode()
    logged_in.post(
        "/deals/bulk/",
        {"ids": [first.pk, second.pk], "action": "apply", "change": "assign", "owner": owner.pk},
    )
    mine = logged_in.get("/deals/list/", {"view": view.pk}).content.decode()
    assert "First" in mine and "Second" in mine
    logged_in.post("/deals/bulk/", {"ids": [second.pk], "action": "delete"})
    assert list(Deal.objects.for_workspace(workspace).values_list("name", flat=True)) == ["First"]
    refused = logged_in.post(
        "/deals/bulk/", {"ids": [first.pk], "action": "apply", "change": "tag"}, follow=True
    )
    assert "Choose what to do with the ticked records" in refused.content.decode()  # no tags
