"""The collect endpoint in the lean ASGI app: events of concurrent requests committed in
batches before they are answered, the same checks as the Django view."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from patron.activity.models import Event
from patron.tracking import ingest, web
from patron.tracking.asgi import TrackingApp
from tests.factories import ContactFactory
from tests.tracking.test_asgi import Fallback, run
from tests.tracking.web_helpers import ORIGIN, body, make_site, page

pytestmark = pytest.mark.django_db(transaction=True)


async def post(app: TrackingApp, data: bytes, *, origin: str = ORIGIN, chunks: int = 1,
               method: str = "POST", headers: list[tuple[bytes, bytes]] | None = None):  # fmt: skip
    scope = {
        "type": "http",
        "method": method,
        "path": web.COLLECT_PATH,
        "headers": [
            (b"origin", origin.encode()),
            (b"content-type", b"text/plain"),
            *(headers or []),
        ],
        "client": ("192.0.2.7", 40000),
    }
    size = max(1, len(data) // chunks + 1)
    parts = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        part = parts.pop(0)
        return {"type": "http.request", "body": part, "more_body": bool(parts)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, answer = sent
    return start["status"], dict(start["headers"]), answer["body"]


@pytest.fixture
def app():
    web.sites.clear()
    tracking = TrackingApp(Fallback())
    yield tracking
    run(tracking.batcher.close())
    run(tracking.web_batcher.close())
    web.sites.clear()


def test_concurrent_page_views_are_all_committed_before_they_are_answered(workspace, app):
    site = make_site(workspace)
    contact = ContactFactory(workspace=workspace)
    from patron.tracking.stitching import stitch_visitor

    stitch_visitor(
        workspace_id=workspace.pk, visitor_id="known-visitor", contact_id=contact.pk, method="form"
    )

    async def burst():
        views = [
            post(app, body(site, page(f"{ORIGIN}/p{n}"), visitor=f"visitor-{n:04d}"))
            for n in range(120)
        ]
        views.append(post(app, body(site, page(), visitor="known-visitor")))
        return await asyncio.gather(*views)

    answers = run(burst())
    assert {status for status, _h, _b in answers} == {200}
    assert {h[b"access-control-allow-origin"] for _s, h, _b in answers} == {ORIGIN.encode()}
    views = Event.objects.for_workspace(workspace).filter(kind="page.viewed")
    assert views.count() == 121
    assert views.get(visitor_id="known-visitor").contact_id == contact.pk
    assert views.filter(contact_id__isnull=True).count() == 120


def test_a_body_in_several_parts_is_read_whole(workspace, app):
    site = make_site(workspace)
    status, _headers, answer = run(post(app, body(site, page(), page()), chunks=4))
    assert (status, json.loads(answer)) == (200, {"accepted": 2})


def test_the_asgi_app_refuses_like_the_view(workspace, app, settings):
    site = make_site(workspace, consent_required=True)
    status, headers, answer = run(post(app, body(site, page()), origin="https://evil.example"))
    assert status == 403 and json.loads(answer)["error"]["code"] == "origin"
    assert b"access-control-allow-origin" not in headers
    status, _h, answer = run(post(app, body(site, page())))
    assert status == 403 and json.loads(answer)["error"]["code"] == "consent_required"
    status, _h, answer = run(post(app, b"[1, 2]"))
    assert status == 400 and json.loads(answer)["error"]["code"] == "invalid_json"
    status, _h, answer = run(post(app, json.dumps({"site": "unknown"}).encode()))
    assert status == 404
    settings.TRACKING_COLLECT_MAX_BYTES = 500
    status, _h, answer = run(post(app, body(site, page(f"{ORIGIN}/{'x' * 600}")), chunks=3))
    assert status == 413 and json.loads(answer)["error"]["code"] == "too_large"
    status, _h, _b = run(post(app, b"", method="GET"))
    assert status == 405
    status, headers, _b = run(post(app, b"", method="OPTIONS"))
    assert status == 204 and headers[b"access-control-allow-methods"] == b"POST"
    assert not Event.objects.unscoped().exists()


def test_a_batch_the_database_refuses_is_answered_as_not_recorded(workspace, app, monkeypatch):
    site = make_site(workspace)

    def refuse(rows):
        raise ingest.DatabaseError("the database is away")

    app.web_batcher._write_rows = refuse  # type: ignore[attr-defined]
    status, _h, answer = run(post(app, body(site, page())))
    assert status == 503 and json.loads(answer)["error"]["code"] == "unavailable"


def test_a_click_to_a_registered_site_carries_the_reference_in_the_asgi_app(workspace, app):
    from patron.tracking.stitching import read_reference
    from tests.tracking.helpers import message_urls, path_of
    from tests.tracking.test_asgi import call

    make_site(workspace)
    ingest.links.clear()
    urls = message_urls(workspace, urls=(f"{ORIGIN}/offer", "https://elsewhere.example/"))
    status, headers, _body = run(call(app, path_of(urls.links[0])))
    assert status == 302
    location = headers[b"location"].decode()
    assert location.startswith(f"{ORIGIN}/offer?_pt=")
    assert read_reference(location.split("_pt=", 1)[1]) == (workspace.pk, 30)
    _status, headers, _body = run(call(app, path_of(urls.links[1])))
    assert headers[b"location"] == b"https://elsewhere.example/"
    ingest.links.clear()
