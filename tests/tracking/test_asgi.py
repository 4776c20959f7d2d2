"""The lean ASGI app: tracking answered without Django's request machinery, hits
committed in batches by the writer thread, everything else handed to Django."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from patron.tracking import ingest
from patron.tracking.asgi import TrackingApp
from patron.tracking.models import Hit
from tests.tracking.helpers import message_urls, path_of

pytestmark = pytest.mark.django_db(transaction=True)


def run(coroutine):
    """``asyncio.run`` in a thread of its own: the browser tests' driver keeps an event
    loop running in the main thread for the whole session."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class Fallback:
    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def call(app: TrackingApp, path: str, method: str = "GET", agent: bytes = b"Mail/1.0"):
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"user-agent", agent), (b"host", b"patron.test")],
        "client": ("192.0.2.44", 50000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


@pytest.fixture
def app():
    ingest.links.clear()
    tracking = TrackingApp(Fallback())
    yield tracking
    run(tracking.batcher.close())
    ingest.links.clear()


def test_many_concurrent_hits_are_all_committed_before_they_are_answered(workspace, app):
    urls = message_urls(workspace)

    async def burst():
        opens = [call(app, path_of(urls.open)) for _ in range(150)]
        clicks = [call(app, path_of(urls.links[n % 2])) for n in range(150)]
        return await asyncio.gather(*opens, *clicks)

    answers = run(burst())
    assert [status for status, _h, _b in answers[:150]] == [200] * 150
    assert {headers[b"location"] for status, headers, _b in answers[150:]} == {
        b"https://shop.example/a",
        b"https://shop.example/b",
    }
    # Answered means committed: every hit is there without waiting for anything.
    assert Hit.objects.for_workspace(workspace).filter(kind="open").count() == 150
    assert Hit.objects.for_workspace(workspace).filter(kind="click").count() == 150
    assert set(Hit.objects.for_workspace(workspace).values_list("ip", flat=True)) == {"192.0.2.44"}


def test_forged_tokens_never_redirect_and_the_pixel_is_always_a_pixel(workspace, app):
    urls = message_urls(workspace)
    status, headers, body = run(call(app, path_of(urls.links[0])[:-2] + "xx"))
    assert status == 404 and b"location" not in headers
    assert b"This link is not valid" in body
    status, headers, body = run(call(app, "/t/o/forged"))
    assert (status, headers[b"content-type"], body) == (200, b"image/gif", ingest.PIXEL)
    status, _headers, _body = run(call(app, path_of(urls.open), method="POST"))
    assert status == 405
    assert not Hit.objects.unscoped().exists()


def test_other_paths_go_to_the_app(workspace, app):
    status, _headers, _body = run(call(app, "/contacts/"))
    assert status == 204
    assert app.fallback.paths == ["/contacts/"]


def test_closing_the_batcher_writes_what_it_holds(workspace):
    from patron.tracking.links import read_open_token

    urls = message_urls(workspace)
    values = read_open_token(urls.open.rsplit("/", 1)[1])
    row = ingest.make_hit(
        "open", values, method="GET", remote=None, forwarded_for=None, user_agent="x"
    )

    async def record_then_close():
        batcher = ingest.HitBatcher()
        waiting = [asyncio.ensure_future(batcher.record(row)) for _ in range(35)]
        await asyncio.sleep(0)  # every request has handed its hit over
        await batcher.close()
        return waiting

    waiting = run(record_then_close())
    assert all(future.done() and future.exception() is None for future in waiting)
    assert Hit.objects.for_workspace(workspace).count() == 35


@pytest.mark.parametrize("writers", [1, 2])
def test_hits_one_after_another_are_each_written(workspace, writers):
    # A quiet server: each hit arrives after the previous one was answered, at the very
    # moment the write that answered it is finishing. None may wait for a later hit.
    from patron.tracking.links import read_open_token

    values = read_open_token(message_urls(workspace).open.rsplit("/", 1)[1])
    row = ingest.make_hit(
        "open", values, method="GET", remote=None, forwarded_for=None, user_agent="x"
    )

    async def one_by_one():
        batcher = ingest.HitBatcher(writers=writers)
        for _ in range(5):
            await batcher.record(row)  # resumed before the finished write's task is cleared
        await batcher.close()

    run(asyncio.wait_for(one_by_one(), timeout=20))
    assert Hit.objects.for_workspace(workspace).count() == 5
