"""Template tags of the audience: ``{% load audience %}``."""

from __future__ import annotations

from typing import Any

from django import template

from patron.audience import suppression

register = template.Library()


@register.inclusion_tag("audience/suppression_badge.html", takes_context=True)
def suppression_badge(context: dict[str, Any], email: str) -> dict[str, Any]:
    """A "Suppressed (reason)" badge when the workspace does not mail ``email``."""
    workspace = context.get("workspace")
    if workspace is None or not email:
        return {"status": None}
    return {"status": suppression.status(workspace, email)}
