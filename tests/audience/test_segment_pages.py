"""The segment pages: builder round trips, actions, saving, permissions, list and export use."""

from __future__ import annotations

import csv
import io

import pytest
from django.http import QueryDict

from patron.audience import segment_services
from patron.audience.models import Segment
from patron.audience.views_segments import apply_action, definition_from_form
from patron.core.roles import Role
from patron.crm import services
from tests.conftest import member
from tests.factories import PASSWORD, ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def builder_post(**extra):
    """Root: all of [city contains "erl", any of [tag, opened >= 2 in 30 days]]."""
    data = {
        "r-match": "all",
        "node": ["r.1:condition", "r.2:group", "r.2.1:condition", "r.2.2:condition"],
        "r.1-type": "field",
        "r.1-field": "city",
        "r.1-op": "contains",
        "r.1-value": "erl",
        "r.2-match": "any",
        "r.2.1-type": "tag",
        "r.2.1-op": "has",
        "r.2.1-tag": "",
        "r.2.2-type": "event",
        "r.2.2-kind": "email.opened",
        "r.2.2-count_op": "at_least",
        "r.2.2-count": "2",
        "r.2.2-window": "last_days",
        "r.2.2-days": "30",
        "r.2.2-f0-property": "campaign_id",
        "r.2.2-f0-op": "eq",
        "r.2.2-f0-value": "7",
    }
    data.update(extra)
    return data


def as_query(data):
    query = QueryDict(mutable=True)
    for key, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            query.appendlist(key, item)
    return query


def test_form_round_trip_builds_the_tree():
    definition = definition_from_form(as_query(builder_post()))
    assert definition == {
        "match": "all",
        "conditions": [
            {"type": "field", "field": "city", "op": "contains", "value": "erl"},
            {
                "match": "any",
                "conditions": [
                    {"type": "tag", "op": "has", "tag": ""},
                    {
                        "type": "event",
                        "kind": "email.opened",
                        "filters": [{"property": "campaign_id", "op": "eq", "value": "7"}],
                        "count": {"op": "at_least", "value": "2"},
                        "window": {"type": "last_days", "days": "30", "from": "", "to": ""},
                    },
                ],
            },
        ],
    }


def test_actions_add_and_remove_nodes():
    definition = definition_from_form(as_query(builder_post()))
    apply_action(definition, "add:r.2")
    assert len(definition["conditions"][1]["conditions"]) == 3
    apply_action(definition, "add_group:r")
    assert definition["conditions"][2]["match"] == "any"
    apply_action(definition, "remove:r.2.1")
    assert [c.get("type") for c in definition["conditions"][1]["conditions"]] == [
        "event",
        "field",
    ]
    apply_action(definition, "add_filter:r.2.1")
    assert len(definition["conditions"][1]["conditions"][0]["filters"]) == 2
    apply_action(definition, "remove_filter:r.2.1/0")
    assert definition["conditions"][1]["conditions"][0]["filters"][0]["property"] == "url"
    # Paths that do not exist change nothing.
    before = repr(definition)
    for action in ["remove:r.9", "add:r.7.1", "remove:x", "add_filter:r.1", "remove_filter:r.2/5"]:
        apply_action(definition, action)
    assert repr(definition) == before


def test_builder_page_counts_and_names_the_bad_condition(logged_in, workspace):
    ContactFactory(workspace=workspace, first_name="Ann", city="Berlin")
    ContactFactory(workspace=workspace, first_name="Bob", city="Paris")
    page = logged_in.get("/segments/new/")
    assert page.status_code == 200
    assert 'name="r.1-type"' in page.content.decode()
    response = logged_in.post(
        "/segments/new/",
        builder_post(),
        headers={"HX-Request": "true", "HX-Target": "segment-builder"},
    )
    body = response.content.decode()
    assert "Condition 2.1 (Tag): Choose a tag of this workspace." in body
    assert 'id="condition-r.2.1"' in body and 'aria-invalid="true"' in body
    # Without the group the count is live.
    data = builder_post(node=["r.1:condition"])
    response = logged_in.post(
        "/segments/new/", data, headers={"HX-Request": "true", "HX-Target": "segment-builder"}
    )
    body = response.content.decode()
    assert '<p class="display-6 mb-0" id="segment-total">1</p>' in body
    assert ">Ann " in body or "Ann" in body.split('id="segment-preview"')[1]
    assert "Bob" not in body.split('id="segment-preview"')[1]
    count = logged_in.post("/segments/count/", data)
    assert 'id="segment-total">1<' in count.content.decode()


