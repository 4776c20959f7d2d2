"""Finding duplicates and merging two contacts or companies."""

from __future__ import annotations

import pytest

from patron.activity.models import Event
from patron.activity.services import record
from patron.crm import merge, services
from patron.crm.models import Company, Contact, ContactEmail, Note, Task
from tests.factories import CompanyFactory, ContactFactory, DealFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(workspace, owner):
    services.create_custom_field(
        workspace=workspace, object_type="contact", label="Tier", field_type="text"
    )
    acme = CompanyFactory(workspace=workspace, name="Acme")
    kopi = CompanyFactory(workspace=workspace, name="Kopi")
    primary = services.create_contact(
        workspace=workspace,
        first_name="Ana",
        last_name="Silva",
        email="ana@acme.example",
        company=acme,
        phone="",
        custom={"tier": "Gold"},
    )
    other = services.create_contact(
        workspace=workspace,
        first_name="Ana",
        last_name="Silva",
        email="ana.silva@home.example",
        other_emails=["ana@old.example"],
        company=kopi,
        phone="+351 21 000",
        owner=owner,
    )
    return primary, other


def test_duplicates_are_found_by_name_and_phone(workspace, pair):
    ContactFactory(workspace=workspace, first_name="Bo", last_name="Li", phone="555")
    ContactFactory(workspace=workspace, first_name="Cy", last_name="Ng", phone="555")
    ContactFactory(workspace=WorkspaceFactory(), first_name="Ana", last_name="Silva")
    pairs = merge.duplicate_contacts(workspace)
    names = sorted(sorted((a.first_name, b.first_name)) for a, b in pairs)
    assert names == [["Ana", "Ana"], ["Bo", "Cy"]]
    CompanyFactory(workspace=workspace, name="Teh", domain="teh.example")
    CompanyFactory(workspace=workspace, name="Teh Ltd", domain="teh.example")
    CompanyFactory(workspace=workspace, name="acme", domain="")
    companies = merge.duplicate_companies(workspace)
    assert sorted(sorted((a.name, b.name)) for a, b in companies) == [
        ["Acme", "acme"],
        ["Teh", "Teh Ltd"],
    ]


def test_merging_contacts_keeps_chosen_values_and_moves_everything(workspace, owner, pair):
    primary, other = pair
    record(workspace=workspace, kind="page.viewed", contact_id=other.pk, properties={"url": "/"})
    Note.objects.create(workspace=workspace, contact=other, body="<p>met at the fair</p>")
    Task.objects.create(workspace=workspace, contact=other, title="Call back")
    deal = DealFactory(workspace=workspace)
    deal.contacts.add(other)
    both = DealFactory(workspace=workspace)
    both.contacts.add(other, primary)
    services.add_tags(record_=other, names=["vip"])
    services.add_tags(record_=primary, names=["vip", "newsletter"])

    kept = merge.merge_contacts(
        primary=primary,
        other=other,
        picks={"email": "other", "owner": "other", "phone": "other"},
        actor=owner,
    )
    assert kept.pk == primary.pk
    assert not Contact.objects.for_workspace(workspace).filter(pk=other.pk).exists()
    kept.refresh_from_db()
    assert kept.email == "ana.silva@home.example" and kept.owner == owner
    assert kept.phone == "+351 21 000" and kept.custom == {"tier": "Gold"}
    assert sorted(
        ContactEmail.objects.for_workspace(workspace).values_list("email", flat=True)
    ) == [
        "ana@acme.example",
        "ana@old.example",
    ]
    assert services.find_contact_by_email(workspace, "ana@old.example") == kept
    assert kept.company.name == "Acme"
    assert [c.name for c in kept.other_companies.all()] == ["Kopi"]
    assert kept.notes.get().body == "<p>met at the fair</p>"
    assert kept.tasks.get().title == "Call back"
    assert set(kept.deals.all()) == {deal, both}
    assert sorted(kept.tags.values_list("name", flat=True)) == ["newsletter", "vip"]
    events = Event.objects.for_workspace(workspace)
    assert not events.filter(contact_id=other.pk).exists()
    assert events.filter(contact_id=kept.pk, kind="page.viewed").exists()
    merged = events.get(kind="contact.merged")
    assert merged.contact_id == kept.pk and merged.properties["email"] == "ana.silva@home.example"


