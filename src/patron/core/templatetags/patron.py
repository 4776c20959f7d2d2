from __future__ import annotations

from typing import Any

from django import template
from django.forms import BoundField

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


_WIDGET_CLASSES = {
    "checkbox": "form-check-input",
    "select": "form-select",
    "selectmultiple": "form-select",
    "nullbooleanselect": "form-select",
    "checkboxselectmultiple": "",
    "radioselect": "",
}


@register.filter
def bootstrap(field: BoundField) -> str:
    """``{{ field|bootstrap }}``: the widget with Bootstrap's classes and error state."""
    css = _WIDGET_CLASSES.get(field.widget_type, "form-control")
    if field.errors and css:
        css += " is-invalid"
    attrs: dict[str, str | bool] = {"class": css} if css else {}
    if field.errors:
        attrs["aria-describedby"] = f"{field.auto_id}_error"
    elif field.help_text:
        attrs["aria-describedby"] = f"{field.auto_id}_helptext"
    return field.as_widget(attrs=attrs)


@register.filter
def get_field(form: Any, name: str) -> BoundField:
    """``{{ form|get_field:name }}``: a bound field whose name is in a variable."""
    return form[name]
