"""The contacts and companies API."""

from __future__ import annotations

import pytest

from patron.crm.models import Contact
from tests.factories import CompanyFactory, ContactFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_contact_crud(api, workspace, owner):
    company = CompanyFactory(workspace=workspace)
    created = api.post(
        "/api/v1/contacts",
        {
            "first_name": "Budi",
            "email": "Budi@Example.id",
            "company_id": company.pk,
            "owner_id": owner.pk,
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["email"] == "budi@example.id" and body["company_id"] == company.pk
    contact_id = body["id"]
    assert api.get(f"/api/v1/contacts/{contact_id}").json()["first_name"] == "Budi"
    patched = api.patch(f"/api/v1/contacts/{contact_id}", {"lifecycle_stage": "customer"})
    assert patched.json()["lifecycle_stage"] == "customer"
    assert patched.json()["first_name"] == "Budi"  # untouched fields stay
    assert api.delete(f"/api/v1/contacts/{contact_id}").status_code == 204
    assert api.get(f"/api/v1/contacts/{contact_id}").status_code == 404


def test_contact_validation_and_duplicates(api, workspace):
    bad = api.post("/api/v1/contacts", {"email": "not-an-email", "lifecycle_stage": "vip"})
    assert bad.status_code == 422
    assert {"email", "lifecycle_stage"} <= set(bad.json()["error"]["fields"])
    first = api.post("/api/v1/contacts", {"email": "x@example.com"}).json()
    dup = api.post("/api/v1/contacts", {"email": "X@example.com"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "duplicate"
    assert str(first["id"]) in dup.json()["error"]["message"]


def test_references_to_other_workspaces_are_refused(api, workspace):
    foreign_company = CompanyFactory(workspace=WorkspaceFactory())
    response = api.post("/api/v1/contacts", {"first_name": "A", "company_id": foreign_company.pk})
    assert response.status_code == 422 and "company_id" in response.json()["error"]["fields"]
    stranger = UserFactory()
    response = api.post("/api/v1/contacts", {"first_name": "A", "owner_id": stranger.pk})
    assert response.status_code == 422 and "owner_id" in response.json()["error"]["fields"]
    foreign_contact = ContactFactory(workspace=foreign_company.workspace)
    assert api.get(f"/api/v1/contacts/{foreign_contact.pk}").status_code == 404
    assert (
        api.patch(f"/api/v1/contacts/{foreign_contact.pk}", {"first_name": "Z"}).status_code == 404
    )
    assert api.delete(f"/api/v1/contacts/{foreign_contact.pk}").status_code == 404
    assert Contact.objects.unscoped().get(pk=foreign_contact.pk).first_name != "Z"


def test_contact_filters_and_pages(api, workspace):
    company = CompanyFactory(workspace=workspace)
    ContactFactory(
        workspace=workspace,
        first_name="Tran",
        last_name="Le",
        email="tran@example.vn",
        company=company,
    )
    ContactFactory(
        workspace=workspace, first_name="Tina", last_name="Ong", email="tina@example.com"
    )
    ContactFactory(
        workspace=workspace,
        first_name="Bob",
        last_name="Wu",
        email="bob@example.com",
        lifecycle_stage="customer",
    )
    ContactFactory(
        workspace=WorkspaceFactory(), first_name="Tom", last_name="Ng", email="tom@example.com"
    )

    def names(**p):
        return sorted(c["first_name"] for c in api.get("/api/v1/contacts", **p).json()["items"])

    assert names(q="t") == ["Tina", "Tran"]
    assert names(company_id=company.pk) == ["Tran"]
    assert names(lifecycle_stage="customer") == ["Bob"]
    assert names(email="TINA@example.com") == ["Tina"]
    page = api.get("/api/v1/contacts", limit=2).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = api.get("/api/v1/contacts", limit=2, cursor=page["next_cursor"]).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None


def test_company_crud_and_validation(api, workspace):
    assert api.post("/api/v1/companies", {"name": ""}).status_code == 422
    assert api.post("/api/v1/companies", {"name": "X", "size": -1}).status_code == 422
    created = api.post(
        "/api/v1/companies",
        {"name": "Warung", "domain": "Warung.ID", "annual_revenue": "1250000.50"},
    )
    assert created.status_code == 201
    company_id = created.json()["id"]
    assert created.json()["domain"] == "warung.id"
    assert api.get("/api/v1/companies", q="war").json()["items"][0]["id"] == company_id
    assert (
        api.patch(f"/api/v1/companies/{company_id}", {"industry": "Food"}).json()["industry"]
        == "Food"
    )
    assert api.delete(f"/api/v1/companies/{company_id}").status_code == 204