def test_action_buttons_work_without_htmx(logged_in):
    response = logged_in.post(
        "/segments/new/", builder_post(node=["r.1:condition"], action="add_group:r")
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert 'value="r.2:group"' in body and 'name="r.2.1-type"' in body


def test_save_creates_and_updates_a_segment(logged_in, workspace):
    data = builder_post(
        node=["r.1:condition"], name="Berliners", description="City folk", action="save"
    )
    response = logged_in.post("/segments/new/", data)
    segment = Segment.objects.for_workspace(workspace).get()
    assert response.status_code == 302 and response["Location"] == f"/segments/{segment.pk}/"
    assert segment.definition["conditions"][0]["value"] == "erl"
    assert segment.description == "City folk"
    data = builder_post(
        node=["r.1:condition"], name="Berliners", action="save", **{"r.1-value": "Ber"}
    )
    logged_in.post(f"/segments/{segment.pk}/", data)
    segment.refresh_from_db()
    assert segment.definition["conditions"][0]["value"] == "Ber"
    listing = logged_in.get("/segments/").content.decode()
    assert ">Berliners<" in listing and "City contains Ber" in listing


def test_save_refuses_invalid_definitions_and_duplicate_names(logged_in, workspace):
    response = logged_in.post("/segments/new/", builder_post(name="Bad", action="save"))
    assert response.status_code == 400
    assert "Condition 2.1 (Tag)" in response.content.decode()
    segment_services.create_segment(workspace=workspace, name="Taken", definition={})
    response = logged_in.post(
        "/segments/new/", builder_post(node=["r.1:condition"], name="taken", action="save")
    )
    assert response.status_code == 400
    assert "A segment named “taken” exists already." in response.content.decode()
    assert Segment.objects.for_workspace(workspace).count() == 1


def test_roles_without_marketing_rights_can_look_but_not_save(client, workspace):
    sales = member(workspace, Role.SUPPORT)
    client.login(email=sales.email, password=PASSWORD)
    segment = segment_services.create_segment(workspace=workspace, name="Seen", definition={})
    page = client.get(f"/segments/{segment.pk}/").content.decode()
    assert "Save segment" not in page and "disabled" in page
    response = client.post(f"/segments/{segment.pk}/", builder_post(name="Changed", action="save"))
    assert response.status_code == 403
    segment.refresh_from_db()
    assert segment.name == "Seen"
    assert client.post(f"/segments/{segment.pk}/delete/", {"confirm": "yes"}).status_code == 403


def test_delete_needs_confirmation(logged_in, workspace):
    segment = segment_services.create_segment(workspace=workspace, name="Gone", definition={})
    logged_in.post(f"/segments/{segment.pk}/delete/")
    assert Segment.objects.for_workspace(workspace).filter(pk=segment.pk).exists()
    response = logged_in.post(f"/segments/{segment.pk}/delete/", {"confirm": "yes"})
    assert response["Location"] == "/segments/"
    assert not Segment.objects.for_workspace(workspace).filter(pk=segment.pk).exists()


def test_other_workspaces_segments_are_not_found(logged_in):
    theirs = segment_services.create_segment(workspace=WorkspaceFactory(), name="X", definition={})
    assert logged_in.get(f"/segments/{theirs.pk}/").status_code == 404
    assert logged_in.post(f"/segments/{theirs.pk}/delete/", {"confirm": "yes"}).status_code == 404


@pytest.fixture
def vips(workspace):
    ann = ContactFactory(workspace=workspace, first_name="Ann", last_name="Vip", email="a@x.test")
    ContactFactory(workspace=workspace, first_name="Bob", last_name="Plain", email="b@x.test")
    tag = services.add_tags(record_=ann, names=["vip"])[0]
    return segment_services.create_segment(
        workspace=workspace,
        name="VIPs",
        definition={"match": "all", "conditions": [{"type": "tag", "op": "has", "tag": tag.pk}]},
    )


def test_contact_list_and_export_narrowed_to_a_segment(logged_in, vips):
    page = logged_in.get("/contacts/", {"segment": vips.pk}).content.decode()
    assert "Ann Vip" in page and "Bob Plain" not in page
    assert "In segment VIPs" in page
    assert f'name="segment" value="{vips.pk}"' in page
    export = logged_in.get("/contacts/export/", {"segment": vips.pk})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [row["email"] for row in rows] == ["a@x.test"]


def test_unknown_segment_selects_no_one(logged_in, vips):
    page = logged_in.get("/contacts/", {"segment": vips.pk + 1000}).content.decode()
    assert "Ann Vip" not in page and "Bob Plain" not in page
