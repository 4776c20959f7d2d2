"""The open pixel and click redirect as Django views (``patron run``, tests).

Production can serve ``/t/`` from the lean ASGI app of ``patron.tracking.asgi``
instead; both call the same functions of ``ingest``. A token that is not
ours never redirects: the pixel is still a pixel, a click gets a short page
saying the link is not valid.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from patron.tracking import ingest, web

NO_STORE = "no-store, max-age=0"


def _request_values(request: HttpRequest) -> dict[str, str | None]:
    return {
        "method": request.method or "GET",
        "remote": request.META.get("REMOTE_ADDR"),
        "forwarded_for": request.META.get("HTTP_X_FORWARDED_FOR"),
        "user_agent": request.META.get("HTTP_USER_AGENT", ""),
    }


def pixel_response() -> HttpResponse:
    response = HttpResponse(ingest.PIXEL, content_type="image/gif")
    response.headers["Cache-Control"] = NO_STORE
    return response


# A mail client fetching an image sends no CSRF token; nothing here changes what a
# person sees or owns, so the views are exempt (and POST is not accepted anyway).
@csrf_exempt
@require_http_methods(["GET", "HEAD"])
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    hit = ingest.open_hit(token, **_request_values(request))  # type: ignore[arg-type]
    if hit is not None:
        ingest.write_hits([hit])
    return pixel_response()


@csrf_exempt
@require_http_methods(["GET", "HEAD"])
def click(request: HttpRequest, token: str) -> HttpResponse:
    found = ingest.click_hit(token, **_request_values(request))  # type: ignore[arg-type]
    if found is None:
        response = render(request, "tracking/link_not_valid.html", status=404)
        response.headers["X-Robots-Tag"] = "noindex"
        return response
    ingest.write_hits([found.hit])
    hit = found.hit
    url = web.add_reference(
        found.url,
        workspace_id=hit.workspace_id,
        contact_id=hit.contact_id,
        origins=web.sites.origins(hit.workspace_id),
    )
    response = HttpResponseRedirect(url)
    response.headers["Cache-Control"] = NO_STORE
    return response


_sqlite_writes = threading.Lock()


def _one_writer() -> AbstractContextManager[object]:
    """SQLite takes one writer at a time: this process's threads take turns rather than
    fail on a lock (a beacon is not sent again)."""
    return _sqlite_writes if connection.vendor == "sqlite" else nullcontext()


def _collect_answer(status: int, body: bytes, origin: str, allowed: bool) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="application/json")
    response.headers["Cache-Control"] = NO_STORE
    response.headers["Vary"] = "Origin"
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
    return response


# A public beacon from pages Patron did not render (no CSRF token, nobody logged in):
# the site key with the browser's Origin is what is checked (see patron.tracking.web).
@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def collect(request: HttpRequest) -> HttpResponse:
    """``POST /t/e``: the web tracker's events (see ``patron.tracking.web``)."""
    origin = request.headers.get("Origin", "")
    if request.method == "OPTIONS":
        response = _collect_answer(204, b"", origin, bool(origin))
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
        return response
    allowed = False
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.TRACKING_COLLECT_MAX_BYTES:
            raise web.too_large()
        data = web.parse_body(request.body)
        site = web.sites.site(web.site_key(data))
        if site is None:
            raise web.unknown_site()
        allowed = origin.rstrip("/").lower() in site.origins
        dnt = request.headers.get("DNT") == "1" or request.headers.get("Sec-GPC") == "1"
        headers = web.RequestHeaders(origin=origin, dnt=dnt)
        found = web.check_request(data, site, headers, now=timezone.now())
    except web.CollectRefused as refused:
        return _collect_answer(refused.status, refused.body(), origin, allowed)
    except ValueError:
        invalid = web.CollectRefused(400, "invalid", "The request is not valid.")
        return _collect_answer(400, invalid.body(), origin, allowed)
    with _one_writer():
        web.stitch(found)
        if found.rows:
            web.write_web_events(found.rows)
    return _collect_answer(200, web.accepted_body(len(found.rows)), origin, allowed)
