"""Custom fields: the value rules of each field type, shared by every write path.

A workspace defines fields (``CustomField``) for contacts, companies and deals.
The values live in the record's ``custom`` JSON column, keyed by the field's
``key``, in one canonical JSON form per type:

============== =========================== ==========================
type           stored as                   example
============== =========================== ==========================
text, long     string                      ``"Gold"``
number, money  number                      ``1250.5``
date           ``"YYYY-MM-DD"``            ``"2026-03-01"``
datetime       ``"YYYY-MM-DDTHH:MM:SSZ"``  ``"2026-03-01T09:30:00Z"``
boolean        true / false                ``true``
single select  one of the options          ``"Enterprise"``
multi select   list of options             ``["EU", "US"]``
url, email,    string (checked)            ``"https://example.com"``
phone
============== =========================== ==========================

Dates and date-times are fixed-width strings so that comparing them as text
(what both SQLite and PostgreSQL do with JSON strings) orders them in time.
An empty value is never stored: the key is removed instead, so "is empty" is
"key absent" on both databases.

``clean_values`` is the one validation used by the services, which the forms,
the API and the import all call; ``filter_q`` turns a condition into a ``Q`` so
filters never load records into Python.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

if TYPE_CHECKING:
    from patron.crm.models import CustomField

MAX_TEXT = 255
MAX_LONG_TEXT = 10_000
PHONE_PATTERN = re.compile(r"^\+?[0-9 ()./-]{3,40}$")
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,49}$")


class CustomFieldInvalid(ValueError):
    """One or more custom values are invalid; ``errors`` maps field key to message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{key}: {message}" for key, message in self.errors.items()))


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str | int | float | Decimal) or isinstance(value, bool):
        raise ValueError(_("Enter text."))
    text = str(value).strip()
    if len(text) > limit:
        raise ValueError(_("Keep it to %(limit)d characters.") % {"limit": limit})
    return text


def _number(value: Any, places: int | None) -> int | float:
    if isinstance(value, bool):
        raise ValueError(_("Enter a number."))
    try:
        number = Decimal(str(value).strip().replace(",", "")) if value != "" else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValueError(_("Enter a number."))
    if abs(number) >= Decimal("1e15"):
        raise ValueError(_("Enter a number smaller than 10¹⁵."))
    if places is not None:
        number = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return int(number) if number == number.to_integral_value() else float(number)


def _date(value: Any) -> str:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    parsed = parse_date(str(value).strip()) if isinstance(value, str) else None
    if parsed is None:
        raise ValueError(_("Enter a date as YYYY-MM-DD."))
    return parsed.isoformat()


def _datetime(value: Any) -> str:
    parsed: datetime | None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
    else:
        parsed = None
    if parsed is None:
        raise ValueError(_("Enter a date and time as YYYY-MM-DD HH:MM."))
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "1", "y", "on"}:
        return True
    if text in {"false", "no", "0", "n", "off"}:
        return False
    raise ValueError(_("Enter yes or no."))


def _choice(value: Any, options: list[str]) -> str:
    text = _text(value, MAX_TEXT)
    for option in options:
        if option.lower() == text.lower():
            return option
    raise ValueError(_("Choose one of: %(options)s.") % {"options": ", ".join(options)})


def _choices(value: Any, options: list[str]) -> list[str]:
    if isinstance(value, str):
        items: Iterable[Any] = [part for part in value.split(";") if part.strip()]
    elif isinstance(value, list | tuple | set):
        items = value
    else:
        raise ValueError(_("Enter a list of options."))
    chosen = {_choice(item, options) for item in items}
    return [option for option in options if option in chosen]


def _url(value: Any) -> str:
    text = _text(value, 2000)
    try:
        URLValidator(schemes=["http", "https"])(text)
    except ValidationError:
        raise ValueError(_("Enter a web address starting with http:// or https://.")) from None
    return text


def _email(value: Any) -> str:
    text = _text(value, 254).lower()
    try:
        EmailValidator()(text)
    except ValidationError:
        raise ValueError(_("Enter a valid email address.")) from None
    return text


def _phone(value: Any) -> str:
    text = _text(value, 50)
    if not PHONE_PATTERN.match(text):
        raise ValueError(_("Enter a phone number: digits, spaces, +, -, ( and ) only."))
    return text


# Field type -> function(value, options) giving the stored form. Plain strings
# as keys: this runs per cell of an import, where enum lookups add up.
_NORMALISERS: dict[str, Callable[[Any, list[str]], Any]] = {
    "text": lambda value, _options: _text(value, MAX_TEXT),
    "long_text": lambda value, _options: _text(value, MAX_LONG_TEXT),
    "number": lambda value, _options: _number(value, None),
    "money": lambda value, _options: _number(value, 2),
    "date": lambda value, _options: _date(value),
    "datetime": lambda value, _options: _datetime(value),
    "boolean": lambda value, _options: _boolean(value),
    "single_select": _choice,
    "multi_select": _choices,
    "url": lambda value, _options: _url(value),
    "email": lambda value, _options: _email(value),
    "phone": lambda value, _options: _phone(value),
}


