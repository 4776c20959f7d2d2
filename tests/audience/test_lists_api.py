"""The lists API: CRUD, subscriptions by id or email, consent history per contact."""

from __future__ import annotations

import pytest

from patron.audience import lists
from patron.audience.models import ConsentRecord, MailingList
from patron.mail.models import OutboxMessage
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_list_crud(api, workspace):
    created = api.post("/api/v1/lists", {"name": "Newsletter", "double_opt_in": True})
    assert created.status_code == 201
    body = created.json()
    assert body["double_opt_in"] is True and "{{ confirm_url }}" in body["confirmation_body"]
    list_id = body["id"]
    assert api.post("/api/v1/lists", {"name": "newsletter"}).status_code == 409
    broken = api.patch(f"/api/v1/lists/{list_id}", {"confirmation_body": "Hi {{ x"})
    assert broken.status_code == 422
    assert "line 1" in broken.json()["error"]["fields"]["confirmation_body"][0]
    renamed = api.patch(f"/api/v1/lists/{list_id}", {"name": "Weekly", "public_name": "Weekly"})
    assert renamed.json()["name"] == "Weekly"
    assert [item["name"] for item in api.get("/api/v1/lists").json()["items"]] == ["Weekly"]
    assert api.get(f"/api/v1/lists/{list_id}").json()["public_name"] == "Weekly"
    assert api.delete(f"/api/v1/lists/{list_id}").status_code == 204
    assert not MailingList.objects.for_workspace(workspace).exists()


def test_subscribe_by_id_and_email_with_consent_then_unsubscribe(
    api, workspace, django_capture_on_commit_callbacks
):
    mailing_list = lists.create_list(workspace=workspace, name="News", double_opt_in=True)
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    bob = ContactFactory(workspace=workspace, email="Bob@X.test")
    url = f"/api/v1/lists/{mailing_list.pk}/subscriptions"
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            url,
            {
                "contact_ids": [ann.pk],
                "emails": ["bob@x.test"],
                "consent_text": "Ticked the box",
                "ip_address": "203.0.113.5",
                "user_agent": "Signup form",
            },
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["changed"]) == ("pending", 2)
    assert {item["email"]: item["status"] for item in body["items"]} == {
        "ann@x.test": "pending",
        "Bob@X.test": "pending",
    }
    assert OutboxMessage.objects.count() == 2
    record = ConsentRecord.objects.for_workspace(workspace).filter(contact=ann).get()
    assert (record.source, record.consent_text, record.ip_address) == (
        "api",
        "Ticked the box",
        "203.0.113.5",
    )
    confirmed = api.post(
        url, {"contact_ids": [ann.pk], "confirmed": True, "consent_text": "Confirmed in our app"}
    ).json()
    assert confirmed["status"] == "subscribed" and confirmed["changed"] == 1
    assert api.post(url, {"contact_ids": [bob.pk], "confirmed": True}).status_code == 422
    listed = api.get(url, status="subscribed").json()["items"]
    assert [item["contact_id"] for item in listed] == [ann.pk]
    assert api.get(url, status="bogus").status_code == 422
    gone = api.post(url, {"emails": ["ann@x.test"], "status": "unsubscribed"}).json()
    assert (gone["status"], gone["changed"]) == ("unsubscribed", 1)

    history = api.get(f"/api/v1/contacts/{ann.pk}/subscriptions").json()
    (item,) = history["items"]
    assert item["status"] == "unsubscribed" and item["list_name"] == "News"
    assert [(r["status"], r["source"]) for r in item["consent_history"]] == [
        ("unsubscribed", "api"),
        ("subscribed", "api"),
        ("pending", "api"),
    ]


def test_unknown_contacts_are_named_and_nothing_changes(api, workspace):
    mailing_list = lists.create_list(workspace=workspace, name="News")
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    stranger = ContactFactory(workspace=WorkspaceFactory(), email="s@x.test")
    response = api.post(
        f"/api/v1/lists/{mailing_list.pk}/subscriptions",
        {"contact_ids": [ann.pk, stranger.pk], "emails": ["nobody@x.test"]},
    )
    assert response.status_code == 422
    fields = response.json()["error"]["fields"]
    assert fields == {
        "contact_ids": [f"no contact {stranger.pk}"],
        "emails": ["no contact with nobody@x.test"],
    }
    assert not ConsentRecord.objects.for_workspace(workspace).exists()
    empty = api.post(f"/api/v1/lists/{mailing_list.pk}/subscriptions", {})
    assert empty.status_code == 422
    bad_ip = api.post(
        f"/api/v1/lists/{mailing_list.pk}/subscriptions",
        {"contact_ids": [ann.pk], "ip_address": "not-an-ip"},
    )
    assert bad_ip.status_code == 422


def test_another_workspaces_list_is_not_found(api):
    foreign = lists.create_list(workspace=WorkspaceFactory(), name="Theirs")
    assert api.get(f"/api/v1/lists/{foreign.pk}").status_code == 404
    assert api.get(f"/api/v1/lists/{foreign.pk}/subscriptions").status_code == 404
