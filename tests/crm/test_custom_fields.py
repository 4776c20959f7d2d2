"""Custom fields: value rules per type, definitions, every write path, filters."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patron.activity.models import Event
from patron.core.roles import Role
from patron.crm import custom_fields, services
from patron.crm.custom_fields import Condition, CustomFieldInvalid, Operator
from patron.crm.models import Company, Contact, CustomField, Deal
from tests.conftest import member
from tests.factories import (
    PASSWORD,
    CompanyFactory,
    ContactFactory,
    DealFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


def unsaved(field_type: str, options: list[str] | None = None, **extra) -> CustomField:
    values = {"key": "f", "label": "F", "object_type": "contact", **extra}
    return CustomField(field_type=field_type, options=options or [], **values)


@pytest.mark.parametrize(
    ("field_type", "given_value", "stored"),
    [
        ("text", "  Gold ", "Gold"),
        ("long_text", "line one\nline two", "line one\nline two"),
        ("number", "1,250.50", 1250.5),
        ("number", 3, 3),
        ("money", "19.999", 20),
        ("money", Decimal("12.345"), 12.35),
        ("date", "2026-03-01", "2026-03-01"),
        ("date", date(2026, 3, 1), "2026-03-01"),
        ("datetime", datetime(2026, 3, 1, 10, 30, tzinfo=UTC), "2026-03-01T10:30:00Z"),
        ("datetime", "2026-03-01T12:30:00+02:00", "2026-03-01T10:30:00Z"),
        ("boolean", "yes", True),
        ("boolean", False, False),
        ("url", "https://example.com/a", "https://example.com/a"),
        ("email", "Ana@Example.COM", "ana@example.com"),
        ("phone", "+49 (30) 123-456", "+49 (30) 123-456"),
        ("text", "", None),
    ],
)
def test_values_are_stored_in_one_canonical_form(field_type, given_value, stored):
    assert custom_fields.normalise(unsaved(field_type), given_value) == stored


@pytest.mark.parametrize(
    ("field_type", "bad_value", "message"),
    [
        ("number", "twelve", "Enter a number."),
        ("number", True, "Enter a number."),
        ("number", "1e20", "smaller than"),
        ("date", "01/03/2026", "YYYY-MM-DD"),
        ("datetime", "tomorrow", "YYYY-MM-DD HH:MM"),
        ("boolean", "maybe", "yes or no"),
        ("url", "javascript:alert(1)", "http://"),
        ("email", "nobody", "valid email"),
        ("phone", "call me", "phone number"),
        ("text", "x" * 256, "255 characters"),
        ("text", {"a": 1}, "Enter text."),
    ],
)
def test_bad_values_are_refused_with_a_reason(field_type, bad_value, message):
    with pytest.raises(ValueError, match=message):
        custom_fields.normalise(unsaved(field_type), bad_value)


def test_select_values_match_options_whatever_the_case():
    single = unsaved("single_select", ["Bronze", "Silver", "Gold"])
    assert custom_fields.normalise(single, "gold") == "Gold"
    with pytest.raises(ValueError, match="Choose one of: Bronze, Silver, Gold"):
        custom_fields.normalise(single, "Platinum")
    multi = unsaved("multi_select", ["EU", "US", "APAC"])
    # Stored in option order, without repeats; "a;b" is the import spelling.
    assert custom_fields.normalise(multi, ["us", "EU", "US"]) == ["EU", "US"]
    assert custom_fields.normalise(multi, "APAC; eu") == ["EU", "APAC"]


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False))
def test_money_round_trips_through_its_stored_form(amount):
    field = unsaved("money")
    stored = custom_fields.normalise(field, amount)
    assert Decimal(str(stored)) == amount
    assert custom_fields.normalise(field, stored) == stored


@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2999, 1, 1)),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2999, 1, 1)),
)
def test_datetimes_stored_as_text_sort_like_time(one, other):
    field = unsaved("datetime")
    one, other = one.replace(tzinfo=UTC, microsecond=0), other.replace(tzinfo=UTC, microsecond=0)
    stored_one, stored_other = (custom_fields.normalise(field, m) for m in (one, other))
    assert (stored_one < stored_other) == (one < other)


def test_clean_values_names_every_problem():
    fields = [
        unsaved("number", key="employees", label="Employees", required=True),
        unsaved("text", key="tier", label="Tier"),
    ]
    with pytest.raises(CustomFieldInvalid) as caught:
        custom_fields.clean_values(fields, {"tier": "x" * 300, "nope": 1})
    assert set(caught.value.errors) == {"tier", "nope", "employees"}
    assert "required" in caught.value.errors["employees"]
    # A partial update may leave a required field it does not mention alone...
    assert custom_fields.clean_values(
        fields, {"tier": "Gold"}, current={"employees": 5}, partial=True
    ) == {"employees": 5, "tier": "Gold"}
    # ...but may not empty it.
    with pytest.raises(CustomFieldInvalid):
        custom_fields.clean_values(
            fields, {"employees": ""}, current={"employees": 5}, partial=True
        )


# --- Definitions ------------------------------------------------------------------


def test_defining_fields(workspace):
    tier = services.create_custom_field(
        workspace=workspace,
        object_type="contact",
        label="Customer tier",
        field_type="single_select",
        options=["Bronze", " Silver ", "", "Gold"],
    )
    assert tier.key == "customer_tier" and tier.options == ["Bronze", "Silver", "Gold"]
    with pytest.raises(CustomFieldInvalid, match="already uses the key"):
        services.create_custom_field(
            workspace=workspace, object_type="contact", label="Customer tier", field_type="text"
        )
    # The same key is free for another record type and another workspace.
    services.create_custom_field(
        workspace=workspace, object_type="company", label="Customer tier", field_type="text"
    )
    services.create_custom_field(
        workspace=WorkspaceFactory(),
        object_type="contact",
        label="Customer tier",
        field_type="text",
    )
    with pytest.raises(CustomFieldInvalid, match="at least one option"):
        services.create_custom_field(
            workspace=workspace, object_type="contact", label="Region", field_type="multi_select"
        )
    with pytest.raises(CustomFieldInvalid, match="listed twice"):
        services.create_custom_field(
            workspace=workspace,
            object_type="contact",
            label="Size",
            field_type="single_select",
            options=["S", "s"],
        )
    with pytest.raises(CustomFieldInvalid, match="lowercase letters"):
        services.create_custom_field(
            workspace=workspace, object_type="contact", label="X", field_type="text", key="9 lives"
        )
    assert services.key_from_label("2026 budget (€)") == "field_2026_budget"


def test_an_option_in_use_cannot_be_removed(workspace):
    tier = services.create_custom_field(
        workspace=workspace,
        object_type="contact",
        label="Tier",
        field_type="single_select",
        options=["Bronze", "Gold"],
    )
    services.create_contact(workspace=workspace, first_name="A", custom={"tier": "Gold"})
    with pytest.raises(CustomFieldInvalid, match="“Gold” is still used by 1 records"):
        services.update_custom_field(field=tier, options=["Bronze"])
    services.update_custom_field(field=tier, options=["Bronze", "Gold", "Platinum"], label="Level")
    tier.refresh_from_db()
    assert tier.label == "Level" and tier.options == ["Bronze", "Gold", "Platinum"]
    services.update_custom_field(field=tier, options=["Gold", "Platinum"])


def test_deleting_a_field_removes_its_values_everywhere_in_the_workspace(workspace):
    field = services.create_custom_field(
        workspace=workspace, object_type="contact", label="Tier", field_type="text"
    )
    services.create_custom_field(
        workspace=workspace, object_type="contact", label="Notes", field_type="text"
    )
    contact = services.create_contact(
        workspace=workspace, first_name="A", custom={"tier": "Gold", "notes": "keep"}
    )
    other_workspace = WorkspaceFactory()
    services.create_custom_field(
        workspace=other_workspace, object_type="contact", label="Tier", field_type="text"
    )
    foreign = services.create_contact(
        workspace=other_workspace, first_name="B", custom={"tier": "Gold"}
    )
    services.delete_custom_field(field=field)
    contact.refresh_from_db()
    foreign.refresh_from_db()
    assert contact.custom == {"notes": "keep"}
    assert foreign.custom == {"tier": "Gold"}
    assert not CustomField.objects.for_workspace(workspace).filter(key="tier").exists()


# --- Write paths --------------------------------------------------------------------


def test_services_validate_and_record_custom_changes(workspace, owner):
    services.create_custom_field(
        workspace=workspace, object_type="contact", label="Renewal", field_type="date"
    )
    services.create_custom_field(
        workspace=workspace,
        object_type="contact",
        label="Seats",
        field_type="number",
        required=True,
    )
    with pytest.raises(CustomFieldInvalid) as caught:
        services.create_contact(workspace=workspace, first_name="A", custom={"renewal": "soon"})
    assert set(caught.value.errors) == {"renewal", "seats"}
    assert not Contact.objects.for_workspace(workspace).exists()
    contact = services.create_contact(
        workspace=workspace, first_name="A", custom={"renewal": "2027-01-31", "seats": "12"}
    )
    assert contact.custom == {"renewal": "2027-01-31", "seats": 12}
    services.update_contact(contact=contact, actor=owner, custom={"seats": 15, "renewal": None})
    contact.refresh_from_db()
    assert contact.custom == {"seats": 15}
    event = Event.objects.for_workspace(workspace).get(kind="contact.field_changed")
    assert event.properties["changes"] == {
        "custom.renewal": ["2027-01-31", None],
        "custom.seats": [12, 15],
    }


def test_companies_and_deals_carry_custom_fields(workspace):
    services.create_custom_field(
        workspace=workspace, object_type="company", label="Plan", field_type="text"
    )
    services.create_custom_field(
        workspace=workspace, object_type="deal", label="Signed", field_type="boolean"
    )
    company = services.create_company(workspace=workspace, name="Kopi", custom={"plan": "Pro"})
    assert company.custom == {"plan": "Pro"}
    services.update_company(company=company, custom={"plan": "Team"})
    assert Event.objects.for_workspace(workspace).filter(kind="company.field_changed").exists()
    deal = services.create_deal(workspace=workspace, name="Big", custom={"signed": "no"})
    assert deal.custom == {"signed": False}
    with pytest.raises(CustomFieldInvalid):
        services.update_deal(deal=deal, custom={"plan": "x"})  # a company field, not a deal one


def test_other_emails_and_companies(workspace):
    acme, kopi = CompanyFactory(workspace=workspace), CompanyFactory(workspace=workspace)
    contact = services.create_contact(
        workspace=workspace,
        email="ana@acme.example",
        other_emails=["Ana@Home.example", "ana@acme.example"],
        company=acme,
        other_companies=[kopi],
    )
    assert [e.email for e in contact.other_emails.all()] == ["ana@home.example"]
    assert list(contact.other_companies.all()) == [kopi]
    # Another address of a contact counts as taken.
    assert services.find_contact_by_email(workspace, "ANA@home.example") == contact
    with pytest.raises(services.DuplicateContact):
        services.create_contact(workspace=workspace, email="ana@home.example")
    with pytest.raises(services.DuplicateContact):
        services.create_contact(
            workspace=workspace, first_name="B", other_emails=["ana@acme.example"]
        )
    with pytest.raises(services.CrossWorkspaceReference):
        services.update_contact(
            contact=contact, other_companies=[CompanyFactory(workspace=WorkspaceFactory())]
        )
    with pytest.raises(services.InvalidField):
        services.update_contact(contact=contact, time_zone="Mars/Olympus")
    services.update_contact(contact=contact, other_emails=[], time_zone="Asia/Jakarta")
    assert not contact.other_emails.exists()


# --- Filters --------------------------------------------------------------------------


def _fields(workspace):
    make = services.create_custom_field
    return {
        "tier": make(
            workspace=workspace,
            object_type="contact",
            label="Tier",
            field_type="single_select",
            options=["Bronze", "Gold"],
        ),
        "seats": make(
            workspace=workspace, object_type="contact", label="Seats", field_type="number"
        ),
        "renewal": make(
            workspace=workspace, object_type="contact", label="Renewal", field_type="date"
        ),
        "regions": make(
            workspace=workspace,
            object_type="contact",
            label="Regions",
            field_type="multi_select",
            options=["EU", "US", "APAC"],
        ),
        "nickname": make(
            workspace=workspace, object_type="contact", label="Nickname", field_type="text"
        ),
    }


def _names(workspace, field, operator, value=None):
    query = custom_fields.filter_q(Condition(field, operator, value))
    return sorted(
        Contact.objects.for_workspace(workspace).filter(query).values_list("first_name", flat=True)
    )


def test_filters_compile_to_sql_on_every_type(workspace):
    fields = _fields(workspace)
    create = services.create_contact
    create(
        workspace=workspace,
        first_name="Ana",
        custom={
            "tier": "Gold",
            "seats": 10,
            "renewal": "2026-12-01",
            "regions": ["EU"],
            "nickname": "Annie",
        },
    )
    create(
        workspace=workspace,
        first_name="Ben",
        custom={"tier": "Bronze", "seats": 2.5, "renewal": "2027-06-30", "regions": ["US", "APAC"]},
    )
    create(workspace=workspace, first_name="Cy", custom={})
    foreign = WorkspaceFactory()
    _fields(foreign)
    create(workspace=foreign, first_name="Zed", custom={"tier": "Gold"})

    assert _names(workspace, fields["tier"], Operator.EQUALS, "gold") == ["Ana"]
    assert _names(workspace, fields["tier"], Operator.NOT_EQUALS, "Gold") == ["Ben", "Cy"]
    assert _names(workspace, fields["seats"], Operator.GREATER, 3) == ["Ana"]
    assert _names(workspace, fields["seats"], Operator.LESS, "3") == ["Ben"]
    assert _names(workspace, fields["seats"], Operator.EQUALS, 10) == ["Ana"]
    assert _names(workspace, fields["renewal"], Operator.BETWEEN, ("2027-01-01", "2027-12-31")) == [
        "Ben"
    ]
    assert _names(workspace, fields["renewal"], Operator.LESS, "2027-01-01") == ["Ana"]
    assert _names(workspace, fields["regions"], Operator.HAS_ANY, ["APAC", "EU"]) == ["Ana", "Ben"]
    assert _names(workspace, fields["regions"], Operator.HAS_ANY, ["US"]) == ["Ben"]
    assert _names(workspace, fields["nickname"], Operator.CONTAINS, "NNI") == ["Ana"]
    assert _names(workspace, fields["nickname"], Operator.STARTS_WITH, "ann") == ["Ana"]
    assert _names(workspace, fields["nickname"], Operator.IS_EMPTY) == ["Ben", "Cy"]
    assert _names(workspace, fields["tier"], Operator.IS_NOT_EMPTY) == ["Ana", "Ben"]


def test_a_condition_that_does_not_fit_the_field_is_refused(workspace):
    fields = _fields(workspace)
    with pytest.raises(CustomFieldInvalid, match="does not fit"):
        custom_fields.filter_q(Condition(fields["seats"], Operator.CONTAINS, "1"))
    with pytest.raises(CustomFieldInvalid, match="Enter a number"):
        custom_fields.filter_q(Condition(fields["seats"], Operator.GREATER, "many"))
    with pytest.raises(CustomFieldInvalid, match="Choose one of"):
        custom_fields.filter_q(Condition(fields["tier"], Operator.EQUALS, "Platinum"))


# --- Pages ------------------------------------------------------------------------


def test_settings_pages_define_fields(logged_in, workspace):
    page = logged_in.get("/settings/fields/?type=contact").content.decode()
    assert "No custom fields yet" in page
    response = logged_in.post(
        "/settings/fields/new/?type=company",
        {"label": "Plan", "field_type": "single_select", "options": "Free\nPro", "key": ""},
    )
    assert response.status_code == 302
    field = CustomField.objects.for_workspace(workspace).get()
    assert (field.object_type, field.key, field.options) == ("company", "plan", ["Free", "Pro"])
    bad = logged_in.post(
        "/settings/fields/new/?type=company", {"label": "Plan", "field_type": "text"}
    )
    assert "Another field already uses the key" in bad.content.decode()
    edited = logged_in.post(
        f"/settings/fields/{field.pk}/edit/", {"label": "Plan name", "options": "Free\nPro\nTeam"}
    )
    assert edited.status_code == 302
    field.refresh_from_db()
    assert field.label == "Plan name" and field.options == ["Free", "Pro", "Team"]
    assert "Plan name" in logged_in.get("/settings/fields/?type=company").content.decode()
    logged_in.post(f"/settings/fields/{field.pk}/delete/")
    assert not CustomField.objects.for_workspace(workspace).exists()


def test_only_admins_define_fields(client, workspace):
    user = member(workspace, Role.SALES)
    client.login(email=user.email, password=PASSWORD)
    assert client.get("/settings/fields/").status_code == 403
    assert (
        client.post("/settings/fields/new/", {"label": "X", "field_type": "text"}).status_code
        == 403
    )


def test_contact_form_carries_custom_fields(logged_in, workspace):
    _fields(workspace)
    page = logged_in.get("/contacts/new/").content.decode()
    assert 'name="cf_tier"' in page and 'name="cf_regions"' in page
    bad = logged_in.post(
        "/contacts/new/", {"first_name": "Ana", "lifecycle_stage": "lead", "cf_seats": "lots"}
    )
    assert bad.status_code == 200 and "Enter a number" in bad.content.decode()
    response = logged_in.post(
        "/contacts/new/",
        {
            "first_name": "Ana",
            "lifecycle_stage": "lead",
            "cf_tier": "Gold",
            "cf_seats": "12",
            "cf_regions": ["EU", "APAC"],
            "cf_renewal": "2027-01-31",
            "other_emails": "ana@home.example\n",
            "time_zone": "Europe/Lisbon",
            "language": "pt",
            "city": "Lisbon",
        },
    )
    assert response.status_code == 302, response.content.decode()
    contact = Contact.objects.for_workspace(workspace).get(first_name="Ana")
    assert contact.custom == {
        "tier": "Gold",
        "seats": 12,
        "regions": ["EU", "APAC"],
        "renewal": "2027-01-31",
    }
    detail = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Tier" in detail and "Gold" in detail and "EU, APAC" in detail
    assert "ana@home.example" in detail and "Europe/Lisbon" in detail and "Portuguese" in detail
    edit = logged_in.get(f"/contacts/{contact.pk}/edit/").content.decode()
    assert 'value="2027-01-31"' in edit and "ana@home.example" in edit


def test_company_and_deal_forms_carry_custom_fields(logged_in, workspace):
    services.create_custom_field(
        workspace=workspace, object_type="company", label="Plan", field_type="text", required=True
    )
    services.create_custom_field(
        workspace=workspace, object_type="deal", label="Signed on", field_type="date"
    )
    missing = logged_in.post("/companies/new/", {"name": "Kopi"})
    assert "This field is required" in missing.content.decode()
    logged_in.post("/companies/new/", {"name": "Kopi", "cf_plan": "Pro"})
    company = Company.objects.for_workspace(workspace).get()
    assert company.custom == {"plan": "Pro"}
    assert "Pro" in logged_in.get(f"/companies/{company.pk}/").content.decode()
    deal = DealFactory(workspace=workspace)
    form = logged_in.get(f"/deals/{deal.pk}/edit/").content.decode()
    assert 'name="cf_signed_on"' in form


# --- API ----------------------------------------------------------------------------


def test_api_reads_writes_and_filters_custom_values(api, workspace):
    _fields(workspace)
    bad = api.post("/api/v1/contacts", {"first_name": "A", "custom": {"seats": "x", "nope": 1}})
    assert bad.status_code == 422
    assert set(bad.json()["error"]["fields"]) == {"custom.seats", "custom.nope"}
    created = api.post(
        "/api/v1/contacts",
        {
            "first_name": "Ana",
            "custom": {"tier": "Gold", "regions": ["EU"]},
            "other_emails": ["ana@home.example"],
            "birthday": "1990-05-17",
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["custom"] == {"tier": "Gold", "regions": ["EU"]}
    assert body["other_emails"] == ["ana@home.example"] and body["birthday"] == "1990-05-17"
    api.post("/api/v1/contacts", {"first_name": "Ben", "custom": {"tier": "Bronze"}})
    patched = api.patch(f"/api/v1/contacts/{body['id']}", {"custom": {"seats": 3}})
    assert patched.json()["custom"] == {"tier": "Gold", "regions": ["EU"], "seats": 3}
    found = api.get("/api/v1/contacts", **{"custom.tier": "Gold"}).json()["items"]
    assert [c["first_name"] for c in found] == ["Ana"]
    found = api.get("/api/v1/contacts", **{"custom.regions": "EU"}).json()["items"]
    assert [c["first_name"] for c in found] == ["Ana"]
    unknown = api.get("/api/v1/contacts", **{"custom.colour": "red"})
    assert unknown.status_code == 422 and "custom.colour" in unknown.json()["error"]["fields"]
    bad_zone = api.patch(f"/api/v1/contacts/{body['id']}", {"time_zone": "Nowhere"})
    assert bad_zone.status_code == 422 and "time_zone" in bad_zone.json()["error"]["fields"]


def test_api_defines_custom_fields(api, workspace):
    created = api.post(
        "/api/v1/custom-fields",
        {
            "object_type": "deal",
            "label": "Channel",
            "field_type": "single_select",
            "options": ["Web"],
        },
    )
    assert created.status_code == 201, created.content
    field_id = created.json()["id"]
    assert created.json()["key"] == "channel"
    duplicate = api.post(
        "/api/v1/custom-fields", {"object_type": "deal", "label": "Channel", "field_type": "text"}
    )
    assert duplicate.status_code == 422 and "key" in duplicate.json()["error"]["fields"]
    patched = api.patch(f"/api/v1/custom-fields/{field_id}", {"options": ["Web", "Partner"]})
    assert patched.json()["options"] == ["Web", "Partner"]
    listed = api.get("/api/v1/custom-fields", object_type="deal").json()
    assert [f["key"] for f in listed] == ["channel"]
    deal = api.post("/api/v1/deals", {"name": "D", "custom": {"channel": "partner"}})
    assert deal.json()["custom"] == {"channel": "Partner"}
    assert api.delete(f"/api/v1/custom-fields/{field_id}").status_code == 204
    assert Deal.objects.for_workspace(workspace).get().custom == {}
    foreign = services.create_custom_field(
        workspace=WorkspaceFactory(), object_type="deal", label="X", field_type="text"
    )
    assert api.delete(f"/api/v1/custom-fields/{foreign.pk}").status_code == 404


def test_contact_list_api_stays_free_of_n_plus_one(api, workspace, django_assert_max_num_queries):
    for i in range(20):
        contact = ContactFactory(workspace=workspace, first_name=f"P{i}")
        contact.other_companies.add(CompanyFactory(workspace=workspace))
    with django_assert_max_num_queries(8):
        items = api.get("/api/v1/contacts").json()["items"]
    assert len(items) == 20 and all(len(item["other_company_ids"]) == 1 for item in items)