def normalise(field: CustomField, value: Any) -> Any:
    """The canonical stored form of ``value``, or None when it is empty.

    Raises ValueError with a message a person can act on.
    """
    if value is None or (isinstance(value, str | list | tuple) and not value):
        return None
    result = _NORMALISERS[str(field.field_type)](value, field.options)
    if result == "" or result == []:
        return None
    return result


def clean_values(
    fields: Iterable[CustomField],
    values: Mapping[str, Any],
    *,
    current: Mapping[str, Any] | None = None,
    partial: bool = False,
) -> dict[str, Any]:
    """Validate ``values`` against the field definitions; return the new ``custom`` dict.

    ``current`` is the record's present ``custom`` value: keys not in ``values``
    keep their value. Unknown keys and required fields left empty are errors,
    except that with ``partial`` (an update of some fields) a required field
    that is not mentioned keeps whatever it had.
    """
    by_key = {field.key: field for field in fields}
    errors: dict[str, str] = {}
    for key in values:
        if key not in by_key:
            errors[key] = _("There is no custom field with this key.")
    result = {key: value for key, value in (current or {}).items() if key in by_key}
    for key, field in by_key.items():
        if key in values:
            try:
                cleaned = normalise(field, values[key])
            except ValueError as exc:
                errors[key] = str(exc)
                continue
            if cleaned is None:
                result.pop(key, None)
            else:
                result[key] = cleaned
        if field.required and key not in result and (key in values or not partial):
            errors[key] = _("%(label)s is required.") % {"label": field.label}
    if errors:
        raise CustomFieldInvalid(errors)
    return result


# --- Display -----------------------------------------------------------------------


def display(field: CustomField, value: Any) -> str:
    """A value as a person reads it, in the active language and time zone."""
    from patron.crm.models import FieldType

    if value is None:
        return ""
    kind = field.field_type
    if kind == FieldType.BOOLEAN:
        return _("Yes") if value else _("No")
    if kind == FieldType.MULTI_SELECT:
        return ", ".join(value)
    if kind == FieldType.MONEY:
        return number_format(Decimal(str(value)), 2, force_grouping=True)
    if kind == FieldType.NUMBER:
        return number_format(value, force_grouping=True)
    if kind == FieldType.DATE:
        parsed = parse_date(value)
        return date_format(parsed) if parsed else str(value)
    if kind == FieldType.DATETIME:
        moment = parse_datetime(value)
        if moment is None:
            return str(value)
        return date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")
    return str(value)


def rows_for(fields: Iterable[CustomField], values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, display value) for each field of a record, in field order."""
    return [(field.label, display(field, values.get(field.key))) for field in fields]


# --- Forms -------------------------------------------------------------------------

FORM_PREFIX = "cf_"


def form_field(field: CustomField) -> forms.Field:
    """A Django form field for a custom field (named ``cf_<key>`` in forms)."""
    from patron.crm.models import FieldType

    common: dict[str, Any] = {
        "label": field.label,
        "required": field.required and field.field_type != FieldType.BOOLEAN,
        "help_text": field.help_text,
    }
    kind = field.field_type
    if kind == FieldType.LONG_TEXT:
        return forms.CharField(
            max_length=MAX_LONG_TEXT, widget=forms.Textarea(attrs={"rows": 3}), **common
        )
    if kind == FieldType.NUMBER:
        return forms.DecimalField(**common)
    if kind == FieldType.MONEY:
        return forms.DecimalField(decimal_places=2, **common)
    if kind == FieldType.DATE:
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if kind == FieldType.DATETIME:
        return forms.DateTimeField(
            widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            **common,
        )
    if kind == FieldType.BOOLEAN:
        return forms.NullBooleanField(
            widget=forms.Select(choices=[("unknown", "—"), ("true", _("Yes")), ("false", _("No"))]),
            **common,
        )
    if kind == FieldType.SINGLE_SELECT:
        return forms.ChoiceField(choices=[("", "—"), *[(o, o) for o in field.options]], **common)
    if kind == FieldType.MULTI_SELECT:
        return forms.MultipleChoiceField(
            choices=[(o, o) for o in field.options],
            widget=forms.CheckboxSelectMultiple,
            **common,
        )
    if kind == FieldType.URL:
        return forms.URLField(max_length=2000, assume_scheme="https", **common)
    if kind == FieldType.EMAIL:
        return forms.EmailField(**common)
    if kind == FieldType.PHONE:
        return forms.CharField(
            max_length=50, widget=forms.TextInput(attrs={"type": "tel"}), **common
        )
    return forms.CharField(max_length=MAX_TEXT, **common)


def initial_for_form(field: CustomField, value: Any) -> Any:
    """A stored value as a form field's initial value."""
    from patron.crm.models import FieldType

    if value is None:
        return None
    if field.field_type == FieldType.DATETIME:
        moment = parse_datetime(value)
        return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M") if moment else None
    if field.field_type == FieldType.BOOLEAN:
        return "true" if value else "false"
    return value


# --- Filters -----------------------------------------------------------------------


