"""The collect endpoint as the tracker (and others) meet it, through Django's view."""

from __future__ import annotations

import json

import pytest

from patron.activity.models import Event
from patron.tracking import stitching, web
from patron.tracking.models import VisitorLink
from tests.factories import ContactFactory
from tests.tracking.web_helpers import ORIGIN, body, collect, make_site, page

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(workspace):
    return make_site(workspace)


def error(response):
    return json.loads(response.content)["error"]


def test_a_page_view_lands_in_the_activity_log_with_its_utm_parameters(client, workspace, site):
    url = f"{ORIGIN}/spring?utm_source=newsletter&utm_medium=email&utm_campaign=launch"
    response = collect(client, body(site, page(url, view="v1", referrer="https://news.example/")))
    assert response.status_code == 200
    assert json.loads(response.content) == {"accepted": 1}
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    event = Event.objects.for_workspace(workspace).get()
    assert (event.kind, event.visitor_id, event.contact_id) == ("page.viewed", "visitor-0001", None)
    assert event.properties == {
        "url": url,
        "title": "Acme",
        "referrer": "https://news.example/",
        "view": "v1",
        "site": site.pk,
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "launch",
    }
    assert (event.source_type, event.source_id) == ("tracking.site", str(site.pk))


def test_a_batch_with_a_custom_event_and_time_on_page(client, workspace, site):
    events = [
        page(view="v2"),
        {"type": "event", "name": "webinar_attended", "properties": {"webinar": "Spring"},
         "url": f"{ORIGIN}/webinar"},
    ]  # fmt: skip
    assert collect(client, body(site, *events)).status_code == 200
    custom = Event.objects.for_workspace(workspace).get(kind="custom.event")
    assert custom.properties["name"] == "webinar_attended"
    assert custom.properties["properties"] == {"webinar": "Spring"}
    assert custom.properties["page"] == f"{ORIGIN}/webinar"
    # The page is hidden twice: the longest time is kept on the page view.
    for seconds in (12, 40, 30):
        leave = {"type": "leave", "view": "v2", "seconds": seconds}
        assert collect(client, body(site, leave)).status_code == 200
    viewed = Event.objects.for_workspace(workspace).get(kind="page.viewed")
    assert viewed.properties["seconds"] == 40
    assert Event.objects.for_workspace(workspace).count() == 2  # leaves are no events


def test_a_known_visitor_carries_the_contact_and_updates_the_last_touch(client, workspace, site):
    contact = ContactFactory(workspace=workspace)
    stitching.stitch_visitor(
        workspace_id=workspace.pk, visitor_id="visitor-0001", contact_id=contact.pk, method="form"
    )
    url = f"{ORIGIN}/?utm_source=linkedin&utm_campaign=autumn"
    assert collect(client, body(site, page(url))).status_code == 200
    event = Event.objects.for_workspace(workspace).get(kind="page.viewed")
    assert event.contact_id == contact.pk
    contact.refresh_from_db()
    assert (contact.last_touch_source, contact.last_touch_campaign) == ("linkedin", "autumn")
    assert contact.first_touch_source == "linkedin"  # it had none


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"visitor": "short"}, "visitor"),
        ({"events": "not a list"}, "events"),
        ({"events": []}, "events"),
        ({"events": [{"type": "page"}]}, "events.0"),
        ({"events": [{"type": "page", "url": "javascript:alert(1)"}]}, "events.0"),
        ({"events": [{"type": "event", "name": "has spaces"}]}, "events.0"),
        ({"events": [{"type": "leave", "view": "v1"}]}, "events.0"),
        ({"events": [{"type": "purchase"}]}, "events.0"),
        ({"events": [{"type": "page", "url": f"{ORIGIN}/"}] * 26}, "events"),
    ],
)
def test_bad_fields_get_a_json_error_naming_them_and_nothing_is_saved(
    client, workspace, site, data, field
):
    payload = {"site": site.key, "visitor": "visitor-0001", "events": [page()], **data}
    response = collect(client, json.dumps(payload).encode())
    assert response.status_code == 400
    assert error(response)["code"] == "invalid"
    assert field in error(response)["fields"]
    assert not Event.objects.unscoped().exists()


