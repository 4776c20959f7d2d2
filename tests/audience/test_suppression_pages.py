"""The suppression pages: list, search and filter, add, remove, role setting, import, export."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from patron.activity.models import Event
from patron.audience import suppression
from patron.audience.models import Suppression
from patron.core.models import AuditEntry
from patron.core.roles import Role
from patron.crm.models import ContactEmail
from tests.conftest import member
from tests.factories import PASSWORD, ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def addresses(workspace):
    return dict(Suppression.objects.for_workspace(workspace).values_list("email", "reason"))


def listed(response):
    """The addresses in the table of a list page, in order."""
    table = response.content.decode().split('id="suppressions"', 1)
    if len(table) == 1:
        return []
    return re.findall(r"<tr>\s*<td>([^<]+)</td>", table[1])


def client_for(workspace, role):
    user = member(workspace, role)
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return client


def test_list_searches_filters_and_pages(logged_in, workspace):
    suppression.suppress_addresses(workspace=workspace, emails=["ann@x.test"], note="By phone")
    suppression.suppress_addresses(
        workspace=workspace, emails=["bob@x.test", "cy@y.test"], reason="hard_bounce"
    )
    response = logged_in.get("/suppression/")
    assert response.status_code == 200
    assert sorted(listed(response)) == ["ann@x.test", "bob@x.test", "cy@y.test"]
    assert listed(logged_in.get("/suppression/", {"q": "Y.TEST"})) == ["cy@y.test"]
    assert listed(logged_in.get("/suppression/", {"q": "phone"})) == ["ann@x.test"]
    assert sorted(listed(logged_in.get("/suppression/", {"reason": "hard_bounce"}))) == [
        "bob@x.test",
        "cy@y.test",
    ]
    nothing = logged_in.get("/suppression/", {"q": "zzz"})
    assert listed(nothing) == [] and "No suppressed address matches." in nothing.content.decode()
    # htmx asks for the rows alone.
    rows = logged_in.get(
        "/suppression/",
        {"q": "ann"},
        headers={"HX-Request": "true", "HX-Target": "suppression-rows"},
    )
    body = rows.content.decode()
    assert body.startswith('<div id="suppression-rows">') and "<html" not in body
    assert listed(rows) == ["ann@x.test"]
    assert 'aria-label="Remove ann@x.test"' in body


def test_list_pages_fifty_at_a_time(logged_in, workspace):
    suppression.suppress_addresses(
        workspace=workspace, emails=[f"p{n:02d}@x.test" for n in range(55)]
    )
    first = logged_in.get("/suppression/")
    assert len(listed(first)) == 50 and "page=2" in first.content.decode()
    assert len(listed(logged_in.get("/suppression/", {"page": 2}))) == 5


def test_add_one_or_many_and_keep_the_invalid_ones_to_correct(logged_in, workspace, owner):
    response = logged_in.post(
        "/suppression/add/",
        {"addresses": "Ann@X.test", "reason": "complaint", "note": "Phoned us"},
        follow=True,
    )
    assert "1 address suppressed." in response.content.decode()
    assert addresses(workspace) == {"ann@x.test": "complaint"}
    response = logged_in.post(
        "/suppression/add/",
        {"addresses": "ann@x.test\nbob@x.test; nope, cy@x.test", "reason": "manual"},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "“nope” is not a valid email address." in page
    assert re.search(r"<textarea[^>]*>\s*nope</textarea>", page)
    assert "2 addresses suppressed." in page
    assert "1 address was suppressed already" in page
    assert addresses(workspace) == {
        "ann@x.test": "complaint",
        "bob@x.test": "manual",
        "cy@x.test": "manual",
    }
    empty = logged_in.post("/suppression/add/", {"addresses": " , ", "reason": "manual"})
    assert empty.status_code == 400
    assert "Enter at least one email address." in empty.content.decode()


def test_remove_asks_first(logged_in, workspace, owner):
    contact = ContactFactory(workspace=workspace, email="ann@x.test")
    row = suppression.suppress_address(workspace=workspace, email="ann@x.test", reason="complaint")
    confirm = logged_in.get(f"/suppression/{row.pk}/remove/")
    page = confirm.content.decode()
    assert "Remove ann@x.test from suppression?" in page
    assert "This person asked not to be mailed." in page
    assert addresses(workspace) == {"ann@x.test": "complaint"}
    response = logged_in.post(f"/suppression/{row.pk}/remove/", follow=True)
    assert "ann@x.test is no longer suppressed." in response.content.decode()
    assert addresses(workspace) == {}
    entry = AuditEntry.objects.get(workspace=workspace, action="suppression.removed")
    assert entry.actor == owner and entry.target == "ann@x.test"
    assert (
        Event.objects.for_workspace(workspace)
        .filter(kind="contact.unsuppressed", contact_id=contact.pk)
        .exists()
    )


def test_role_setting_is_saved_and_audited(logged_in, workspace, owner):
    response = logged_in.post(
        "/suppression/role-addresses/", {"suppress_role_addresses": "on"}, follow=True
    )
    assert "Role addresses are now treated as suppressed." in response.content.decode()
    workspace.refresh_from_db()
    assert workspace.suppress_role_addresses
    assert 'id="suppress-role-addresses" checked' in response.content.decode()
    logged_in.post("/suppression/role-addresses/", {})
    workspace.refresh_from_db()
    assert not workspace.suppress_role_addresses
    assert (
        AuditEntry.objects.filter(workspace=workspace, action="workspace.settings_changed").count()
        == 2
    )


def test_contact_page_shows_the_badge(logged_in, workspace, owner):
    contact = ContactFactory(workspace=workspace, email="Ann@X.test")
    ContactEmail.objects.create(workspace=workspace, contact=contact, email="abuse@x.test")
    page = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    assert "suppression-badge" not in page
    suppression.suppress_address(workspace=workspace, email="ann@x.test", reason="hard_bounce")
    page = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Suppressed (Hard bounce)" in page
    assert "Suppressed (Role address)" not in page
    workspace.suppress_role_addresses = True
    workspace.save()
    page = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Suppressed (Role address)" in page


def test_import_shows_the_report_and_downloads_it(logged_in, workspace):
    upload = SimpleUploadedFile(
        "bounces.csv", b"email,reason,note\nann@x.test,hard_bounce,\nbroken,,\nbob@x.test,,\n"
    )
    response = logged_in.post("/suppression/import/", {"file": upload, "reason": "unsubscribed"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "2 addresses suppressed" in page and "1 row rejected" in page
    assert "“broken” is not a valid email address." in page
    assert addresses(workspace) == {"ann@x.test": "hard_bounce", "bob@x.test": "unsubscribed"}
    token = re.search(r'name="report" value="([^"]+)"', page).group(1)
    download = logged_in.post("/suppression/import/report/", {"report": token})
    assert download["Content-Disposition"].startswith("attachment")
    lines = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert lines == [
        ["row", "problem", "email", "reason", "note"],
        ["3", "“broken” is not a valid email address.", "broken", "", ""],
    ]
    assert logged_in.post("/suppression/import/report/", {"report": "forged"}).status_code == 400


def test_import_refuses_an_unreadable_file(logged_in, workspace):
    upload = SimpleUploadedFile("people.csv", b"name\nAnn\n")
    response = logged_in.post("/suppression/import/", {"file": upload, "reason": "manual"})
    assert response.status_code == 400
    assert "must name an “email” column" in response.content.decode()


def test_another_workspace_cannot_use_a_report(logged_in, workspace):
    report = suppression.import_csv(workspace=WorkspaceFactory(), data=b"email\nbad\n")
    token = suppression.report_token(WorkspaceFactory(), report)
    assert logged_in.post("/suppression/import/report/", {"report": token}).status_code == 400


def test_export_is_filtered_and_audited(logged_in, workspace, owner):
    suppression.suppress_addresses(workspace=workspace, emails=["ann@x.test"], note="=1+1")
    suppression.suppress_addresses(workspace=workspace, emails=["bob@x.test"], reason="complaint")
    response = logged_in.get("/suppression/export/", {"reason": "manual"})
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [line[:3] for line in lines] == [
        ["email", "reason", "note"],
        ["ann@x.test", "manual", "'=1+1"],
    ]
    entry = AuditEntry.objects.get(workspace=workspace, action="data.exported")
    assert entry.target == "suppressions" and entry.data["rows"] == 1


def test_roles(workspace):
    suppression.suppress_address(workspace=workspace, email="ann@x.test")
    row = Suppression.objects.for_workspace(workspace).get()
    sales = client_for(workspace, Role.SALES)
    page = sales.get("/suppression/")
    assert page.status_code == 200 and listed(page) == ["ann@x.test"]
    assert "Add addresses" not in page.content.decode()
    assert sales.post("/suppression/add/", {"addresses": "b@x.test"}).status_code == 403
    assert sales.post(f"/suppression/{row.pk}/remove/").status_code == 403
    assert (
        sales.post("/suppression/role-addresses/", {"suppress_role_addresses": "on"}).status_code
        == 403
    )
    agency = client_for(workspace, Role.AGENCY)
    assert agency.get("/suppression/export/").status_code == 403
    response = agency.post("/suppression/add/", {"addresses": "b@x.test", "reason": "manual"})
    assert response.status_code == 302
    assert addresses(workspace) == {"ann@x.test": "manual", "b@x.test": "manual"}
