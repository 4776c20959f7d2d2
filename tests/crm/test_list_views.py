"""The contact list: owner filter, columns, saved views, bulk actions."""

from __future__ import annotations

import csv
import io

import pytest

from patron.activity.models import Event
from patron.core.models import AuditEntry
from patron.core.roles import Role
from patron.crm import services
from patron.crm.models import Contact, SavedView
from tests.conftest import member
from tests.factories import PASSWORD, ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(workspace, owner):
    services.create_custom_field(
        workspace=workspace,
        object_type="contact",
        label="Tier",
        field_type="single_select",
        options=["Bronze", "Gold"],
    )
    return {
        "mine": services.create_contact(
            workspace=workspace, first_name="Mina", owner=owner, custom={"tier": "Gold"}
        ),
        "nobody": services.create_contact(workspace=workspace, first_name="Noor"),
    }


def test_owner_filter_and_columns(logged_in, people):
    mine = logged_in.get("/contacts/", {"owner": "me"}).content.decode()
    assert "Mina" in mine and ">Noor<" not in mine
    without = logged_in.get("/contacts/", {"owner": "none"}).content.decode()
    assert "Noor" in without and ">Mina<" not in without
    page = logged_in.get("/contacts/", {"col": ["cf_tier", "score"]}).content.decode()
    header = page[page.index('id="contacts"') :]
    assert '<th scope="col">Tier</th>' in header and '<th scope="col">Score</th>' in header
    assert '<th scope="col">Email</th>' not in header and "Gold" in header


def test_saved_views_keep_filters_and_columns(logged_in, workspace, owner, people):
    from django.test import Client

    response = logged_in.post(
        "/contacts/views/",
        {"name": "My gold", "query_string": "owner=me&cf_tier=Gold&cols=email,cf_tier&evil=1"},
    )
    view = SavedView.objects.for_workspace(workspace).get()
    assert response.url == f"/contacts/?view={view.pk}"
    assert view.query == {"owner": "me", "cf_tier": "Gold", "cols": "email,cf_tier"}
    page = logged_in.get("/contacts/", {"view": view.pk}).content.decode()
    assert "Mina" in page and ">Noor<" not in page and "My gold" in page
    # Parameters in the URL override the view's.
    wider = logged_in.get("/contacts/", {"view": view.pk, "owner": "", "cf_tier": ""})
    assert "Noor" in wider.content.decode()
    # A personal view is nobody else's; a shared one everybody's.
    colleague = member(workspace, Role.SALES)
    client = Client()
    client.force_login(colleague)
    assert "My gold" not in client.get("/contacts/").content.decode()
    assert client.post(f"/contacts/views/{view.pk}/delete/").status_code == 404
    services.save_view(
        workspace=workspace, owner=owner, name="Team", query={"stage": "lead"}, shared=True
    )
    shared = SavedView.objects.for_workspace(workspace).get(name="Team")
    assert "Team" in client.get("/contacts/").content.decode()
    client.post(f"/contacts/views/{shared.pk}/delete/")
    assert SavedView.objects.for_workspace(workspace).filter(pk=shared.pk).exists()
    logged_in.post(f"/contacts/views/{shared.pk}/delete/")  # its owner may
    assert not SavedView.objects.for_workspace(workspace).filter(pk=shared.pk).exists()
    empty = logged_in.post("/contacts/views/", {"name": " ", "query_string": ""}, follow=True)
    assert "Give the view a name" in empty.content.decode()


