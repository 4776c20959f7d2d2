"""Contact and company pages."""

from __future__ import annotations

import pytest

from patron.activity.services import record
from patron.core.roles import Role
from patron.crm.models import Company, Contact
from tests.conftest import member
from tests.factories import PASSWORD, CompanyFactory, ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_contact_list_searches_filters_and_stays_n_plus_one_free(
    logged_in, workspace, owner, django_assert_max_num_queries
):
    company = CompanyFactory(workspace=workspace, name="Kopi Co")
    for i in range(30):
        ContactFactory(
            workspace=workspace,
            first_name=f"Person{i}",
            last_name="Kim",
            company=company,
            owner=owner,
        )
    ContactFactory(
        workspace=workspace, first_name="Zed", email="zed@example.com", lifecycle_stage="customer"
    )
    ContactFactory(workspace=WorkspaceFactory(), first_name="Hidden")
    with django_assert_max_num_queries(13):  # the 13th reads the lists for "Add to list"
        page = logged_in.get("/contacts/").content.decode()
    assert "Person0" in page and "Kopi Co" in page and "Hidden" not in page
    assert logged_in.get("/contacts/count/").content.decode() == "31 contacts"
    found = logged_in.get("/contacts/", {"q": "zed"}).content.decode()
    assert "zed@example.com" in found and "Person0" not in found
    stage = logged_in.get("/contacts/", {"stage": "customer"}).content.decode()
    assert "Zed" in stage and "Person0" not in stage
    partial = logged_in.get("/contacts/", {"q": "zed"}, headers={"HX-Request": "true"})
    assert "<html" not in partial.content.decode() and "Zed" in partial.content.decode()


def test_contact_detail_shows_fields_and_timeline(logged_in, workspace):
    contact = ContactFactory(workspace=workspace, first_name="Lan", email="lan@example.vn")
    record(
        workspace=workspace,
        kind="page.viewed",
        contact_id=contact.pk,
        properties={"url": "/pricing"},
    )
    record(
        workspace=workspace,
        kind="email.opened",
        contact_id=contact.pk,
        properties={"subject": "Hello"},
    )
    other = ContactFactory(workspace=workspace)
    record(
        workspace=workspace,
        kind="page.viewed",
        contact_id=other.pk,
        properties={"url": "/not-lans-page"},
    )
    page = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    assert "lan@example.vn" in page and "/pricing" in page and "Email opened" in page
    assert "/not-lans-page" not in page
    filtered = logged_in.get(f"/contacts/{contact.pk}/", {"kind": "email.opened"}).content.decode()
    assert "Email opened" in filtered and "/pricing" not in filtered


def test_create_edit_and_delete_a_contact(logged_in, workspace):
    empty = logged_in.post("/contacts/new/", {"lifecycle_stage": "lead"})
    assert "Give at least a name or an email address." in empty.content.decode()
    response = logged_in.post(
        "/contacts/new/",
        {"first_name": "Dewi", "email": "dewi@example.id", "lifecycle_stage": "lead"},
    )
    contact = Contact.objects.for_workspace(workspace).get()
    assert response["Location"] == f"/contacts/{contact.pk}/"
    dup = logged_in.post(
        "/contacts/new/",
        {"first_name": "Again", "email": "DEWI@example.id", "lifecycle_stage": "lead"},
    )
    assert "already exists" in dup.content.decode()
    assert f'href="/contacts/{contact.pk}/"' in dup.content.decode()
    logged_in.post(
        f"/contacts/{contact.pk}/edit/",
        {
            "first_name": "Dewi",
            "last_name": "Lestari",
            "email": "dewi@example.id",
            "lifecycle_stage": "customer",
        },
    )
    contact.refresh_from_db()
    assert (contact.last_name, contact.lifecycle_stage) == ("Lestari", "customer")
    assert logged_in.get(f"/contacts/{contact.pk}/delete/").status_code == 405
    logged_in.post(f"/contacts/{contact.pk}/delete/")
    assert not Contact.objects.for_workspace(workspace).exists()


def test_a_company_from_another_workspace_cannot_be_chosen(logged_in, workspace):
    foreign = CompanyFactory(workspace=WorkspaceFactory())
    response = logged_in.post(
        "/contacts/new/", {"first_name": "X", "company": foreign.pk, "lifecycle_stage": "lead"}
    )
    assert "Select a valid choice" in response.content.decode()
    assert not Contact.objects.for_workspace(workspace).exists()


def test_company_pages(logged_in, workspace, django_assert_max_num_queries):
    logged_in.post(
        "/companies/new/", {"name": "Bánh Mì Co", "domain": "https://www.banhmi.vn/menu"}
    )
    company = Company.objects.for_workspace(workspace).get()
    assert company.domain == "banhmi.vn"
    bad = logged_in.post("/companies/new/", {"name": "X", "domain": "not a domain"})
    assert "Enter a domain" in bad.content.decode()
    person = ContactFactory(workspace=workspace, first_name="Hoa", company=company)
    record(
        workspace=workspace,
        kind="form.submitted",
        contact_id=person.pk,
        properties={"form": "Catering request"},
    )
    for _ in range(20):
        CompanyFactory(workspace=workspace)
    with django_assert_max_num_queries(10):
        listing = logged_in.get("/companies/").content.decode()
    assert "Bánh Mì Co" in listing
    detail = logged_in.get(f"/companies/{company.pk}/").content.decode()
    assert "Hoa" in detail and "Catering request" in detail
    logged_in.post(f"/companies/{company.pk}/delete/")
    person.refresh_from_db()
    assert person.company is None


def test_read_only_roles_see_no_edit_buttons(client, workspace):
    agency = member(workspace, Role.AGENCY)
    contact = ContactFactory(workspace=workspace)
    client.login(email=agency.email, password=PASSWORD)
    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Your role does not show the activity history." in page


def test_contact_list_filters_on_custom_fields_sorts_and_caps_the_count(
    logged_in, workspace, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    from patron.crm import list_views, services

    services.create_custom_field(
        workspace=workspace,
        object_type="contact",
        label="Tier",
        field_type="single_select",
        options=["Bronze", "Gold"],
    )
    now = timezone.now()
    for name, tier, days in [("Ann", "Gold", 3), ("Bob", "Bronze", 1), ("Cat", "Gold", 1)]:
        contact = services.create_contact(
            workspace=workspace, first_name=name, custom={"tier": tier}
        )
        Contact.objects.for_workspace(workspace).filter(pk=contact.pk).update(
            last_activity_at=now - timedelta(days=days)
        )
    services.create_contact(workspace=workspace, first_name="Dan")  # never active
    page = logged_in.get("/contacts/", {"cf_tier": "Gold", "sort": "-last_activity"})
    html = page.content.decode()
    assert ">Bob<" not in html and ">Dan<" not in html
    assert html.index(">Cat<") < html.index(">Ann<")  # most recent activity first
    assert 'id="filter-cf-tier"' in html
    count = logged_in.get("/contacts/count/", {"cf_tier": "Gold"}).content.decode()
    assert count == "2 contacts"
    everyone = logged_in.get("/contacts/", {"sort": "-last_activity"}).content.decode()
    assert everyone.index(">Ann<") < everyone.index(">Dan<")  # no activity sorts last
    bad = logged_in.get("/contacts/", {"cf_tier": "Platinum"}).content.decode()
    assert "Choose one of" in bad and "Dan" in bad  # the bad filter is dropped, not applied
    monkeypatch.setattr(list_views, "COUNT_CAP", 2)
    assert logged_in.get("/contacts/count/").content.decode() == "More than 2 contacts"
