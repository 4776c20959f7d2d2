"""Writing contacts and companies."""

from __future__ import annotations

import pytest

from patron.activity.models import Event
from patron.core.roles import Role
from patron.crm import services
from patron.crm.models import Contact
from tests.conftest import member
from tests.factories import CompanyFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_creating_a_contact_normalises_the_email_and_records_an_event(workspace, owner):
    contact = services.create_contact(
        workspace=workspace,
        actor=owner,
        first_name="Siti",
        email="  Siti@Example.ID ",
        source="website",
    )
    assert contact.email == "siti@example.id"
    event = Event.objects.for_workspace(workspace).get(contact_id=contact.pk)
    assert (event.kind, event.actor, event.properties) == (
        "contact.created",
        owner,
        {"source": "website"},
    )


def test_one_email_one_contact_per_workspace(workspace):
    first = services.create_contact(workspace=workspace, email="dup@example.com")
    with pytest.raises(services.DuplicateContact) as error:
        services.create_contact(workspace=workspace, email="DUP@example.com")
    assert error.value.existing == first
    # Another workspace may have the same person.
    services.create_contact(workspace=WorkspaceFactory(), email="dup@example.com")
    # Contacts without email do not collide.
    services.create_contact(workspace=workspace, first_name="A")
    services.create_contact(workspace=workspace, first_name="B")
    assert Contact.objects.for_workspace(workspace).count() == 3


def test_updates_record_what_changed(workspace, owner):
    contact = services.create_contact(workspace=workspace, first_name="Ann", email="a@example.com")
    services.update_contact(contact=contact, actor=owner, first_name="Anna", lifecycle_stage="lead")
    change = Event.objects.for_workspace(workspace).get(kind="contact.field_changed")
    assert change.properties == {
        "changes": {"first_name": ["Ann", "Anna"], "lifecycle_stage": ["subscriber", "lead"]}
    }
    services.update_contact(contact=contact, first_name="Anna")  # nothing changed
    assert Event.objects.for_workspace(workspace).filter(kind="contact.field_changed").count() == 1
    services.create_contact(workspace=workspace, email="b@example.com")
    with pytest.raises(services.DuplicateContact):
        services.update_contact(contact=contact, email="B@example.com")


def test_references_must_belong_to_the_workspace(workspace):
    foreign_company = CompanyFactory(workspace=WorkspaceFactory())
    with pytest.raises(services.CrossWorkspaceReference):
        services.create_contact(workspace=workspace, first_name="X", company=foreign_company)
    outsider = UserFactory()
    with pytest.raises(services.CrossWorkspaceReference):
        services.create_contact(workspace=workspace, first_name="X", owner=outsider)
    seller = member(workspace, Role.SALES)
    contact = services.create_contact(workspace=workspace, first_name="X", owner=seller)
    assert contact.owner == seller


def test_companies_normalise_their_domain(workspace):
    company = services.create_company(workspace=workspace, name="Kopi", domain="Kopi.CO.id ")
    assert company.domain == "kopi.co.id"
    assert Event.objects.for_workspace(workspace).filter(kind="company.created").exists()
    services.update_company(company=company, name="Kopi Kenangan")
    company.refresh_from_db()
    assert company.name == "Kopi Kenangan"


def test_unknown_fields_are_a_programming_error(workspace):
    with pytest.raises(TypeError):
        services.create_contact(workspace=workspace, favourite_colour="red")