def test_bulk_actions_change_only_the_ticked_contacts(logged_in, workspace, owner, people):
    colleague = member(workspace, Role.SALES, email="sam@acme.example")
    ids = [people["mine"].pk, people["nobody"].pk]
    other = ContactFactory(workspace=workspace, first_name="Untouched")
    foreign = ContactFactory(workspace=WorkspaceFactory(), first_name="Foreign")

    logged_in.post(
        "/contacts/bulk/",
        {"ids": [*ids, foreign.pk], "action": "apply", "change": "tag", "tag": "fair"},
    )
    assert sorted(
        Contact.objects.for_workspace(workspace)
        .filter(tags__name="fair")
        .values_list("first_name", flat=True)
    ) == ["Mina", "Noor"]
    assert not foreign.tags.exists()

    logged_in.post(
        "/contacts/bulk/",
        {"ids": ids, "action": "apply", "change": "assign", "owner": colleague.pk},
    )
    assert set(
        Contact.objects.for_workspace(workspace)
        .filter(pk__in=ids)
        .values_list("owner_id", flat=True)
    ) == {colleague.pk}
    events = Event.objects.for_workspace(workspace).filter(
        kind="contact.field_changed", properties__bulk=True
    )
    assert sorted(events.values_list("contact_id", flat=True)) == sorted(ids)

    logged_in.post(
        "/contacts/bulk/", {"ids": ids, "action": "apply", "change": "stage", "stage": "customer"}
    )
    assert set(
        Contact.objects.for_workspace(workspace)
        .filter(pk__in=ids)
        .values_list("lifecycle_stage", flat=True)
    ) == {"customer"}
    refused = logged_in.post(
        "/contacts/bulk/",
        {"ids": ids, "action": "apply", "change": "stage", "stage": "vip"},
        follow=True,
    )
    assert "Choose a lifecycle stage" in refused.content.decode()

    export = logged_in.post("/contacts/bulk/", {"ids": ids, "action": "apply", "change": "export"})
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert sorted(row[1] for row in rows[1:]) == ["Mina", "Noor"]
    audited = AuditEntry.objects.filter(workspace=workspace, action="data.exported").latest("pk")
    assert sorted(audited.data["ids"]) == sorted(str(pk) for pk in ids)

    logged_in.post("/contacts/bulk/", {"ids": ids, "action": "delete"})
    assert list(Contact.objects.for_workspace(workspace).values_list("first_name", flat=True)) == [
        other.first_name
    ]
    assert Contact.objects.unscoped().filter(pk=foreign.pk).exists()


def test_bulk_actions_need_the_edit_permission(client, workspace, people):
    agency = member(workspace, Role.AGENCY)
    support = member(workspace, Role.SUPPORT)
    client.login(email=support.email, password=PASSWORD)
    # Support may edit contacts but not export them.
    response = client.post(
        "/contacts/bulk/",
        {"ids": [people["mine"].pk], "action": "apply", "change": "export"},
        follow=True,
    )
    assert "may not export" in response.content.decode()
    client.logout()
    client.login(email=agency.email, password=PASSWORD)
    page = client.get("/contacts/").content.decode()
    assert 'id="bulk-form"' in page  # agencies edit contacts
    assert "Export to CSV" not in page


def test_company_list_filters_views_and_bulk(logged_in, workspace, owner):
    from patron.crm.models import Company

    services.create_custom_field(
        workspace=workspace,
        object_type="company",
        label="Plan",
        field_type="single_select",
        options=["Free", "Pro"],
    )
    pro = services.create_company(workspace=workspace, name="Pro Co", custom={"plan": "Pro"})
    free = services.create_company(
        workspace=workspace, name="Free Co", custom={"plan": "Free"}, owner=owner
    )
    page = logged_in.get("/companies/", {"cf_plan": "Pro"}).content.decode()
    assert "Pro Co" in page and "Free Co" not in page
    mine = logged_in.get("/companies/", {"owner": "me"}).content.decode()
    assert "Free Co" in mine and "Pro Co" not in mine
    logged_in.post("/companies/views/", {"name": "Paying", "query_string": "cf_plan=Pro"})
    view = SavedView.objects.for_workspace(workspace).get(object_type="company")
    assert "Pro Co" in logged_in.get("/companies/", {"view": view.pk}).content.decode()
    assert "Paying" not in logged_in.get("/contacts/").content.decode()  # a company view only
    logged_in.post(
        "/companies/bulk/",
        {"ids": [pro.pk, free.pk], "action": "apply", "change": "tag", "tag": "partner"},
    )
    assert set(
        Company.objects.for_workspace(workspace)
        .filter(tags__name="partner")
        .values_list("pk", flat=True)
    ) == {pro.pk, free.pk}
    logged_in.post(
        "/companies/bulk/",
        {"ids": [pro.pk], "action": "apply", "change": "assign", "owner": owner.pk},
    )
    pro.refresh_from_db()
    assert pro.owner == owner
    tagged = logged_in.get("/companies/", {"tag": "partner", "sort": "-created"}).content.decode()
    assert tagged.index("Free Co") < tagged.index("Pro Co")
    logged_in.post("/companies/bulk/", {"ids": [free.pk], "action": "delete"})
    assert list(Company.objects.for_workspace(workspace).values_list("name", flat=True)) == [
        "Pro Co"
    ]


