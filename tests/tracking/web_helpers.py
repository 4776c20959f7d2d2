"""Makers for the web tracker's tests: a site and collect bodies."""

from __future__ import annotations

import json
from typing import Any

from patron.tracking import sites, web

ORIGIN = "https://www.acme.example"


def make_site(workspace, **values: Any):
    web.sites.clear()
    values.setdefault("name", "Acme website")
    values.setdefault("allowed_origins", [ORIGIN])
    return sites.create_site(workspace=workspace, **values)


def page(url: str = f"{ORIGIN}/", **extra: Any) -> dict[str, Any]:
    return {"type": "page", "url": url, "title": "Acme", **extra}


def body(site, *events: dict[str, Any], visitor: str = "visitor-0001", **extra: Any) -> bytes:
    payload: dict[str, Any] = {"site": site.key, "visitor": visitor, "events": list(events)}
    payload.update(extra)
    return json.dumps(payload).encode()


def collect(client, data: bytes, *, origin: str = ORIGIN, **headers: str):
    return client.generic(
        "POST", web.COLLECT_PATH, data, content_type="text/plain;charset=UTF-8",
        headers={"Origin": origin, **headers},
    )  # fmt: skip