def test_a_merge_needs_two_contacts_of_one_workspace(workspace, pair):
    primary, _other = pair
    with pytest.raises(merge.MergeInvalid):
        merge.merge_contacts(primary=primary, other=primary)
    stranger = ContactFactory(workspace=WorkspaceFactory())
    with pytest.raises(merge.MergeInvalid):
        merge.merge_contacts(primary=primary, other=stranger)


def test_merging_companies_moves_people_and_deals(workspace, owner):
    kept = CompanyFactory(workspace=workspace, name="Kopi", domain="", industry="")
    gone = CompanyFactory(
        workspace=workspace, name="Kopi Co", domain="kopi.example", industry="Food"
    )
    person = ContactFactory(workspace=workspace, company=gone)
    also = ContactFactory(workspace=workspace)
    also.other_companies.add(gone)
    deal = DealFactory(workspace=workspace, company=gone)
    merged = merge.merge_companies(primary=kept, other=gone, actor=owner)
    merged.refresh_from_db()
    assert merged.domain == "kopi.example" and merged.industry == "Food"  # empty took theirs
    assert merged.name == "Kopi"
    person.refresh_from_db()
    deal.refresh_from_db()
    assert person.company == merged and deal.company == merged
    assert list(also.other_companies.all()) == [merged]
    assert not Company.objects.for_workspace(workspace).filter(pk=gone.pk).exists()


def test_merge_pages(logged_in, workspace, pair):
    primary, other = pair
    listing = logged_in.get("/contacts/duplicates/").content.decode()
    assert "Compare and merge" in listing and "ana.silva@home.example" in listing
    page = logged_in.get("/contacts/merge/", {"a": primary.pk, "b": "ana.silva@home.example"})
    html = page.content.decode()
    assert "Merge Ana Silva into Ana Silva" in html and 'name="pick_cf_tier"' in html
    response = logged_in.post(
        f"/contacts/merge/?a={primary.pk}&b={other.pk}",
        {"pick_email": "other", "pick_first_name": "primary"},
    )
    assert response.url == f"/contacts/{primary.pk}/"
    primary.refresh_from_db()
    assert primary.email == "ana.silva@home.example"
    assert not Contact.objects.for_workspace(workspace).filter(pk=other.pk).exists()
    missing = logged_in.get("/contacts/merge/", {"a": primary.pk, "b": "nobody@example.com"})
    assert missing.status_code == 302
    foreign = ContactFactory(workspace=WorkspaceFactory())
    response = logged_in.get("/contacts/merge/", {"a": primary.pk, "b": foreign.pk}, follow=True)
    assert "Choose two different contacts" in response.content.decode()
    assert logged_in.get("/companies/duplicates/").status_code == 200


def test_a_new_company_with_a_known_domain_is_offered_the_existing_one(logged_in, workspace):
    existing = CompanyFactory(workspace=workspace, name="Kopi Co", domain="kopi.example")
    offered = logged_in.post(
        "/companies/new/", {"name": "Kopi", "domain": "https://www.kopi.example/"}
    )
    page = offered.content.decode()
    assert "A company with this domain exists already" in page
    assert f"/companies/{existing.pk}/" in page and 'name="create_anyway"' in page
    assert Company.objects.for_workspace(workspace).count() == 1
    logged_in.post(
        "/companies/new/", {"name": "Kopi", "domain": "kopi.example", "create_anyway": "on"}
    )
    assert Company.objects.for_workspace(workspace).count() == 2


def test_a_company_timeline_includes_people_linked_as_other_company(logged_in, workspace):
    company = CompanyFactory(workspace=workspace, name="Teh")
    linked = ContactFactory(workspace=workspace, first_name="Linked")
    linked.other_companies.add(company)
    record(
        workspace=workspace, kind="page.viewed", contact_id=linked.pk, properties={"url": "/teh"}
    )
    page = logged_in.get(f"/companies/{company.pk}/").content.decode()
    assert "Linked" in page and "/teh" in page