def test_conditions_on_any_custom_field(logged_in, workspace):
    services.create_custom_field(
        workspace=workspace, object_type="contact", label="Seats", field_type="number"
    )
    services.create_custom_field(
        workspace=workspace, object_type="contact", label="Renewal", field_type="date"
    )
    services.create_contact(workspace=workspace, first_name="Big", custom={"seats": 40})
    services.create_contact(
        workspace=workspace, first_name="Small", custom={"seats": 3, "renewal": "2027-01-01"}
    )
    page = logged_in.get(
        "/contacts/", {"cond_field": "seats", "cond_op": "gt", "cond_value": "10"}
    ).content.decode()
    assert ">Big<" in page and ">Small<" not in page
    assert "Seats is greater than 10" in page  # the chip
    assert 'name="cf_seats__gt" value="10"' in page  # kept for the next change
    both = logged_in.get(
        "/contacts/", {"cf_seats__gt": "1", "cond_field": "renewal", "cond_op": "empty"}
    ).content.decode()
    assert ">Big<" in both and ">Small<" not in both
    refused = logged_in.get("/contacts/", {"cf_seats__contains": "4"}).content.decode()
    assert "does not fit the field type" in refused and ">Small<" in refused
    logged_in.post(
        "/contacts/views/", {"name": "Large accounts", "query_string": "cf_seats__gt=10"}
    )
    view = SavedView.objects.for_workspace(workspace).get(name="Large accounts")
    assert view.query == {"cf_seats__gt": "10"}
    saved = logged_in.get("/contacts/", {"view": view.pk}).content.decode()
    assert ">Big<" in saved and ">Small<" not in saved
    count = logged_in.get("/contacts/count/", {"cf_seats__lt": "5"}).content.decode()
    assert count == "1 contact"


def _head(page: str, table: str) -> str:
    return page[page.index(f'id="{table}"') : page.index("</thead>")]


def test_company_columns(logged_in, workspace, owner):
    services.create_custom_field(
        workspace=workspace, object_type="company", label="Plan", field_type="text"
    )
    services.create_company(
        workspace=workspace, name="Pro Co", city="Lyon", owner=owner, custom={"plan": "Pro"}
    )
    default = logged_in.get("/companies/").content.decode()
    assert '<th scope="col">Domain</th>' in _head(default, "companies")
    assert '<th scope="col" class="text-end">Employees</th>' in _head(default, "companies")
    page = logged_in.get("/companies/", {"col": ["city", "owner", "cf_plan"]}).content.decode()
    header = _head(page, "companies")
    assert '<th scope="col">City</th>' in header and '<th scope="col">Plan</th>' in header
    assert "Domain" not in header
    assert "<td>Lyon</td>" in page and "<td>Olivia Owner</td>" in page and "<td>Pro</td>" in page
    logged_in.post("/companies/views/", {"name": "Where", "query_string": "cols=city,cf_plan"})
    view = SavedView.objects.for_workspace(workspace).get(object_type="company")
    assert view.query == {"cols": "city,cf_plan"}
    saved = logged_in.get("/companies/", {"view": view.pk}).content.decode()
    assert '<th scope="col">City</th>' in _head(saved, "companies")


