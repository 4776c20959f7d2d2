"""The capture transport and the Outbox."""

from __future__ import annotations

import email
import email.policy

import pytest
from django.core.mail import EmailMultiAlternatives, send_mail

from patron.core.services import WORKSPACE_HEADER
from patron.mail.models import OutboxMessage
from tests.conftest import member
from tests.factories import PASSWORD, OutboxMessageFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_capture_keeps_the_whole_message_and_drops_the_internal_header(workspace):
    message = EmailMultiAlternatives(
        subject="Chào bạn 👋 歡迎",
        body="Xin chào, Lan!\n歡迎光臨",
        from_email="Patron <patron@example.com>",
        to=["lan@example.vn"],
        cc=["boss@example.vn"],
        headers={WORKSPACE_HEADER: str(workspace.pk)},
    )
    message.attach_alternative("<p>Xin chào, <b>Lan</b>!</p>", "text/html")
    assert message.send() == 1
    stored = OutboxMessage.objects.get()
    assert stored.workspace == workspace
    assert stored.subject == "Chào bạn 👋 歡迎"
    assert stored.to == ["lan@example.vn"] and stored.cc == ["boss@example.vn"]
    assert "Xin chào, Lan!" in stored.text_body and "<b>Lan</b>" in stored.html_body
    assert stored.message_id.startswith("<")
    parsed = email.message_from_bytes(bytes(stored.raw), policy=email.policy.default)
    assert parsed[WORKSPACE_HEADER] is None
    assert WORKSPACE_HEADER not in dict(stored.headers)
    assert parsed["Subject"] == "Chào bạn 👋 歡迎"  # RFC 2047 encoded and decoded back
    assert all(len(line) < 998 for line in bytes(stored.raw).split(b"\r\n"))


def test_system_mail_has_no_workspace(db):
    send_mail("Reset", "Body", None, ["someone@example.com"])
    assert OutboxMessage.objects.get().workspace is None


def test_the_outbox_lists_searches_and_shows_messages(logged_in, workspace):
    OutboxMessageFactory(workspace=workspace, subject="Quarterly news", to=["ann@example.com"])
    OutboxMessageFactory(
        workspace=workspace,
        subject="Invoice",
        to=["bob@example.com"],
        html_body="<p>Pay <script>alert(1)</script></p>",
    )
    page = logged_in.get("/outbox/").content.decode()
    assert "Quarterly news" in page and "Invoice" in page
    found = logged_in.get("/outbox/", {"q": "ann@"}).content.decode()
    assert "Quarterly news" in found and "Invoice" not in found
    invoice = OutboxMessage.objects.get(subject="Invoice")
    detail = logged_in.get(f"/outbox/{invoice.pk}/").content.decode()
    assert "bob@example.com" in detail and "sandbox title=" in detail
    html = logged_in.get(f"/outbox/{invoice.pk}/html/")
    assert html["Content-Security-Policy"].startswith("sandbox;")
    assert "default-src 'none'" in html["Content-Security-Policy"]
    assert html["X-Frame-Options"] == "SAMEORIGIN"


def test_htmx_search_answers_with_the_rows_only(logged_in, workspace):
    OutboxMessageFactory(workspace=workspace, subject="Hello there")
    response = logged_in.get("/outbox/", {"q": "Hello"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "Hello there" in body and "<html" not in body


def test_other_workspaces_and_system_mail_stay_hidden(client, workspace):
    mine = OutboxMessageFactory(workspace=workspace, subject="Mine")
    theirs = OutboxMessageFactory(workspace=WorkspaceFactory(), subject="Theirs")
    system = OutboxMessageFactory(workspace=None, subject="System reset")
    seller = member(workspace, "sales")
    client.login(email=seller.email, password=PASSWORD)
    page = client.get("/outbox/").content.decode()
    assert "Mine" in page and "Theirs" not in page and "System reset" not in page
    assert client.get(f"/outbox/{theirs.pk}/").status_code == 404
    assert client.get(f"/outbox/{system.pk}/").status_code == 404
    assert client.get(f"/outbox/{mine.pk}/").status_code == 200
    seller.is_staff = True
    seller.save()
    assert client.get(f"/outbox/{system.pk}/").status_code == 200


def test_an_empty_outbox_says_what_will_appear(logged_in):
    assert "The Outbox is empty" in logged_in.get("/outbox/").content.decode()
