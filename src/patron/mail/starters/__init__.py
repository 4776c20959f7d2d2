"""Starter templates: the designs a new template can begin from.

Each starter is a JSON file beside this module: ``key``, ``name``, ``kind``
(marketing or personal), ``description``, ``subject``, ``preheader``, and
either ``blocks`` (a builder document, so it opens in the builder) or
``format`` and ``body`` (a hand-written MJML or HTML body). ``$STATIC/`` in
any text stands for the public address of the starters' placeholder images
(``static/patron/starters/``), so the designs show pictures until replaced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.templatetags.static import static

DIRECTORY = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Starter:
    key: str
    name: str
    kind: str
    description: str
    data: dict[str, Any]

    @property
    def is_built(self) -> bool:
        return "blocks" in self.data

    def values(self) -> dict[str, Any]:
        """The new template's values (content with image addresses filled in)."""
        data = json.loads(
            json.dumps(self.data).replace(
                "$STATIC/", settings.BASE_URL + static("patron/starters/")
            )
        )
        values: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "subject": data.get("subject", ""),
            "preheader": data.get("preheader", ""),
            "text": data.get("text", ""),
        }
        if self.is_built:
            values["blocks"] = data["blocks"]
        else:
            values["format"] = data["format"]
            values["body"] = data["body"]
            values["blocks"] = {}
        return values


@cache
def all_starters() -> dict[str, Starter]:
    """Every starter by key, in the order of their file names."""
    found: dict[str, Starter] = {}
    for path in sorted(DIRECTORY.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        found[data["key"]] = Starter(
            key=data["key"],
            name=data["name"],
            kind=data["kind"],
            description=data["description"],
            data=data,
        )
    return found


def get(key: str) -> Starter | None:
    return all_starters().get(key)


def for_kind(kind: str) -> list[Starter]:
    return [starter for starter in all_starters().values() if starter.kind == kind]


__all__ = ["Starter", "all_starters", "for_kind", "get"]
