"""The bounce and complaint samples of ``bounce_samples/``, filled in for one delivery.

The samples are written after RFC 3464/5965 and after how the large receivers
word their reports; ``@@VERP@@``, ``@@MESSAGE_ID@@``, ``@@CAMPAIGN@@`` and
``@@TO@@`` stand for the delivery's return path, Message-ID, campaign and the
address the report was sent to.
"""

from __future__ import annotations

from pathlib import Path

from patron.mail import mime

SAMPLES = Path(__file__).parent / "bounce_samples"


def sample(
    name: str,
    *,
    workspace_id: int = 3,
    delivery_id: int = 1001,
    campaign_id: int = 77,
    to: str | None = None,
) -> bytes:
    verp = mime.verp_address(workspace_id, delivery_id)
    values = {
        "@@VERP@@": verp,
        "@@MESSAGE_ID@@": mime.message_id_for(f"d{delivery_id}.c{campaign_id}"),
        "@@CAMPAIGN@@": str(campaign_id),
        "@@TO@@": to or verp,
    }
    raw = (SAMPLES / name).read_bytes()
    for placeholder, value in values.items():
        raw = raw.replace(placeholder.encode(), value.encode())
    return raw


def sample_names() -> list[str]:
    return sorted(path.name for path in SAMPLES.glob("*.eml"))