def test_deal_columns_sort_and_conditions(logged_in, workspace, owner):
    services.create_custom_field(
        workspace=workspace, object_type="deal", label="Seats", field_type="number"
    )
    services.create_deal(workspace=workspace, name="Small", amount=100, custom={"seats": 3})
    services.create_deal(
        workspace=workspace, name="Large", amount=9000, owner=owner, custom={"seats": 40}
    )
    page = logged_in.get("/deals/list/", {"col": ["cf_seats", "pipeline"], "sort": "-amount"})
    html = page.content.decode()
    header = _head(html, "deals")
    assert '<th scope="col">Seats</th>' in header and '<th scope="col">Pipeline</th>' in header
    assert "Stage" not in header and "<td>40</td>" in html
    assert html.index(">Large<") < html.index(">Small<")
    assert "sort=-amount&amp;cols=cf_seats%2Cpipeline" in html
    bigger = logged_in.get(
        "/deals/list/", {"cond_field": "seats", "cond_op": "gt", "cond_value": "10"}
    ).content.decode()
    assert ">Large<" in bigger and ">Small<" not in bigger and "Seats is greater than 10" in bigger
    mine = logged_in.get("/deals/list/", {"owner": str(owner.pk)}).content.decode()
    assert ">Large<" in mine and ">Small<" not in mine


def test_bulk_move_deals_to_a_stage(logged_in, workspace, owner):
    from patron.activity.models import Event
    from patron.crm.models import Deal
    from tests.factories import make_pipeline

    pipeline = services.default_pipeline(workspace)
    won = pipeline.stages.get(outcome="won")
    contact = ContactFactory(workspace=workspace)
    first = services.create_deal(workspace=workspace, name="First", contacts=[contact])
    second = services.create_deal(workspace=workspace, name="Second")
    other = services.create_deal(
        workspace=workspace, name="Elsewhere", pipeline=make_pipeline(workspace, "Partners")
    )
    response = logged_in.post(
        "/deals/bulk/",
        {
            "ids": [first.pk, second.pk, other.pk],
            "action": "apply",
            "change": "stage",
            "deal_stage": won.pk,
        },
        follow=True,
    )
    html = response.content.decode()
    assert "2 records changed." in html and "1 deal is in another pipeline" in html
    deals = Deal.objects.for_workspace(workspace)
    assert set(deals.filter(stage=won).values_list("name", flat=True)) == {"First", "Second"}
    assert all(d.closed_at is not None for d in deals.filter(stage=won))
    assert deals.get(pk=other.pk).stage_id == other.stage_id
    events = Event.objects.for_workspace(workspace).filter(kind="deal.stage_changed")
    assert sorted((e.source_id, e.contact_id) for e in events) == sorted(
        [(str(first.pk), contact.pk), (str(second.pk), None)]
    )
    first_event = events.get(source_id=str(first.pk))
    assert first_event.actor_id == owner.pk
    assert first_event.properties["from_stage"] == first.stage.name
    assert (
        first_event.properties["to_stage"] == "Won" and first_event.properties["outcome"] == "won"
    )
    # The board shows them first in their new column, as a single move does.
    assert {d.position for d in deals.filter(stage=won)} == {0}  # the empty column's top
    # A stage of another workspace is no stage at all.
    foreign_stage = services.default_pipeline(WorkspaceFactory()).stages.first()
    refused = logged_in.post(
        "/deals/bulk/",
        {"ids": [first.pk], "action": "apply", "change": "stage", "deal_stage": foreign_stage.pk},
        follow=True,
    )
    assert "Choose the stage to move the deals to." in refused.content.decode()
    assert deals.get(pk=first.pk).stage_id == won.pk
    # The form offers the stages by pipeline.
    page = logged_in.get("/deals/list/").content.decode()
    assert '<optgroup label="Partners">' in page and 'name="deal_stage"' in page


