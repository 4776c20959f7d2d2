"""The open pixel and click redirect as Django views (``patron run``, tests).

Production can serve ``/t/`` from the lean ASGI app of ``patron.tracking.asgi``
instead; both call the same functions of ``ingest``. A token that is not
ours never redirects: the pixel is still a pixel, a click gets a short page
saying the link is not valid.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from patron.tracking import ingest

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
    response = HttpResponseRedirect(found.url)
    response.headers["Cache-Control"] = NO_STORE
    return response
