"""A lean ASGI app for the tracking addresses, in front of Patron's own ASGI app.

``/t/o/<token>`` and ``/t/c/<token>`` are answered here without Django's
request machinery (no middleware, no session, no URL resolver), and their hits
are committed in batches by one ``BatchWriter`` per process; every other path
goes to Django. Run it where tracking must keep up with a send's opens and
clicks, e.g. ``granian --interface asgi --workers 2 patron.tracking.asgi:application``,
with the load balancer sending ``/t/`` there (see docs/operations.md).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")

import django

django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402
from django.template.loader import render_to_string  # noqa: E402

from patron.tracking import ingest  # noqa: E402
from patron.tracking.links import CLICK_PATH, OPEN_PATH, read_click_token  # noqa: E402
from patron.tracking.models import HitKind  # noqa: E402

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_PIXEL_HEADERS = [
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(ingest.PIXEL)).encode()),
    (b"cache-control", b"no-store, max-age=0"),
]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class TrackingApp:
    def __init__(self, fallback: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.fallback = fallback
        self.batcher = ingest.HitBatcher()
        self._not_valid: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/t/"):
            await self._track(scope, path, send)
            return
        await self.fallback(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.batcher.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _track(self, scope: Scope, path: str, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await self._answer(send, 405, [(b"allow", b"GET, HEAD")], b"")
            return
        client = scope.get("client")
        request = {
            "method": method,
            "remote": client[0] if client else None,
            "forwarded_for": _header(scope, b"x-forwarded-for"),
            "user_agent": _header(scope, b"user-agent") or "",
        }
        if path.startswith(OPEN_PATH):
            hit = ingest.open_hit(path[len(OPEN_PATH) :], **request)  # type: ignore[arg-type]
            if hit is not None:
                await self.batcher.record(hit)
            await self._answer(send, 200, _PIXEL_HEADERS, ingest.PIXEL, method)
            return
        if path.startswith(CLICK_PATH):
            values = read_click_token(path[len(CLICK_PATH) :])
            url = None
            if values is not None and values.link is not None:
                url = ingest.links.cached(values.campaign_id, values.link)
                if url is None:  # the first click of a campaign in this process
                    url = await asyncio.to_thread(
                        ingest.links.url, values.workspace_id, values.campaign_id, values.link
                    )
            if values is not None and url is not None:
                hit = ingest.make_hit(HitKind.CLICK, values, **request)  # type: ignore[arg-type]
                await self.batcher.record(hit)
                headers = [
                    (b"location", url.encode("utf-8")),
                    (b"cache-control", b"no-store, max-age=0"),
                    (b"content-length", b"0"),
                ]
                await self._answer(send, 302, headers, b"")
                return
        await self._answer(
            send,
            404,
            [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"x-robots-tag", b"noindex"),
            ],
            self._not_valid_page(),
            method,
        )

    def _not_valid_page(self) -> bytes:
        if self._not_valid is None:
            self._not_valid = render_to_string("tracking/link_not_valid.html").encode()
        return self._not_valid

    @staticmethod
    async def _answer(
        send: Send,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        method: str = "GET",
    ) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


application = TrackingApp(get_asgi_application())  # type: ignore[arg-type]