def test_not_json_an_unknown_site_and_a_foreign_origin_are_refused(client, workspace, site):
    response = collect(client, b"{not json")
    assert (response.status_code, error(response)["code"]) == (400, "invalid_json")
    response = collect(client, json.dumps({"site": "nope", "visitor": "visitor-0001"}).encode())
    assert (response.status_code, error(response)["code"]) == (404, "unknown_site")
    response = collect(client, body(site, page()), origin="https://evil.example")
    assert (response.status_code, error(response)["code"]) == (403, "origin")
    assert "https://evil.example" in error(response)["message"]
    assert "Access-Control-Allow-Origin" not in response
    response = client.generic("POST", web.COLLECT_PATH, body(site, page()))  # no Origin
    assert response.status_code == 403
    assert not Event.objects.unscoped().exists()


def test_an_oversized_body_is_refused(client, workspace, site, settings):
    settings.TRACKING_COLLECT_MAX_BYTES = 1000
    big = body(site, page(f"{ORIGIN}/" + "x" * 1200))
    response = collect(client, big)
    assert (response.status_code, error(response)["code"]) == (413, "too_large")
    assert not Event.objects.unscoped().exists()


def test_the_server_refuses_what_the_sites_settings_forbid(client, workspace):
    site = make_site(workspace, consent_required=True, honour_dnt=True)
    response = collect(client, body(site, page()))
    assert (response.status_code, error(response)["code"]) == (403, "consent_required")
    response = collect(client, body(site, page(), consent=True), DNT="1")
    assert (response.status_code, error(response)["code"]) == (403, "do_not_track")
    response = collect(client, body(site, page(), consent=True, identify="a@acme.example"))
    assert (response.status_code, error(response)["code"]) == (403, "identify_not_allowed")
    assert not Event.objects.unscoped().exists()
    assert collect(client, body(site, page(), consent=True)).status_code == 200
    assert Event.objects.for_workspace(workspace).count() == 1


def test_dnt_is_recorded_when_the_site_does_not_honour_it(client, workspace):
    site = make_site(workspace, honour_dnt=False)
    assert collect(client, body(site, page()), DNT="1").status_code == 200


def test_identify_from_the_page_when_the_site_allows_it(client, workspace):
    site = make_site(workspace, allow_identify=True)
    contact = ContactFactory(workspace=workspace, email="ada@acme.example")
    assert collect(client, body(site, page(), visitor="visitor-0002")).status_code == 200
    response = collect(client, body(site, visitor="visitor-0002", identify="ada@acme.example"))
    assert response.status_code == 200
    link = VisitorLink.objects.for_workspace(workspace).get()
    assert (link.visitor_id, link.contact_id, link.method) == (
        "visitor-0002",
        contact.pk,
        "identify",
    )
    assert Event.objects.for_workspace(workspace).get(kind="page.viewed").contact_id == contact.pk


def test_an_email_clicks_reference_links_the_visitor(client, workspace, site):
    contact = ContactFactory(workspace=workspace)
    token = stitching.sign_reference(workspace_id=workspace.pk, contact_id=contact.pk)
    response = collect(client, body(site, page(), visitor="visitor-0003", ref=token))
    assert response.status_code == 200
    assert Event.objects.for_workspace(workspace).get(kind="page.viewed").contact_id == contact.pk
    forged = collect(client, body(site, page(), visitor="visitor-0004", ref="forged-token"))
    assert forged.status_code == 200  # the view is recorded, anonymously
    assert (
        not VisitorLink.objects.for_workspace(workspace).filter(visitor_id="visitor-0004").exists()
    )


def test_the_preflight_answers_for_an_allowed_origin(client, workspace, site):
    response = client.options(web.COLLECT_PATH, headers={"Origin": ORIGIN})
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response["Access-Control-Allow-Methods"] == "POST"
    assert client.get(web.COLLECT_PATH).status_code == 405


def test_a_click_to_a_registered_site_carries_the_reference(client, workspace, site):
    from patron.tracking import ingest
    from tests.tracking.helpers import message_urls, path_of

    ingest.links.clear()
    urls = message_urls(workspace, urls=(f"{ORIGIN}/offer?x=1", "https://elsewhere.example/"))
    response = client.get(path_of(urls.links[0]))
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{ORIGIN}/offer?x=1&_pt=")
    token = location.split("_pt=", 1)[1]
    assert stitching.read_reference(token) == (workspace.pk, 30)
    assert client.get(path_of(urls.links[1]))["Location"] == "https://elsewhere.example/"
    ingest.links.clear()
