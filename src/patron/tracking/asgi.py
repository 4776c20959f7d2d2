"""A lean ASGI app for the tracking addresses, in front of Patron's own ASGI app.

``/t/o/<token>``, ``/t/c/<token>`` and the web tracker's ``/t/e`` are answered
here without Django's request machinery (no middleware, no session, no URL
resolver; the tracker's ``/t/popups``, asked once per page, goes to Django);
their hits and events are committed in batches by one ``Batcher`` each per
process; every other path goes to Django. Run it where tracking must keep up
with a send's opens and clicks, e.g.
``granian --interface asgi --workers 2 patron.tracking.asgi:application``, with
the load balancer sending ``/t/`` there (see docs/operations.md).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.template.loader import render_to_string  # noqa: E402
from django.utils import timezone  # noqa: E402

from patron.capture.popups import POPUPS_PATH  # noqa: E402
from patron.tracking import ingest, web  # noqa: E402
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
        self.web_batcher: ingest.Batcher[web.WebRow] = ingest.Batcher(
            web.write_web_events, name="web-writer"
        )
        self._not_valid: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path = scope.get("path", "")
        if scope["type"] == "http" and path == web.COLLECT_PATH:
            await self._collect(scope, receive, send)
            return
        if scope["type"] == "http" and path.startswith("/t/") and path != POPUPS_PATH:
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
                await self.web_batcher.close()
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
                origins = web.sites.cached_origins(values.workspace_id)
                if origins is None:
                    origins = await asyncio.to_thread(web.sites.origins, values.workspace_id)
                url = web.add_reference(
                    url,
                    workspace_id=values.workspace_id,
                    contact_id=values.contact_id,
                    origins=origins,
                )
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

    async def _collect(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The web tracker's events (see ``patron.tracking.web``), answered once committed."""
        request_headers = dict(scope["headers"])
        origin = request_headers.get(b"origin", b"").decode("latin-1")
        if scope["method"] == "OPTIONS":
            headers = self._collect_headers(origin, bool(origin))
            headers += [
                (b"access-control-allow-methods", b"POST"),
                (b"access-control-allow-headers", b"Content-Type"),
                (b"access-control-max-age", b"600"),
            ]
            await self._answer(send, 204, headers, b"")
            return
        if scope["method"] != "POST":
            await self._answer(send, 405, [(b"allow", b"POST, OPTIONS")], b"")
            return
        allowed = False
        try:
            body = await self._body(request_headers.get(b"content-length", b""), receive)
            data = web.parse_body(body)
            key = web.site_key(data)
            known, site = web.sites.cached(key)
            if not known:
                site = await self.web_batcher.run(web.sites.site, key)
            if site is None:
                raise web.unknown_site()
            allowed = origin.rstrip("/").lower() in site.origins
            dnt = request_headers.get(b"dnt") == b"1" or request_headers.get(b"sec-gpc") == b"1"
            found = web.check_request(
                data, site, web.RequestHeaders(origin=origin, dnt=dnt), now=timezone.now()
            )
        except web.CollectRefused as refused:
            headers = self._collect_headers(origin, allowed)
            await self._answer(send, refused.status, headers, refused.body())
            return
        if found.reference or found.identify:
            await self.web_batcher.run(web.stitch, found)
        try:
            if len(found.rows) == 1:  # what the tracker sends: no gather to wait on
                await self.web_batcher.record(found.rows[0])
            elif found.rows:
                await asyncio.gather(*(self.web_batcher.record(row) for row in found.rows))
        except Exception:  # not committed: say so, the page may send it again
            failed = web.CollectRefused(503, "unavailable", "Not recorded; try again later.")
            headers = self._collect_headers(origin, allowed)
            await self._answer(send, 503, headers, failed.body())
            return
        await self._answer(send, 200, self._collect_headers(origin, allowed),
                           web.accepted_body(len(found.rows)))  # fmt: skip

    @staticmethod
    def _collect_headers(origin: str, allowed: bool) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store, max-age=0"),
            (b"vary", b"Origin"),
        ]
        if allowed:
            headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
        return headers

    @staticmethod
    async def _body(declared: bytes, receive: Receive) -> bytes:
        """The request body, refused as soon as it is larger than the limit."""
        limit = settings.TRACKING_COLLECT_MAX_BYTES
        if declared.isdigit() and int(declared) > limit:
            raise web.too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise web.too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

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
