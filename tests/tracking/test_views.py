"""The open pixel and click redirect as a mail client and a browser meet them."""

from __future__ import annotations

import pytest

from patron.tracking import ingest
from patron.tracking.models import Hit, HitKind
from tests.tracking.helpers import message_urls, path_of

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130 Safari/537.36"


@pytest.fixture(autouse=True)
def fresh_link_cache():
    ingest.links.clear()
    yield
    ingest.links.clear()


def test_the_pixel_is_a_gif_and_the_open_is_recorded(client, workspace):
    urls = message_urls(workspace)
    response = client.get(path_of(urls.open), HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content == ingest.PIXEL
    assert "no-store" in response["Cache-Control"]
    hit = Hit.objects.for_workspace(workspace).get()
    assert (hit.kind, hit.campaign_id, hit.delivery_id) == (HitKind.OPEN, 10, 20)
    assert hit.contact_id == 30
    assert (hit.ip, hit.user_agent, hit.method, hit.link) == ("203.0.113.9", BROWSER, "GET", None)
    assert hit.processed_at is None and hit.machine == ""


def test_a_click_redirects_to_the_campaigns_link_and_is_recorded(client, workspace):
    urls = message_urls(workspace)
    response = client.get(path_of(urls.links[1]), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example/b"
    hit = Hit.objects.for_workspace(workspace).get()
    assert (hit.kind, hit.link) == (HitKind.CLICK, 1)


def test_a_head_request_is_recorded_as_such(client, workspace):
    urls = message_urls(workspace)
    response = client.head(path_of(urls.links[0]))
    assert response.status_code == 302
    assert Hit.objects.for_workspace(workspace).get().method == "HEAD"


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "aHR0cHM6Ly9ldmlsLmV4YW1wbGUv",  # "https://evil.example/" in base64
    ],
)
def test_a_forged_click_token_never_redirects(client, workspace, token):
    message_urls(workspace)
    response = client.get(f"/t/c/{token}")
    assert response.status_code == 404
    assert "Location" not in response
    assert b"This link is not valid" in response.content
    assert not Hit.objects.unscoped().exists()


def test_a_tampered_click_token_never_redirects(client, workspace):
    url = message_urls(workspace).links[0]
    last = url[-1]
    tampered = url[:-1] + ("A" if last != "A" else "B")
    response = client.get(path_of(tampered))
    assert response.status_code == 404
    assert not Hit.objects.unscoped().exists()


def test_a_valid_token_for_a_link_the_campaign_does_not_have_leads_nowhere(client, workspace):
    from patron.tracking import links

    message_urls(workspace)
    stray = links.recipient_urls(
        workspace_id=workspace.pk, campaign_id=10, delivery_id=20, contact_id=30, made_at=0,
        link_numbers=[7],
    ).links[0]  # fmt: skip
    response = client.get(path_of(stray))
    assert response.status_code == 404
    assert not Hit.objects.unscoped().exists()


def test_a_forged_open_token_still_gets_a_pixel_and_records_nothing(client, workspace):
    response = client.get("/t/o/forged")
    assert response.status_code == 200
    assert response.content == ingest.PIXEL
    assert not Hit.objects.unscoped().exists()


def test_posts_are_refused(client, workspace):
    urls = message_urls(workspace)
    assert client.post(path_of(urls.links[0])).status_code == 405
    assert client.post(path_of(urls.open)).status_code == 405
    assert not Hit.objects.unscoped().exists()


def test_a_token_of_another_kind_is_not_a_click(client, workspace):
    from patron.mail import links as mail_links

    token = mail_links.unsubscribe_token(workspace.pk, 30, 10)
    assert client.get(f"/t/c/{token}").status_code == 404
    assert not Hit.objects.unscoped().exists()


def test_the_visitor_address_comes_from_the_proxy_only_when_told(client, workspace, settings):
    urls = message_urls(workspace)
    client.get(path_of(urls.open), REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 5.6.7.8")
    settings.TRACKING_FORWARDED_FOR = True
    client.get(path_of(urls.open), REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 5.6.7.8")
    assert sorted(Hit.objects.unscoped().values_list("ip", flat=True)) == ["10.0.0.1", "5.6.7.8"]
