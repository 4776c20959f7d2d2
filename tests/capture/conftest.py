from __future__ import annotations

import pytest
from django.core.cache import cache

from patron.audience import lists
from patron.capture import services
from patron.crm.services import create_custom_field

FIELDS = [
    {"key": "email", "label": "Email", "maps_to": "contact.email", "required": True},
    {"key": "first_name", "label": "First name", "maps_to": "contact.first_name"},
    {"key": "last_name", "label": "Last name", "maps_to": "contact.last_name"},
    {"key": "company", "label": "Company", "maps_to": "company.name"},
    {"key": "seats", "label": "Seats", "maps_to": "custom.seats"},
    {
        "key": "utm_source",
        "label": "UTM source",
        "maps_to": "",
        "hidden": True,
        "source": "utm_source",
        "default": "direct",
    },
]


@pytest.fixture(autouse=True)
def fresh_cache(settings):
    """Rate-limit counters start empty; submissions need no waiting in tests."""
    cache.clear()
    settings.FORMS_MIN_FILL_SECONDS = 0
    yield
    cache.clear()


@pytest.fixture
def newsletter(workspace):
    return lists.create_list(workspace=workspace, name="Newsletter")


@pytest.fixture
def double_list(workspace):
    return lists.create_list(workspace=workspace, name="Product news", double_opt_in=True)


@pytest.fixture
def signup(workspace, owner, newsletter):
    create_custom_field(
        workspace=workspace, object_type="contact", label="Seats", field_type="number"
    )
    return services.create_form(
        workspace=workspace,
        name="Demo request",
        fields=FIELDS,
        consent_text="Yes, send me the Acme newsletter.",
        lists=[newsletter],
        tags=["demo", "website"],
        notify_user=owner,
        allowed_origins=["https://www.acme.example"],
        created_by=owner,
    )


def valid(form, **extra):
    data = {
        "email": "Ann@Example.com",
        "first_name": "Ann",
        "last_name": "Lee",
        "company": "Lee Ltd",
        "seats": "12",
        "consent": "yes",
        "_ts": services.issue_token(form),
    }
    data.update(extra)
    return data
