"""Makers for tracking tests: tracked links and the addresses of one message."""

from __future__ import annotations

import time

from patron.tracking import links


def message_urls(workspace, *, campaign_id=10, delivery_id=20, contact_id=30, made_at=None,
                 urls=("https://shop.example/a", "https://shop.example/b")):  # fmt: skip
    numbers = links.register_links(
        workspace_id=workspace.pk, campaign_id=campaign_id, urls=list(urls)
    )
    return links.recipient_urls(
        workspace_id=workspace.pk,
        campaign_id=campaign_id,
        delivery_id=delivery_id,
        contact_id=contact_id,
        made_at=int(time.time()) - 3600 if made_at is None else made_at,
        link_numbers=numbers,
    )


def path_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])
