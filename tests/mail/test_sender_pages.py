"""The Sender addresses settings page and the public verification page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from freezegun import freeze_time

from patron.core.models import AuditEntry
from patron.core.roles import Role
from patron.mail import senders
from patron.mail.models import OutboxMessage, SenderIdentity
from tests.conftest import member
from tests.factories import PASSWORD, WorkspaceFactory

pytestmark = pytest.mark.django_db

URL = "/settings/senders/"
VALID = {
    "from_name": "Acme News",
    "from_email": "news@Acme.example",
    "reply_to": "",
    "postal_address": "Acme Ltd\n1 Main Street",
}


def make(workspace, email="news@acme.example", name="Acme News"):
    return senders.create_sender(
        workspace=workspace, from_name=name, from_email=email, postal_address="Acme Ltd"
    )


def verify(identity):
    return senders.verify_sender(token=senders.verification_token(identity))[0]


def test_add_sends_the_verification_link(logged_in, workspace, owner):
    response = logged_in.post(URL, VALID, follow=True)
    identity = SenderIdentity.objects.for_workspace(workspace).get()
    assert identity.from_email == "news@acme.example"
    assert identity.created_by == owner
    page = response.content.decode()
    assert "Sender address news@acme.example added." in page
    assert "We sent a verification link to news@acme.example" in page
    assert "Pending verification" in page
    message = OutboxMessage.objects.get()
    assert message.to == ["news@acme.example"]
    assert re.search(r"/senders/verify/\S+/", message.text_body)
    assert AuditEntry.objects.filter(action="sender.created", actor=owner).exists()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"from_email": "news@"}, "from_email", "is not a valid email address"),
        ({"reply_to": "help at acme"}, "reply_to", "is not a valid email address"),
        ({"postal_address": ""}, "postal_address", "This field is required"),
        ({"postal_address": "  \n  "}, "postal_address", "This field is required"),
        ({"from_name": ""}, "from_name", "This field is required"),
    ],
)
def test_add_says_what_is_wrong(logged_in, workspace, change, field, message):
    response = logged_in.post(URL, {**VALID, **change})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert message in " ".join(errors[field])
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not SenderIdentity.objects.for_workspace(workspace).exists()
    assert not OutboxMessage.objects.exists()


def test_taken_address_is_refused(logged_in, workspace):
    make(workspace, "news@acme.example")
    response = logged_in.post(URL, {**VALID, "from_email": "NEWS@acme.example"})
    assert (
        "NEWS@acme.example is a sender address already."
        in response.context["form"].errors["from_email"]
    )
    assert SenderIdentity.objects.for_workspace(workspace).count() == 1


def test_list_shows_badges_escaped_and_scoped(logged_in, workspace):
    pending = make(workspace, "pending@acme.example", name="<b>Pending</b>")
    ready = verify(make(workspace, "ready@acme.example"))
    make(WorkspaceFactory(), "elsewhere@other.example")
    page = logged_in.get(URL).content.decode()
    assert "&lt;b&gt;Pending&lt;/b&gt;" in page and "<b>Pending</b>" not in page
    assert "elsewhere@other.example" not in page
    rows = re.findall(r'<tr data-sender="([^"]+)">(.*?)</tr>', page, re.DOTALL)
    assert [address for address, _row in rows] == [ready.from_email, pending.from_email]
    ready_row, pending_row = rows[0][1], rows[1][1]
    assert "Verified" in ready_row and "Default" in ready_row
    assert "Pending verification" in pending_row and "Resend link" in pending_row
    assert "Make default" not in pending_row


def test_edit_address_unverifies_and_sends_a_new_link(logged_in, workspace):
    identity = verify(make(workspace))
    response = logged_in.post(
        f"{URL}{identity.pk}/", {**VALID, "from_email": "hello@acme.example"}, follow=True
    )
    identity.refresh_from_db()
    assert identity.from_email == "hello@acme.example"
    assert identity.verified_at is None and not identity.is_default
    assert OutboxMessage.objects.get().to == ["hello@acme.example"]
    assert "We sent a verification link to hello@acme.example" in response.content.decode()


def test_edit_other_fields_keeps_verification(logged_in, workspace):
    identity = verify(make(workspace))
    page = logged_in.get(f"{URL}{identity.pk}/").content.decode()
    assert 'value="news@acme.example"' in page
    logged_in.post(
        f"{URL}{identity.pk}/",
        {**VALID, "from_email": identity.from_email, "reply_to": "help@acme.example"},
    )
    identity.refresh_from_db()
    assert identity.reply_to == "help@acme.example" and identity.is_verified
    assert not OutboxMessage.objects.exists()


def test_resend_default_and_delete(logged_in, workspace):
    pending = make(workspace, "pending@acme.example")
    first = verify(make(workspace, "first@acme.example"))
    second = verify(make(workspace, "second@acme.example"))

    logged_in.post(f"{URL}{pending.pk}/verification/")
    assert OutboxMessage.objects.get().to == ["pending@acme.example"]
    response = logged_in.post(f"{URL}{first.pk}/verification/", follow=True)
    assert "first@acme.example is verified already." in response.content.decode()
    assert OutboxMessage.objects.count() == 1

    response = logged_in.post(f"{URL}{pending.pk}/default/", follow=True)
    assert "Verify pending@acme.example before making it the default." in (
        response.content.decode()
    )
    logged_in.post(f"{URL}{second.pk}/default/")
    assert senders.default_identity(workspace) == second

    assert logged_in.get(f"{URL}{second.pk}/delete/").status_code == 405
    response = logged_in.post(f"{URL}{second.pk}/delete/", follow=True)
    assert "Sender address second@acme.example deleted." in response.content.decode()
    assert senders.default_identity(workspace) == first


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.ADMIN, True), (Role.MARKETING, True), (Role.AGENCY, False), (Role.SALES, False)],
)
def test_who_manages_sender_addresses(client, workspace, role, allowed):
    user = member(workspace, role)
    client.login(email=user.email, password=PASSWORD)
    identity = make(workspace)
    assert client.get(URL).status_code == (200 if allowed else 403)
    assert client.post(f"{URL}{identity.pk}/delete/").status_code == (302 if allowed else 403)
    assert SenderIdentity.objects.for_workspace(workspace).exists() is not allowed


# --- The public verification page ------------------------------------------------------------


def test_opening_the_link_verifies_nothing_until_confirmed(client, workspace):
    identity = make(workspace, name="Acme <News>")
    url = f"/senders/verify/{senders.verification_token(identity)}/"
    response = client.get(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Acme &lt;News&gt;" in page and "news@acme.example" in page
    assert "Confirm this address" in page
    assert response.headers["Referrer-Policy"] == "same-origin"
    identity.refresh_from_db()
    assert identity.verified_at is None

    response = client.post(url)
    assert "the address is verified" in response.content.decode()
    identity.refresh_from_db()
    assert identity.is_verified and identity.is_default

    response = client.get(url)
    assert "verified already" in response.content.decode()
    assert client.post(url).status_code == 200


def test_expired_forged_and_outdated_links(client, workspace):
    identity = make(workspace)
    with freeze_time() as frozen:
        url = f"/senders/verify/{senders.verification_token(identity)}/"
        frozen.tick(timedelta(days=4))
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 410
            assert "This verification link has expired" in response.content.decode()

    response = client.post("/senders/verify/forged-token/")
    assert response.status_code == 400
    assert "This verification link is not valid" in response.content.decode()

    old_url = f"/senders/verify/{senders.verification_token(identity)}/"
    senders.update_sender(identity=identity, from_email="new@acme.example")
    response = client.post(old_url)
    assert response.status_code == 410
    page = response.content.decode()
    assert "address was changed after this link was sent" in page
    assert "new@acme.example" not in page  # the old address learns nothing of the new one
    identity.refresh_from_db()
    assert identity.verified_at is None


def test_workspace_settings_lead_marketing_to_sender_addresses(client, workspace):
    marketer = member(workspace, Role.MARKETING)
    client.login(email=marketer.email, password=PASSWORD)
    response = client.get("/settings/", follow=True)
    assert response.redirect_chain == [(URL, 302)]
    page = response.content.decode()
    assert "Sender addresses" in page
    assert "/settings/members/" not in page  # only the tabs the member may open
    assert client.post("/settings/", {"name": "Taken over"}).status_code == 302
    workspace.refresh_from_db()
    assert workspace.name == "Acme"
