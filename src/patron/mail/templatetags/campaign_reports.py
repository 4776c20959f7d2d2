"""Filters of the campaign report pages."""

from __future__ import annotations

from django import template
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def percent(rate: float | None) -> str:
    """A rate (0.256) as a percentage ("25.6%"); "—" when there is nothing to divide."""
    if rate is None:
        return "—"
    return f"{floatformat(rate * 100, 1)}%"
