"""The list pages, the contact's Lists panel, the confirmation page, bulk actions and import."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from patron.audience import lists
from patron.audience.models import ConsentRecord, ConsentSource, MailingList, Subscription
from patron.core.roles import Role
from patron.crm import importer
from patron.crm.models import ImportJob, ImportStatus
from patron.mail.models import OutboxMessage
from tests.conftest import member
from tests.factories import PASSWORD, ContactFactory

pytestmark = pytest.mark.django_db


def statuses(mailing_list):
    return dict(
        Subscription.objects.for_workspace(mailing_list.workspace)
        .filter(mailing_list=mailing_list)
        .values_list("contact__email", "status")
    )


@pytest.fixture
def newsletter(workspace):
    return lists.create_list(workspace=workspace, name="Newsletter")


@pytest.fixture
def doi_list(workspace):
    return lists.create_list(workspace=workspace, name="Product news", double_opt_in=True)


def test_the_index_counts_members_per_status(logged_in, workspace, newsletter, doi_list):
    people = [ContactFactory(workspace=workspace, email=f"p{n}@x.test") for n in range(3)]
    consent = lists.Consent(source=ConsentSource.MANUAL)
    lists.subscribe_contacts(
        mailing_list=newsletter, contacts=[p.pk for p in people], consent=consent
    )
    lists.unsubscribe(mailing_list=newsletter, contact=people[0], consent=consent)
    lists.subscribe(mailing_list=doi_list, contact=people[1], consent=consent)
    page = logged_in.get("/lists/").content.decode()
    row = page[page.index(">Newsletter<") :]
    assert '<td class="text-end" data-status="subscribed">2</td>' in row
    assert '<td class="text-end" data-status="unsubscribed">1</td>' in row
    row = page[page.index(">Product news<") :]
    assert '<td class="text-end" data-status="pending">1</td>' in row


def test_create_and_edit_a_list_with_a_checked_template(logged_in, workspace):
    form = {
        "name": "Events",
        "public_name": "Event invitations",
        "description": "Twice a year",
        "double_opt_in": "on",
        "confirmation_subject": "Confirm {{ list.name }}",
        "confirmation_body": "Hi {{ contact.first_name }\n{{ confirm_url }}",
    }
    refused = logged_in.post("/lists/new/", form)
    assert refused.status_code == 400
    assert "Message, line 1" in refused.content.decode()
    assert not MailingList.objects.for_workspace(workspace).exists()
    form["confirmation_body"] = "Hi {{ contact.first_name }},\n{{ confirm_url }}"
    response = logged_in.post("/lists/new/", form)
    created = MailingList.objects.for_workspace(workspace).get()
    assert response.url == f"/lists/{created.pk}/"
    assert (created.public_name, created.double_opt_in) == ("Event invitations", True)
    taken = logged_in.post("/lists/new/", {**form, "name": "events"})
    assert "exists already" in taken.content.decode()
    logged_in.post(f"/lists/{created.pk}/edit/", {**form, "name": "Events 2026"})
    created.refresh_from_db()
    assert created.name == "Events 2026"


def test_the_sales_role_sees_lists_but_cannot_define_them(client: Client, workspace, newsletter):
    seller = member(workspace, Role.SALES)
    client.login(email=seller.email, password=PASSWORD)
    assert client.get("/lists/").status_code == 200
    assert client.get("/lists/new/").status_code == 403
    assert client.post(f"/lists/{newsletter.pk}/delete/", {"confirm": "yes"}).status_code == 403


def test_add_a_contact_by_search_then_unsubscribe_and_remove(logged_in, workspace, newsletter):
    ann = ContactFactory(
        workspace=workspace, first_name="Ann", last_name="Reis", email="ann@x.test"
    )
    # A fixed last name: a random one starting with "An" would match the search too.
    ContactFactory(workspace=workspace, first_name="Bob", last_name="Lobo", email="bob@x.test")
    found = logged_in.get(f"/lists/{newsletter.pk}/search/", {"email": "an"}).content.decode()
    assert "ann@x.test" in found and "bob@x.test" not in found
    logged_in.post(f"/lists/{newsletter.pk}/add/", {"contact": ann.pk})
    assert statuses(newsletter) == {"ann@x.test": "subscribed"}
    missing = logged_in.post(
        f"/lists/{newsletter.pk}/add/", {"email": "nobody@x.test"}, follow=True
    )
    assert "No contact has this email address." in missing.content.decode()
    page = logged_in.get(f"/lists/{newsletter.pk}/").content.decode()
    assert 'data-contact="ann@x.test"' in page
    logged_in.post(f"/lists/{newsletter.pk}/member/", {"contact": ann.pk, "action": "unsubscribe"})
    assert statuses(newsletter) == {"ann@x.test": "unsubscribed"}
    refused = logged_in.post(
        f"/lists/{newsletter.pk}/member/", {"contact": ann.pk, "action": "remove"}, follow=True
    )
    assert "never added back by mistake" in refused.content.decode()
    assert statuses(newsletter) == {"ann@x.test": "unsubscribed"}
    record = ConsentRecord.objects.for_workspace(workspace).filter(contact=ann).first()
    assert record.actor is not None and record.ip_address == "127.0.0.1"
    # Filtered by status, the unsubscribed tab shows Ann and the subscribed one nobody.
    assert (
        "ann@x.test"
        in logged_in.get(f"/lists/{newsletter.pk}/?status=unsubscribed").content.decode()
    )
    assert (
        "ann@x.test"
        not in logged_in.get(f"/lists/{newsletter.pk}/?status=subscribed").content.decode()
    )


def test_members_export_as_csv(logged_in, workspace, newsletter):
    ann = ContactFactory(workspace=workspace, first_name="Ann", email="ann@x.test")
    lists.subscribe(mailing_list=newsletter, contact=ann, consent=lists.Consent(source="manual"))
    response = logged_in.get(f"/lists/{newsletter.pk}/export/")
    content = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(content)))
    assert [(r["email"], r["status"]) for r in rows] == [("ann@x.test", "subscribed")]


def test_resend_confirmation_to_a_pending_member(
    logged_in, workspace, doi_list, django_capture_on_commit_callbacks
):
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    with django_capture_on_commit_callbacks(execute=True):
        logged_in.post(f"/lists/{doi_list.pk}/add/", {"contact": ann.pk})
    assert statuses(doi_list) == {"ann@x.test": "pending"}
    with django_capture_on_commit_callbacks(execute=True):
        logged_in.post(f"/lists/{doi_list.pk}/member/", {"contact": ann.pk, "action": "resend"})
        logged_in.post(f"/lists/{doi_list.pk}/resend/")
    assert OutboxMessage.objects.filter(to=["ann@x.test"]).count() == 3


def test_the_contact_panel_shows_status_and_history_and_subscribes(
    logged_in, workspace, newsletter, doi_list
):
    ann = ContactFactory(workspace=workspace, first_name="Ann", email="ann@x.test")
    lists.subscribe(
        mailing_list=newsletter,
        contact=ann,
        consent=lists.Consent(
            source=ConsentSource.FORM, consent_text="Yes please", ip_address="192.0.2.1"
        ),
    )
    page = logged_in.get(f"/contacts/{ann.pk}/").content.decode()
    assert 'id="contact-lists"' in page and "Consent history" in page
    assert "“Yes please”" in page and "192.0.2.1" in page
    panel = logged_in.post(
        f"/contacts/{ann.pk}/lists/subscribe/",
        {"list": doi_list.pk},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert panel.startswith('\n<section id="contact-lists"') or 'id="contact-lists"' in panel
    assert "Pending confirmation" in panel
    logged_in.post(f"/contacts/{ann.pk}/lists/{newsletter.pk}/unsubscribe/")
    assert statuses(newsletter) == {"ann@x.test": "unsubscribed"}


def test_the_confirmation_page_asks_before_confirming(client: Client, workspace, doi_list):
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    lists.subscribe(mailing_list=doi_list, contact=ann, consent=lists.Consent(source="manual"))
    url = f"/subscribe/confirm/{lists.confirmation_token((workspace.pk, doi_list.pk, ann.pk))}/"
    page = client.get(url)
    assert page.status_code == 200 and "Confirm my subscription" in page.content.decode()
    assert statuses(doi_list) == {"ann@x.test": "pending"}  # opening the link confirms nothing
    done = client.post(url, headers={"User-Agent": "Test browser"})
    assert "your subscription is confirmed" in done.content.decode()
    assert statuses(doi_list) == {"ann@x.test": "subscribed"}
    record = ConsentRecord.objects.for_workspace(workspace).filter(contact=ann).first()
    assert (record.source, record.user_agent) == ("confirmation", "Test browser")
    assert "confirmed already" in client.get(url).content.decode()
    forged = client.get(url.replace(url[-8:-1], "abcdefg"))
    assert forged.status_code == 400 and "not valid" in forged.content.decode()


# --- Bulk actions on the contact list ---------------------------------------------------------


def test_bulk_add_ticked_contacts_then_unsubscribe_the_filtered_set(
    logged_in, workspace, newsletter
):
    ann = ContactFactory(workspace=workspace, first_name="Ann", email="ann@x.test")
    bob = ContactFactory(workspace=workspace, first_name="Bob", email="bob@x.test")
    ContactFactory(workspace=workspace, first_name="Cy", email="cy@y.test")
    page = logged_in.get("/contacts/").content.decode()
    assert 'value="list_add"' in page and "Newsletter" in page
    response = logged_in.post(
        "/contacts/bulk/",
        {
            "action": "apply",
            "change": "list_add",
            "mailing_list": newsletter.pk,
            "ids": [ann.pk, bob.pk],
            "query_string": "",
        },
        follow=True,
    )
    assert "2 contacts subscribed to Newsletter." in response.content.decode()
    assert statuses(newsletter) == {"ann@x.test": "subscribed", "bob@x.test": "subscribed"}
    logged_in.post(
        "/contacts/bulk/",
        {
            "action": "apply",
            "change": "list_remove",
            "mailing_list": newsletter.pk,
            "scope": "all",
            "query_string": "q=bob",
            "confirmed": "yes",
        },
    )
    assert statuses(newsletter) == {"ann@x.test": "subscribed", "bob@x.test": "unsubscribed"}
    logged_in.post(
        "/contacts/bulk/",
        {
            "action": "apply",
            "change": "list_add",
            "mailing_list": newsletter.pk,
            "scope": "all",
            "confirmed": "yes",
        },
    )
    # Bob unsubscribed: a bulk action does not take him back.
    assert statuses(newsletter) == {
        "ann@x.test": "subscribed",
        "bob@x.test": "unsubscribed",
        "cy@y.test": "subscribed",
    }


# --- Import -----------------------------------------------------------------------------------


def test_an_import_subscribes_its_contacts_per_batch(
    workspace, owner, doi_list, django_capture_on_commit_callbacks
):
    ContactFactory(workspace=workspace, email="old@x.test")
    job = importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=SimpleUploadedFile(
            "people.csv", b"Email,First name\nnew@x.test,New\nold@x.test,Old\n"
        ),
        actor=owner,
    )
    with pytest.raises(importer.ImportInvalid, match="consent text"):
        importer.start_import(
            job=job,
            mapping=job.mapping,
            tags=[],
            update_existing=True,
            subscribe_list=doi_list,
            subscribe_confirmed=True,
        )
    with django_capture_on_commit_callbacks(execute=True):
        importer.start_import(
            job=job,
            mapping=job.mapping,
            tags=[],
            update_existing=True,
            subscribe_list=doi_list,
            subscribe_confirmed=True,
            consent_text="Signed up at the fair",
        )
    job = ImportJob.objects.for_workspace(workspace).get()
    assert job.status == ImportStatus.DONE
    assert statuses(doi_list) == {"new@x.test": "subscribed", "old@x.test": "subscribed"}
    records = ConsentRecord.objects.for_workspace(workspace)
    assert {(r.source, r.consent_text) for r in records} == {("import", "Signed up at the fair")}
    assert records.first().details == {"import": job.pk, "file": "people.csv"}
    assert not OutboxMessage.objects.exists()


def test_an_import_onto_a_double_opt_in_list_sends_confirmations(
    logged_in, workspace, doi_list, django_capture_on_commit_callbacks
):
    response = logged_in.post(
        "/imports/new/",
        {
            "object_type": "contact",
            "file": SimpleUploadedFile("p.csv", b"Email\nann@x.test\nbob@x.test\n"),
        },
    )
    job = ImportJob.objects.for_workspace(workspace).get()
    assert response.url == f"/imports/{job.pk}/"
    assert "Subscribe the imported contacts to" in logged_in.get(response.url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        logged_in.post(
            response.url, {"column_0": "email", "subscribe_list": doi_list.pk, "start": "1"}
        )
    assert statuses(doi_list) == {"ann@x.test": "pending", "bob@x.test": "pending"}
    assert sorted(m.to[0] for m in OutboxMessage.objects.all()) == ["ann@x.test", "bob@x.test"]
