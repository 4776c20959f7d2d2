"""API: a campaign's report (numbers, click map, timeline), its recipients by filter
(paged by cursor), and the campaigns compared (sorted, paged); bad input answers
422 naming the parameter; other workspaces' campaigns are 404."""

from __future__ import annotations

from datetime import timedelta

import pytest

from patron.core.services import create_api_key
from patron.mail.models import Campaign
from tests.conftest import ApiClient
from tests.factories import WorkspaceFactory
from tests.mail.report_setup import LINKS, hit, make_story

pytestmark = pytest.mark.django_db


@pytest.fixture
def story(workspace, owner):
    return make_story(workspace, owner)


def test_report(api, story, workspace):
    workspace.time_zone = "Europe/Lisbon"
    workspace.save()
    response = api.get(f"/api/v1/campaigns/{story.campaign.pk}/report")
    assert response.status_code == 200
    body = response.json()
    assert body["campaign"]["name"] == "Spring news"
    numbers = body["numbers"]
    assert numbers["delivered"] == 5 and numbers["sent"] == 6 and numbers["recipients"] == 8
    assert (numbers["bounced"], numbers["hard_bounced"], numbers["soft_bounced"]) == (2, 1, 1)
    assert (numbers["opened"], numbers["opens"], numbers["machine_opens"]) == (3, 3, 1)
    assert (numbers["clicked"], numbers["clicks"], numbers["machine_clicks"]) == (2, 3, 1)
    assert numbers["open_rate"] == 0.6 and numbers["click_rate"] == 0.4
    assert numbers["click_to_open_rate"] == 0.6667 and numbers["not_opened"] == 2
    assert (numbers["unsubscribed"], numbers["complained"]) == (1, 1)
    assert [(link["url"], link["clicks"], link["clicked"]) for link in body["links"]] == [
        (LINKS[0], 2, 1),
        (LINKS[1], 1, 1),
        (LINKS[2], 0, 0),
    ]
    timeline = body["timeline"]
    # In March Lisbon is on UTC: the first bucket is the 09:00 hour of the start.
    assert timeline["hourly"][0]["start"].startswith("2026-03-02T09:00:00")
    assert sum(bucket["opens"] for bucket in timeline["hourly"]) == 3
    assert timeline["daily"][0] == {"start": "2026-03-04T00:00:00Z", "opens": 0, "clicks": 1}


def test_recipients_by_filter_and_cursor(api, story):
    url = f"/api/v1/campaigns/{story.campaign.pk}/recipients"
    body = api.get(url, filter="not_opened").json()
    assert [row["email"] for row in body["items"]] == ["fay@lumiar.example", "bob@lumiar.example"]
    assert body["next_cursor"] is None
    fay = body["items"][0]
    assert fay["opened"] is False and fay["complained_at"] is not None
    assert fay["id"] == story.deliveries["fay"].pk
    assert fay["contact_id"] == story.contacts["fay"].pk

    first = api.get(url, limit=3).json()
    assert [row["email"][:3] for row in first["items"]] == ["hal", "gus", "fay"]
    second = api.get(url, limit=3, cursor=first["next_cursor"]).json()
    assert [row["email"][:3] for row in second["items"]] == ["eve", "dee", "cy@"]
    assert second["items"][0]["bounce"] == "hard"
    ann = api.get(url, filter="clicked").json()["items"][-1]
    assert (ann["email"], ann["opened"], ann["clicked"]) == ("ann@lumiar.example", True, True)


def test_recipients_unknown_filter(api, story):
    response = api.get(f"/api/v1/campaigns/{story.campaign.pk}/recipients", filter="everyone")
    assert response.status_code == 422
    assert response.json()["error"]["fields"]["filter"][0].startswith("filter must be one of")


def test_compare(api, story, workspace, owner):
    second = make_story(workspace, owner, name="Summer news", contacts=story.contacts)
    Campaign.objects.for_workspace(workspace).filter(pk=second.campaign.pk).update(
        started_at=story.campaign.started_at + timedelta(days=7)
    )
    hit(second, "fay", "open", timedelta(hours=2))
    third = make_story(workspace, owner, name="Autumn news", contacts=story.contacts)
    Campaign.objects.for_workspace(workspace).filter(pk=third.campaign.pk).update(
        started_at=story.campaign.started_at + timedelta(days=14)
    )
    body = api.get("/api/v1/campaigns/compare").json()
    assert [row["campaign"]["name"] for row in body["items"]] == [
        "Autumn news",
        "Summer news",
        "Spring news",
    ]
    assert body["items"][1]["numbers"]["open_rate"] == 0.8
    assert body["next_cursor"] is None

    first = api.get("/api/v1/campaigns/compare", sort="open_rate", order="desc", limit=1).json()
    assert [row["campaign"]["name"] for row in first["items"]] == ["Summer news"]
    rest = api.get(
        "/api/v1/campaigns/compare", sort="open_rate", order="desc", cursor=first["next_cursor"]
    ).json()
    # Spring and Autumn tie at 60 %: the later one (higher id) first, page after page.
    assert [row["campaign"]["name"] for row in rest["items"]] == ["Autumn news", "Spring news"]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"sort": "subject"}, "sort"),
        ({"order": "up"}, "order"),
        ({"limit": 0}, "limit"),
        ({"cursor": "forged"}, "cursor"),
    ],
)
def test_compare_bad_input(api, story, params, field):
    response = api.get("/api/v1/campaigns/compare", **params)
    assert response.status_code == 422
    assert field in response.json()["error"]["fields"]


def test_other_workspaces_are_out_of_reach(api, story):
    theirs = make_story(WorkspaceFactory(), None, name="Theirs")
    pk = theirs.campaign.pk
    assert api.get(f"/api/v1/campaigns/{pk}/report").status_code == 404
    assert api.get(f"/api/v1/campaigns/{pk}/recipients").status_code == 404
    names = [
        row["campaign"]["name"] for row in api.get("/api/v1/campaigns/compare").json()["items"]
    ]
    assert names == ["Spring news"]


def test_needs_a_key(story):
    assert (
        ApiClient("wrong").get(f"/api/v1/campaigns/{story.campaign.pk}/report").status_code == 401
    )


def test_campaign_routes_still_answer(api, story, workspace, owner):
    # The report router is registered first; a campaign's own route is unaffected.
    assert api.get(f"/api/v1/campaigns/{story.campaign.pk}").json()["name"] == "Spring news"
    key = create_api_key(workspace=workspace, name="second", created_by=owner).secret
    assert ApiClient(key).get("/api/v1/campaigns/compare").status_code == 200
