from __future__ import annotations

from django import template

from patron.activity.kinds import EVENT_KINDS

register = template.Library()


@register.filter
def kind_label(kind: str) -> str:
    """The human label of an event kind: ``{{ event.kind|kind_label }}``."""
    registered = EVENT_KINDS.get(kind)
    return str(registered.label) if registered else kind


@register.filter
def event_summary(properties: dict) -> str:
    """A short line from an event's properties for lists and timelines.

    The headline (a subject, title, name, ...) comes first, then an outcome
    and the changes the event records, if any: "Printer jammed · status:
    Open → Solved", "Quarterly review · Completed".
    """
    if not isinstance(properties, dict):
        return ""
    parts = []
    for key in ("subject", "title", "url", "name", "note", "form"):
        value = properties.get(key)
        if value:
            parts.append(str(value)[:120])
            break
    # An outcome (of a call, a meeting) follows its headline: "Demo · Completed".
    outcome = properties.get("outcome_label") or properties.get("outcome")
    if outcome:
        parts.append(str(outcome)[:60])
    changes = properties.get("changes")
    if isinstance(changes, dict) and changes:
        parts.append(_changes_text(changes))
    # A move with its reason (lifecycle stage, score): "lead → sql · Accepted by sales".
    if {"from", "to", "reason"} <= set(properties):
        parts.append(f"{_short(properties['from'])} → {_short(properties['to'])}")
        if properties["reason"]:
            parts.append(str(properties["reason"])[:200])
    return " · ".join(parts)


def _changes_text(changes: dict) -> str:
    parts = []
    for field in sorted(changes)[:3]:
        change = changes[field]
        name = field.removeprefix("custom.").replace("_", " ")
        if isinstance(change, list) and len(change) == 2:
            old, new = (_short(value) for value in change)
            parts.append(f"{name}: {old} → {new}")
        else:
            parts.append(name)
    if len(changes) > 3:
        parts.append("…")
    return "; ".join(parts)[:200]


def _short(value: object) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)[:40]
    return str(value)[:40]
