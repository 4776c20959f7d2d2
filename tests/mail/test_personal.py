"""One-to-one email from a contact's page: the sender rule, the composer, the message as
captured, the timeline, and what happens when the mail server says no."""

from __future__ import annotations

import email
import email.policy
import socket

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings
from django.test import Client

from patron.activity.models import Event
from patron.audience import suppression
from patron.audience.models import SuppressionReason
from patron.core.roles import Role
from patron.crm.models import ContactEmail
from patron.mail import links, personal, senders, tokens
from patron.mail.models import OutboxMessage
from tests.conftest import member
from tests.factories import PASSWORD, CompanyFactory, ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def verified(workspace, address):
    identity = senders.create_sender(
        workspace=workspace,
        from_name="Acme News",
        from_email=address,
        postal_address="1 Main Street",
    )
    identity, _changed = senders.verify_sender(token=senders.verification_token(identity))
    return identity


@pytest.fixture
def identity(workspace):
    return verified(workspace, "news@acme.example")


@pytest.fixture
def contact(workspace):
    company = CompanyFactory(workspace=workspace, name="Globex")
    contact = ContactFactory(
        workspace=workspace,
        first_name="Ann",
        last_name="Lee",
        email="ann@globex.example",
        company=company,
    )
    ContactEmail.objects.create(workspace=workspace, contact=contact, email="ann.lee@home.example")
    return contact


def compose_url(contact) -> str:
    return f"/contacts/{contact.pk}/email/"


def sent_events(contact):
    return list(
        Event.objects.for_workspace(contact.workspace_id)
        .filter(contact_id=contact.pk, kind__in=["email.sent", "email.failed"])
        .order_by("id")
    )


def parsed(message: OutboxMessage):
    return email.message_from_bytes(bytes(message.raw), policy=email.policy.default)


# --- Who it comes from -------------------------------------------------------------------


def test_the_users_own_address_when_its_domain_is_a_verified_sending_domain(
    workspace, owner, identity
):
    sender = personal.sender_for(workspace, owner)  # owner@acme.example
    assert sender is not None and sender.own_address
    assert sender.formatted == "Olivia Owner <owner@acme.example>"


def test_the_default_sender_address_under_the_users_name_otherwise(workspace, identity):
    seller = member(workspace, Role.SALES, email="sam@gmail.example")
    sender = personal.sender_for(workspace, seller)
    assert sender is not None and not sender.own_address
    assert sender.email == "news@acme.example"
    assert sender.name == seller.display_name


def test_no_verified_sender_address_no_sender(workspace, owner):
    senders.create_sender(
        workspace=workspace, from_name="X", from_email="x@acme.example", postal_address="1"
    )  # pending, not verified
    assert personal.sender_for(workspace, owner) is None


def test_html_part_escapes_the_text_and_keeps_liquid():
    html = personal.html_template(
        'Hi {{ contact.first_name | default: "there" }},\n\n<b>5 > 3</b> & see https://acme.example/x\nbye'
    )
    assert '{{ contact.first_name | default: "there" }}' in html
    assert "&lt;b&gt;5 &gt; 3&lt;/b&gt; &amp;" in html
    assert 'href="https://acme.example/x"' in html
    assert html.count("<p>") == 2 and "<br>" in html


# --- The composer --------------------------------------------------------------------------


def test_the_contact_page_leads_to_the_composer(logged_in: Client, contact, identity):
    page = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    assert compose_url(contact) in page
    composer = logged_in.get(compose_url(contact)).content.decode()
    assert "Olivia Owner &lt;owner@acme.example&gt;" in composer
    assert "ann@globex.example" in composer and "ann.lee@home.example" in composer
    assert "suppressed" not in composer


