"""Tags and notes on contacts and companies."""

from __future__ import annotations

import pytest

from patron.activity.models import Event
from patron.core.roles import Role
from patron.crm import services
from patron.crm.models import Note, Tag
from tests.conftest import member
from tests.factories import PASSWORD, CompanyFactory, ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_tags_are_found_case_insensitively_and_made_once(workspace):
    contact = ContactFactory(workspace=workspace)
    services.add_tags(record_=contact, names=["VIP", " ebook  guide "])
    services.add_tags(record_=CompanyFactory(workspace=workspace), names=["vip"])
    assert sorted(Tag.objects.for_workspace(workspace).values_list("name", flat=True)) == [
        "VIP",
        "ebook guide",
    ]
    assert sorted(t.name for t in contact.tags.all()) == ["VIP", "ebook guide"]
    with pytest.raises(services.InvalidTag):
        services.add_tags(record_=contact, names=["x" * 61])
    other = WorkspaceFactory()
    services.add_tags(record_=ContactFactory(workspace=other), names=["VIP"])
    assert Tag.objects.for_workspace(other).count() == 1


@pytest.mark.parametrize(
    ("body", "kept", "removed"),
    [
        ("Call back\nafter lunch", "<p>Call back<br>after lunch</p>", None),
        ("<b>Budget</b> <script>alert(1)</script>", "<b>Budget</b>", "<script"),
        ('<a href="javascript:alert(1)">x</a>', "<a", "javascript:"),
        ('<img src=x onerror="alert(1)">Hi', "Hi", "onerror"),
        ("5 < 6 & 7 > 3", "5 &lt; 6 &amp; 7 &gt; 3", None),
    ],
)
def test_notes_are_sanitised_on_save(workspace, owner, body, kept, removed):
    contact = ContactFactory(workspace=workspace)
    note = services.add_note(workspace=workspace, author=owner, body=body, contact=contact)
    assert kept in note.body
    if removed:
        assert removed not in note.body
    event = Event.objects.for_workspace(workspace).get(kind="contact.note_added")
    assert event.contact_id == contact.pk and event.actor == owner


def test_a_note_needs_text_and_a_record_of_the_workspace(workspace):
    with pytest.raises(ValueError, match="empty"):
        services.add_note(
            workspace=workspace,
            author=None,
            body="<script></script>",
            contact=ContactFactory(workspace=workspace),
        )
    with pytest.raises(services.CrossWorkspaceReference):
        services.add_note(
            workspace=workspace,
            author=None,
            body="x",
            contact=ContactFactory(workspace=WorkspaceFactory()),
        )


def test_tagging_and_notes_from_the_contact_page(logged_in, workspace, owner):
    contact = ContactFactory(workspace=workspace, first_name="Putri")
    logged_in.post(f"/contacts/{contact.pk}/tags/", {"name": "vip, webinar"})
    page = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    assert "vip" in page and "webinar" in page
    logged_in.post(f"/contacts/{contact.pk}/notes/", {"body": "Wants a <i>demo</i> on Friday"})
    page = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Wants a <i>demo</i> on Friday" in page
    tag = contact.tags.get(name="vip")
    logged_in.post(f"/contacts/{contact.pk}/tags/{tag.pk}/remove/")
    assert list(contact.tags.values_list("name", flat=True)) == ["webinar"]
    listing = logged_in.get("/contacts/", {"tag": "WEBINAR"}).content.decode()
    assert "Putri" in listing
    assert "Putri" not in logged_in.get("/contacts/", {"tag": "vip"}).content.decode()
    note = Note.objects.for_workspace(workspace).get()
    logged_in.post(f"/notes/{note.pk}/delete/")
    assert not Note.objects.for_workspace(workspace).exists()


def test_agencies_neither_read_nor_write_notes(client, workspace, owner):
    contact = ContactFactory(workspace=workspace)
    services.add_note(workspace=workspace, author=owner, body="Secret pricing", contact=contact)
    agency = member(workspace, Role.AGENCY)
    client.login(email=agency.email, password=PASSWORD)
    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Secret pricing" not in page and 'id="note-form"' not in page
    assert client.post(f"/contacts/{contact.pk}/notes/", {"body": "hi"}).status_code == 403
    note = Note.objects.for_workspace(workspace).get()
    assert client.post(f"/notes/{note.pk}/delete/").status_code == 403


def test_only_the_author_or_an_admin_deletes_a_note(client, workspace, owner):
    contact = ContactFactory(workspace=workspace)
    note = services.add_note(workspace=workspace, author=owner, body="Mine", contact=contact)
    seller = member(workspace, Role.SALES)
    client.login(email=seller.email, password=PASSWORD)
    assert client.post(f"/notes/{note.pk}/delete/").status_code == 403
    assert Note.objects.for_workspace(workspace).exists()