def test_bulk_moves_never_touch_another_workspace(logged_in, workspace):
    from patron.crm.models import Deal

    elsewhere = WorkspaceFactory()
    foreign = services.create_deal(workspace=elsewhere, name="Foreign")
    mine = services.create_deal(workspace=workspace, name="Mine")
    won = mine.pipeline.stages.get(outcome="won")
    logged_in.post(
        "/deals/bulk/",
        {"ids": [foreign.pk], "action": "apply", "change": "stage", "deal_stage": won.pk},
    )
    logged_in.post("/deals/bulk/", {"ids": [foreign.pk], "action": "delete"})
    row = Deal.objects.unscoped().get(pk=foreign.pk)
    assert row.stage_id == foreign.stage_id


def test_bulk_on_every_contact_that_matches(logged_in, workspace, owner, people):
    ContactFactory(workspace=WorkspaceFactory(), first_name="Foreign")
    form = {
        "scope": "all",
        "action": "apply",
        "change": "tag",
        "tag": "everyone",
        "query_string": "owner=none",
    }
    page = logged_in.post("/contacts/bulk/", form).content.decode()
    assert "Change 1 record" in page and "Add the tag “everyone”" in page
    assert 'name="ids"' not in page and 'name="query_string" value="owner=none"' in page
    logged_in.post("/contacts/bulk/", {**form, "confirmed": "yes"})
    tagged = Contact.objects.unscoped().filter(tags__name="everyone")
    assert list(tagged.values_list("first_name", flat=True)) == ["Noor"]
    # A saved view's filters are in the list's query string, so "every match" follows them.
    export = logged_in.post(
        "/contacts/bulk/",
        {"scope": "all", "action": "apply", "change": "export", "query_string": "cf_tier=Gold"},
    )
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [row[1] for row in rows[1:]] == ["Mina"]
    # The audit log keeps what chose the rows.
    audited = AuditEntry.objects.filter(workspace=workspace, action="data.exported").latest("pk")
    assert audited.data == {"filters": {"cf_tier": "Gold"}, "ids": [], "rows": 1}


def test_views_keep_the_new_list_parameters():
    query = {
        "status": "open",
        "priority": "high",
        "assignee": "me",
        "sla": "breached",
        "due": "overdue",
        "who": "everyone",
        "segment": "3",
        "page": "2",
    }
    assert services.clean_view_query(query) == {k: v for k, v in query.items() if k != "page"}


def test_bulk_on_every_company_that_matches(logged_in, workspace):
    from patron.crm.models import Company

    acme = services.create_company(workspace=workspace, name="Acme Tools")
    ContactFactory(workspace=workspace, company=acme)
    services.create_company(workspace=workspace, name="Acme Foods")
    services.create_company(workspace=workspace, name="Bolt")
    foreign = services.create_company(workspace=WorkspaceFactory(), name="Acme Abroad")
    form = {
        "scope": "all",
        "action": "apply",
        "change": "tag",
        "tag": "acme",
        "query_string": "q=acme",
    }
    logged_in.post("/companies/bulk/", {**form, "confirmed": "yes"})
    tagged = Company.objects.unscoped().filter(tags__name="acme")
    assert sorted(tagged.values_list("name", flat=True)) == ["Acme Foods", "Acme Tools"]
    delete = {"scope": "all", "action": "delete", "query_string": "q=acme"}
    assert "Delete 2 records" in logged_in.post("/companies/bulk/", delete).content.decode()
    logged_in.post("/companies/bulk/", {**delete, "confirmed": "yes"})
    assert list(Company.objects.for_workspace(workspace).values_list("name", flat=True)) == ["Bolt"]
    assert Company.objects.unscoped().filter(pk=foreign.pk).exists()
