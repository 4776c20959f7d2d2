from __future__ import annotations

from django import template

from patron.core.models import Membership

register = template.Library()


@register.filter
def can(membership: Membership | None, permission: str) -> bool:
    """``{% if membership|can:"crm.view_deals" %}``"""
    return membership is not None and membership.can(permission)


@register.filter
def money(amount: object, currency: str = "USD") -> str:
    """``{{ deal.amount|money:workspace.currency }}`` in the active language's format."""
    if amount is None or amount == "":
        return ""
    from decimal import Decimal, InvalidOperation

    from babel.numbers import format_currency
    from django.utils import translation

    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    locale = translation.to_locale(translation.get_language() or "en")
    try:
        return format_currency(value, currency, locale=locale)
    except (ValueError, LookupError):
        return format_currency(value, currency, locale="en")