def test_send_captures_the_message_with_reply_to_and_merge_fields(
    logged_in: Client, workspace, owner, contact, identity
):
    response = logged_in.post(
        compose_url(contact),
        {
            "to": "ann@globex.example",
            "subject": "Your visit to {{ company.name }}",
            "body": "Hello {{ contact.first_name }},\n\nthanks for <coming> by.\n\nOlivia",
            "send_key": "0" * 32,
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/contacts/{contact.pk}/"
    message = OutboxMessage.objects.get()
    assert message.workspace_id == workspace.pk
    assert message.to == ["ann@globex.example"]
    assert message.subject == "Your visit to Globex"
    mime_message = parsed(message)
    reply_to = str(mime_message["Reply-To"])
    assert reply_to == links.reply_address(workspace.pk, contact.pk)
    assert reply_to.endswith("@" + settings.INBOUND_DOMAIN)
    token = reply_to.split("@")[0].removeprefix("reply+")
    assert tokens.unsign("reply", token) == (workspace.pk, contact.pk)
    assert str(mime_message["From"]) == "Olivia Owner <owner@acme.example>"
    assert "Hello Ann," in message.text_body
    assert "thanks for <coming> by." in message.text_body
    assert "thanks for &lt;coming&gt; by." in message.html_body
    (event,) = sent_events(contact)
    assert event.kind == "email.sent"
    assert event.actor_id == owner.pk
    assert event.properties["one_to_one"] is True
    assert event.properties["subject"] == "Your visit to Globex"
    assert "Hello Ann," in event.properties["body"]
    assert event.properties["to"] == "ann@globex.example"
    assert event.properties["message_id"] == str(mime_message["Message-ID"])
    # On the timeline, escaped.
    page = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Your visit to Globex" in page
    assert "thanks for &lt;coming&gt; by." in page
    assert "Email sent to ann@globex.example" in page


def test_the_same_form_sent_twice_sends_once(logged_in: Client, contact, identity):
    form = {"to": "ann@globex.example", "subject": "Hi", "body": "Hello", "send_key": "a" * 32}
    assert logged_in.post(compose_url(contact), form).status_code == 302
    assert logged_in.post(compose_url(contact), form).status_code == 302
    assert OutboxMessage.objects.count() == 1
    assert len(sent_events(contact)) == 1


def test_another_address_of_the_contact(logged_in: Client, contact, identity):
    form = {"to": "ann.lee@home.example", "subject": "Hi", "body": "Hello"}
    assert logged_in.post(compose_url(contact), form).status_code == 302
    assert OutboxMessage.objects.get().to == ["ann.lee@home.example"]


@pytest.mark.parametrize(
    ("form", "field", "text"),
    [
        ({"subject": "", "body": "Hello"}, "subject", "This field is required"),
        ({"subject": "   ", "body": "Hello"}, "subject", "This field is required"),
        ({"subject": "Hi", "body": ""}, "body", "This field is required"),
        ({"subject": "Hi", "body": "\n\n  \n"}, "body", "Write the message"),
        ({"to": "zed@elsewhere.example"}, "to", "Select a valid choice"),
        ({"to": "not an address"}, "to", "Select a valid choice"),
        ({"body": "Hi {{ contact.first_name | nosuchfilter }}"}, "body", "nosuchfilter"),
        ({"body": "Hi {% if contact.first_name %}"}, "body", "line 1"),
    ],
)
def test_the_composer_says_what_is_wrong_and_sends_nothing(
    logged_in: Client, contact, identity, form, field, text
):
    values = {"to": "ann@globex.example", "subject": "Hi", "body": "Hello", **form}
    response = logged_in.post(compose_url(contact), values)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert text in " ".join(errors[field])
    assert not OutboxMessage.objects.exists()
    assert not sent_events(contact)


def test_the_service_refuses_an_address_that_is_not_the_contacts(
    workspace, owner, contact, identity
):
    with pytest.raises(personal.EmailInvalid) as caught:
        personal.send_personal_email(
            workspace=workspace,
            contact=contact,
            user=owner,
            to_email="zed@elsewhere.example",
            subject="Hi",
            body="Hello",
        )
    assert "not an address of this contact" in caught.value.errors["to"]
    with pytest.raises(personal.EmailInvalid) as caught:
        personal.send_personal_email(
            workspace=workspace, contact=contact, user=owner, to_email="nope", subject="", body=""
        )
    assert set(caught.value.errors) == {"to", "subject", "body"}


def test_a_suppressed_address_is_warned_about_and_needs_confirming(
    logged_in: Client, workspace, contact, identity
):
    suppression.suppress_address(
        workspace=workspace, email=contact.email, reason=SuppressionReason.UNSUBSCRIBED
    )
    page = logged_in.get(compose_url(contact)).content.decode()
    assert "ann@globex.example is on the suppression list (Unsubscribed from all)" in page
    form = {"to": "ann@globex.example", "subject": "Hi", "body": "About your order"}
    response = logged_in.post(compose_url(contact), form)
    assert response.status_code == 200
    assert "Confirm that you want to write to it anyway" in response.content.decode()
    assert not OutboxMessage.objects.exists()
    response = logged_in.post(compose_url(contact), {**form, "acknowledge_suppressed": "on"})
    assert response.status_code == 302
    assert OutboxMessage.objects.count() == 1
    # The other, unsuppressed address needs no confirmation.
    response = logged_in.post(compose_url(contact), {**form, "to": "ann.lee@home.example"})
    assert response.status_code == 302


def test_without_a_verified_sender_address_nothing_is_sent(logged_in: Client, contact):
    page = logged_in.get(compose_url(contact)).content.decode()
    assert "there is none yet" in page and "/settings/senders/" in page
    form = {"to": "ann@globex.example", "subject": "Hi", "body": "Hello"}
    assert logged_in.post(compose_url(contact), form).status_code == 200
    assert not OutboxMessage.objects.exists()


def test_who_may_send(client: Client, workspace, contact, identity):
    agency = member(workspace, Role.AGENCY)
    assert client.login(email=agency.email, password=PASSWORD)
    assert client.get(compose_url(contact)).status_code == 403
    form = {"to": "ann@globex.example", "subject": "Hi", "body": "Hello"}
    assert client.post(compose_url(contact), form).status_code == 403
    assert compose_url(contact) not in client.get(f"/contacts/{contact.pk}/").content.decode()
    support = member(workspace, Role.SUPPORT)
    assert client.login(email=support.email, password=PASSWORD)
    assert client.post(compose_url(contact), form).status_code == 302
    assert not OutboxMessage.objects.filter(to__icontains="zed").exists()


def test_another_workspaces_contact_is_not_found(logged_in: Client, identity):
    from tests.factories import WorkspaceFactory

    stranger = ContactFactory(workspace=WorkspaceFactory(slug="other"), email="x@y.example")
    form = {"to": "x@y.example", "subject": "Hi", "body": "Hello"}
    assert logged_in.get(compose_url(stranger)).status_code == 404
    assert logged_in.post(compose_url(stranger), form).status_code == 404
    assert not OutboxMessage.objects.exists()


# --- When the mail server says no ----------------------------------------------------------


class Refusing:
    """A real SMTP server that refuses every recipient with the given reply."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return self.reply


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    servers = []

    def start(reply: str):
        port = free_port()
        server = Controller(Refusing(reply), hostname="127.0.0.1", port=port)
        server.start()
        servers.append(server)
        settings.EMAIL_TRANSPORT = "smtp"
        settings.SMTP_URLS = [f"smtp://127.0.0.1:{port}"]
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.mark.parametrize(
    ("reply", "outcome", "text"),
    [
        ("550 5.1.1 No such user", "failed", "refused the message (550"),
        ("451 4.7.1 Greylisted, try later", "retry", "could not take the message just now"),
    ],
)
def test_a_refusal_is_shown_and_recorded(
    logged_in: Client, contact, identity, smtp_server, reply, outcome, text
):
    smtp_server(reply)
    form = {"to": "ann@globex.example", "subject": "Quote", "body": "Here it is"}
    response = logged_in.post(compose_url(contact), form)
    assert response.status_code == 200
    page = response.content.decode()
    assert text in page
    # What the user wrote is still there, to send again.
    assert "Here it is" in page and 'value="Quote"' in page
    (event,) = sent_events(contact)
    assert event.kind == "email.failed"
    assert event.properties["outcome"] == outcome
    assert event.properties["subject"] == "Quote"
    assert reply.split(" ", 1)[1].split(" ", 1)[1] in event.properties["reply"]


# --- Answering a received email --------------------------------------------------------------


def received_reply(workspace, contact, *, sender="Ann Lee <ann.lee@home.example>"):
    from patron.mail import inbound

    raw = (
        f"From: {sender}\r\nTo: {links.reply_address(workspace.pk, contact.pk)}\r\n"
        "Subject: Re: Re: Your quote\r\nMessage-ID: <answer-7@home.example>\r\n\r\nDeal.\r\n"
    ).encode()
    return inbound.receive_reply(workspace_id=workspace.pk, contact_id=contact.pk, raw=raw)


def test_answering_a_received_email_threads_the_reply(
    logged_in: Client, workspace, contact, identity
):
    event = received_reply(workspace, contact)
    page = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    answer_url = f"{compose_url(contact)}?answering={event.pk}"
    assert answer_url in page
    response = logged_in.get(answer_url)
    form = response.context["form"]
    assert form.initial["subject"] == "Re: Re: Your quote"
    assert form.initial["to"] == "ann.lee@home.example"  # the address the answer came from
    assert "In answer to “Re: Re: Your quote” from Ann Lee" in response.content.decode()
    sent = logged_in.post(
        compose_url(contact),
        {
            "to": "ann.lee@home.example",
            "subject": "Re: Re: Your quote",
            "body": "Great, thanks.",
            "answering": str(event.pk),
        },
    )
    assert sent.status_code == 302
    mime_message = parsed(OutboxMessage.objects.get())
    assert str(mime_message["In-Reply-To"]) == "<answer-7@home.example>"
    assert str(mime_message["References"]) == "<answer-7@home.example>"
    (sent_event,) = [e for e in sent_events(contact) if e.kind == "email.sent"]
    assert sent_event.properties["in_reply_to"] == "<answer-7@home.example>"


def test_answering_only_this_contacts_received_email(
    logged_in: Client, workspace, contact, identity
):
    other = ContactFactory(workspace=workspace, email="bob@globex.example")
    foreign = received_reply(workspace, other, sender="bob@globex.example")
    response = logged_in.get(f"{compose_url(contact)}?answering={foreign.pk}")
    assert "answering" not in response.context["form"].initial
    logged_in.post(
        compose_url(contact),
        {"to": contact.email, "subject": "Hi", "body": "Hello", "answering": str(foreign.pk)},
    )
    assert "In-Reply-To" not in parsed(OutboxMessage.objects.get())


def test_a_malformed_message_id_is_not_put_in_headers(workspace, owner, contact, identity):
    with pytest.raises(personal.EmailInvalid):
        personal.send_personal_email(
            workspace=workspace,
            contact=contact,
            user=owner,
            to_email=contact.email,
            subject="Hi",
            body="Hello",
            in_reply_to="<x@y>\r\nBcc: victim@example.com",
        )
    assert not OutboxMessage.objects.exists()


# --- Personal templates -------------------------------------------------------------------


def test_a_personal_template_fills_subject_and_message(
    logged_in: Client, workspace, owner, contact, identity
):
    from patron.mail import templates_service

    follow_up = templates_service.create_from_starter(
        workspace, user=owner, key="follow-up", name="After a call"
    )
    templates_service.create_from_starter(workspace, user=owner, key="newsletter")  # marketing
    other = templates_service.create_from_starter(
        WorkspaceFactory(), user=None, key="welcome", name="Elsewhere"
    )
    page = logged_in.get(compose_url(contact)).content.decode()
    assert f'<option value="{follow_up.pk}">After a call</option>' in page
    assert "Newsletter" not in page and "Elsewhere" not in page

    page = logged_in.get(compose_url(contact), {"template": follow_up.pk}).content.decode()
    assert 'value="Following up on our conversation"' in page
    assert f'<option value="{follow_up.pk}" selected>' in page
    # The text of the design, merge tags kept for the send.
    assert "Hi {{ contact.first_name | default: &quot;there&quot; }}," in page
    assert "Thank you for your time today." in page and "<p>" not in page.split("id_body")[1]

    # Another workspace's template fills nothing, and says so.
    refused = logged_in.get(compose_url(contact), {"template": other.pk}).content.decode()
    assert "That template is not among this workspace" in refused
    assert "Following up" not in refused

    # Sent, the merge tags are the contact's.
    subject, body = personal.message_from_template(follow_up)
    data = {"to": "ann@globex.example", "subject": subject, "body": body, "send_key": "1" * 32}
    assert logged_in.post(compose_url(contact), data).status_code == 302
    message = OutboxMessage.objects.get()
    assert "Hi Ann," in message.text_body and "{{" not in message.text_body


def test_a_templates_own_plain_text_is_taken_as_it_is(workspace, owner):
    from patron.mail import templates_service

    template = templates_service.create_template(
        workspace,
        user=owner,
        values={"name": "Short", "kind": "personal", "subject": "Hi", "format": "html",
                "body": "<p>Ignored</p>", "text": "Hello {{ contact.first_name }}"},
    )  # fmt: skip
    assert personal.message_from_template(template) == ("Hi", "Hello {{ contact.first_name }}")