class Operator:
    EQUALS = "eq"
    NOT_EQUALS = "ne"
    CONTAINS = "contains"
    STARTS_WITH = "starts"
    IS_EMPTY = "empty"
    IS_NOT_EMPTY = "not_empty"
    GREATER = "gt"
    LESS = "lt"
    BETWEEN = "between"
    HAS_ANY = "any"


OPERATOR_LABELS = {
    Operator.EQUALS: gettext_lazy("is"),
    Operator.NOT_EQUALS: gettext_lazy("is not"),
    Operator.CONTAINS: gettext_lazy("contains"),
    Operator.STARTS_WITH: gettext_lazy("starts with"),
    Operator.IS_EMPTY: gettext_lazy("is empty"),
    Operator.IS_NOT_EMPTY: gettext_lazy("is not empty"),
    Operator.GREATER: gettext_lazy("is greater than"),
    Operator.LESS: gettext_lazy("is less than"),
    Operator.BETWEEN: gettext_lazy("is between"),
    Operator.HAS_ANY: gettext_lazy("has any of"),
}


def operators_for(field: CustomField) -> list[str]:
    from patron.crm.models import FieldType

    kind = field.field_type
    empty = [Operator.IS_EMPTY, Operator.IS_NOT_EMPTY]
    if kind in {FieldType.NUMBER, FieldType.MONEY, FieldType.DATE, FieldType.DATETIME}:
        return [Operator.EQUALS, Operator.GREATER, Operator.LESS, Operator.BETWEEN, *empty]
    if kind == FieldType.BOOLEAN:
        return [Operator.EQUALS, *empty]
    if kind == FieldType.SINGLE_SELECT:
        return [Operator.EQUALS, Operator.NOT_EQUALS, *empty]
    if kind == FieldType.MULTI_SELECT:
        return [Operator.HAS_ANY, *empty]
    return [Operator.EQUALS, Operator.CONTAINS, Operator.STARTS_WITH, *empty]


@dataclass(frozen=True)
class Condition:
    field: CustomField
    operator: str
    value: Any = None


def filter_q(condition: Condition, *, prefix: str = "") -> Q:
    """A ``Q`` selecting records whose custom value meets the condition.

    ``prefix`` reaches the JSON column through a relation (``"company__"``).
    Equality on PostgreSQL is written as JSON containment so the GIN index on
    ``custom`` answers it; SQLite reads the key with ``json_extract``.
    """
    field = condition.field
    operator = condition.operator
    if operator not in operators_for(field):
        raise CustomFieldInvalid({field.key: _("This condition does not fit the field type.")})
    column = f"{prefix}custom"
    key = f"{column}__{field.key}"
    if operator == Operator.IS_EMPTY:
        return ~Q(**{f"{column}__has_key": field.key})
    if operator == Operator.IS_NOT_EMPTY:
        return Q(**{f"{column}__has_key": field.key})
    if operator == Operator.HAS_ANY:
        options = _condition_value(field, condition.value)
        return _has_any(column, field.key, options, field.model_table)
    if operator == Operator.BETWEEN:
        low, high = (condition.value or (None, None))[:2]
        return Q(**{f"{key}__gte": normalise(field, low)}) & Q(
            **{f"{key}__lte": normalise(field, high)}
        )
    value = _condition_value(field, condition.value)
    if operator == Operator.EQUALS:
        if connection.vendor == "postgresql":
            return Q(**{f"{column}__contains": {field.key: value}})
        return Q(**{key: value})
    if operator == Operator.NOT_EQUALS:
        return ~Q(**{key: value}) | ~Q(**{f"{column}__has_key": field.key})
    if operator == Operator.GREATER:
        return Q(**{f"{key}__gt": value})
    if operator == Operator.LESS:
        return Q(**{f"{key}__lt": value})
    if operator == Operator.CONTAINS:
        return Q(**{f"{key}__icontains": value})
    return Q(**{f"{key}__istartswith": value})


def _condition_value(field: CustomField, value: Any) -> Any:
    try:
        cleaned = normalise(field, value)
    except ValueError as exc:
        raise CustomFieldInvalid({field.key: str(exc)}) from None
    if cleaned is None:
        raise CustomFieldInvalid({field.key: _("Give a value to compare with.")})
    return cleaned


def _has_any(column: str, key: str, options: list[str], table: str) -> Q:
    if connection.vendor == "postgresql":
        query = Q()
        for option in options:
            query |= Q(**{f"{column}__contains": {key: [option]}})
        return query
    if "__" in column:
        raise CustomFieldInvalid({key: _("This condition is not available here.")})
    # SQLite: look inside the stored list with json_each. The key matched
    # KEY_PATTERN when the field was defined, so it is safe inside the path.
    placeholders = ", ".join(["%s"] * len(options))
    sql = (
        f'EXISTS (SELECT 1 FROM json_each("{table}"."custom", \'$."{key}"\') '  # noqa: S608
        f"WHERE json_each.value IN ({placeholders}))"
    )
    return Q(RawSQL(sql, options, output_field=BooleanField()))  # noqa: S611
