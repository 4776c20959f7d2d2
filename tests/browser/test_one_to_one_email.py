"""A salesperson writes to a contact from the contact's page, sees the message on the
timeline and in the Outbox, and the contact's answer comes back onto the timeline;
someone opens an unsubscribe link and confirms."""

from __future__ import annotations

import re
import smtplib
import socket
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from patron.audience import lists
from patron.audience.models import ConsentSource, Subscription, Suppression
from patron.core.services import create_workspace
from patron.mail import inbound, links, senders, templates_service
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, ContactFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_write_to_a_contact_and_read_the_answer(page, tmp_path: Path):
    user = UserFactory(email="sam@lumiar.pt", name="Sam Seller")
    workspace = create_workspace(name="Livraria Lumiar", owner=user)
    identity = senders.create_sender(
        workspace=workspace,
        from_name="Livraria Lumiar",
        from_email="news@lumiar.pt",
        postal_address="Rua do Lumiar 1, Lisboa",
    )
    senders.verify_sender(token=senders.verification_token(identity))
    templates_service.create_from_starter(
        workspace, user=user, key="follow-up", name="After a call"
    )
    contact = ContactFactory(
        workspace=workspace, first_name="Rita", last_name="Sousa", email="rita@cliente.pt"
    )

    log_in(page, user.email, PASSWORD)
    page.goto(f"/contacts/{contact.pk}/")
    page.get_by_role("link", name="Send email").click()
    expect(page.locator("#compose-from")).to_have_text("Sam Seller <sam@lumiar.pt>")
    expect(page.locator("select#id_to")).to_have_value("rita@cliente.pt")

    # Nothing is sent while the subject is missing; what was written stays.
    page.get_by_label("Message").fill("Olá {{ contact.first_name }},\n\nsegue a proposta.\n\nSam")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#id_subject_error")).to_contain_text("required")
    expect(page.get_by_label("Message")).to_have_value(
        "Olá {{ contact.first_name }},\n\nsegue a proposta.\n\nSam"
    )

    page.get_by_label("Subject").fill("A sua proposta")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".alert-success")).to_contain_text("Email sent to rita@cliente.pt")

    # A personal template of the workspace fills subject and message; sent, its merge
    # tags are Rita's.
    page.get_by_role("link", name="Send email").click()
    page.get_by_label("Start from a template").select_option(label="After a call")
    page.get_by_role("button", name="Use template").click()
    expect(page.get_by_label("Subject")).to_have_value("Following up on our conversation")
    expect(page.get_by_label("Message")).to_have_value(
        re.compile(r'^Hi \{\{ contact\.first_name \| default: "there" \}\},')
    )
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".alert-success")).to_contain_text("Email sent to rita@cliente.pt")
    followed = page.locator("#timeline li").filter(has_text="Following up on our conversation")
    followed.locator("summary").click()
    expect(followed.locator(".timeline-email-body")).to_contain_text("Hi Rita,")
    entry = page.locator("#timeline li").filter(has_text="A sua proposta")
    expect(entry).to_contain_text("Email sent")
    entry.locator("summary").click()
    expect(entry.locator(".timeline-email-body")).to_contain_text("Olá Rita,")
    page.screenshot(path=str(tmp_path / "sent.png"), full_page=True)

    # The Outbox has it, with the contact's reply address.
    page.locator("nav.navbar").get_by_role("link", name="Outbox").click()
    page.get_by_role("link", name="A sua proposta").click()
    expect(page.locator("#message-to")).to_have_text("rita@cliente.pt")
    page.get_by_role("tab", name="Headers").click()
    expect(page.locator("#pane-headers")).to_contain_text(
        links.reply_address(workspace.pk, contact.pk)
    )

    # Rita answers; her mail server talks to Patron's inbound server.
    server = inbound.build_server("127.0.0.1", free_port())
    server.start()
    try:
        answer = EmailMessage()
        answer["From"] = "Rita Sousa <rita@cliente.pt>"
        answer["To"] = links.reply_address(workspace.pk, contact.pk)
        answer["Subject"] = "Re: A sua proposta"
        answer["Message-ID"] = "<answer-1@cliente.pt>"
        answer.set_content(
            "Obrigada, aceito.\n\nOn Thu, 3 Dec 2026, Sam Seller wrote:\n> segue a proposta.\n"
        )
        with smtplib.SMTP(server.hostname, server.port, timeout=10) as smtp:
            smtp.send_message(answer)
    finally:
        server.stop()
        server.handler.close()
    page.goto(f"/contacts/{contact.pk}/")
    reply = page.locator("#timeline li").filter(has_text="Re: A sua proposta")
    expect(reply).to_contain_text("Email received")
    expect(reply.locator("summary")).to_have_text("From Rita Sousa <rita@cliente.pt>")
    reply.locator("summary").click()
    expect(reply.locator(".timeline-email-body")).to_have_text("Obrigada, aceito.")
    page.screenshot(path=str(tmp_path / "answered.png"), full_page=True)


def test_open_an_unsubscribe_link_and_confirm(page):
    owner = UserFactory(email="owner@lumiar.pt")
    workspace = create_workspace(name="Livraria Lumiar", owner=owner)
    contact = ContactFactory(workspace=workspace, email="rita@cliente.pt")
    newsletter = lists.create_list(workspace=workspace, name="Novidades")
    lists.subscribe(
        mailing_list=newsletter, contact=contact, consent=lists.Consent(source=ConsentSource.FORM)
    )

    link = urlsplit(links.unsubscribe_url(workspace.pk, contact.pk, 12)).path
    page.goto(link)
    expect(page.locator("#unsubscribe-workspace")).to_have_text("Livraria Lumiar")
    expect(page.locator("#unsubscribe-address")).to_have_text("r•••@cliente.pt")
    # Opening the page changed nothing.
    assert Subscription.objects.for_workspace(workspace).get().status == "subscribed"
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.locator(".alert-success")).to_contain_text("You are unsubscribed")
    assert Subscription.objects.for_workspace(workspace).get().status == "unsubscribed"
    assert Suppression.objects.for_workspace(workspace).get().reason == "unsubscribed"

    page.reload()  # the answer page: reloading it posts nothing again
    expect(page.locator(".alert-success")).to_contain_text("You are unsubscribed")
    page.goto(link)  # the link opened again later
    expect(page.locator(".alert-info")).to_contain_text("unsubscribed already")
    expect(page.get_by_role("button", name="Unsubscribe")).to_have_count(0)

    page.goto("/u/not-a-real-token/")
    expect(page.locator(".alert-danger")).to_contain_text("This link is not valid")
