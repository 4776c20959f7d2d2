"""Template pages and the editor component's endpoints, through the test client."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from patron.core.roles import Role
from patron.mail import blocks, templates_service
from patron.mail.models import EmailTemplate
from tests.conftest import member
from tests.factories import PASSWORD, ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def newsletter(workspace, owner):
    return templates_service.create_from_starter(workspace, user=owner, key="newsletter")


def post_content(template, **changes):
    data = {
        "name": template.name,
        "kind": template.kind,
        "subject": template.subject,
        "preheader": template.preheader,
        "text": template.text,
        "blocks": json.dumps(template.blocks) if template.blocks else "",
    }
    if not template.blocks:
        data.update(body=template.body, format=template.format)
    data.update(changes)
    return data


def test_list_shows_templates_by_kind(logged_in, workspace, owner, newsletter):
    templates_service.create_from_starter(workspace, user=owner, key="welcome")
    page = logged_in.get(reverse("email_templates:list"))
    assert b'data-template="Newsletter"' in page.content
    assert b'data-template="Welcome"' not in page.content
    personal = logged_in.get(reverse("email_templates:list"), {"kind": "personal"})
    assert b'data-template="Welcome"' in personal.content
    assert b'data-template="Newsletter"' not in personal.content


def test_new_from_a_starter_opens_the_builder(logged_in, workspace):
    page = logged_in.get(reverse("email_templates:new"))
    for name in (b"Newsletter", b"Product announcement", b"Survey / poll", b"Birthday"):
        assert name in page.content
    response = logged_in.post(reverse("email_templates:new"), {"starter": "survey"})
    template = EmailTemplate.objects.for_workspace(workspace).get()
    assert response.url == reverse("email_templates:edit", args=[template.pk])
    page = logged_in.get(response.url)
    assert b'id="builder-schema"' in page.content and b'name="blocks"' in page.content
    assert b"Insert merge tag" in page.content
    bad = logged_in.post(reverse("email_templates:new"), {"starter": "nope"}, follow=True)
    assert b"There is no starter" in bad.content


def test_save_from_the_builder_generates_the_body(logged_in, newsletter):
    design = json.loads(json.dumps(newsletter.blocks))
    design["blocks"].insert(0, dict(blocks.new_block("heading"), text="Fresh news"))
    response = logged_in.post(
        reverse("email_templates:edit", args=[newsletter.pk]),
        post_content(newsletter, name="News v2", blocks=json.dumps(design), body="<mjml>x</mjml>"),
    )
    assert response.status_code == 302
    newsletter.refresh_from_db()
    assert newsletter.name == "News v2"
    assert "Fresh news</h1>" in newsletter.body and "<mjml>x</mjml>" not in newsletter.body


def test_kind_and_name_are_saved(logged_in, newsletter):
    response = logged_in.post(
        reverse("email_templates:edit", args=[newsletter.pk]),
        post_content(newsletter, name="Hello", kind="personal"),
    )
    assert response.status_code == 302
    newsletter.refresh_from_db()
    assert (newsletter.name, newsletter.kind) == ("Hello", "personal")


def test_a_bad_block_is_shown_and_nothing_is_saved(logged_in, newsletter):
    design = json.loads(json.dumps(newsletter.blocks))
    design["blocks"][6]["url"] = "not a link"
    before = newsletter.body
    response = logged_in.post(
        reverse("email_templates:edit", args=[newsletter.pk]),
        post_content(newsletter, blocks=json.dumps(design)),
    )
    assert response.status_code == 422
    assert b"Block 7 (Button): Link:" in response.content
    newsletter.refresh_from_db()
    assert newsletter.body == before


def test_switch_to_code_is_one_way_and_keeps_the_design_as_mjml(logged_in, newsletter):
    body = newsletter.body
    response = logged_in.post(
        reverse("email_templates:edit", args=[newsletter.pk]),
        post_content(newsletter, action="to_code"),
    )
    assert response.status_code == 302
    newsletter.refresh_from_db()
    assert newsletter.blocks == {} and newsletter.body == body and newsletter.format == "mjml"
    page = logged_in.get(reverse("email_templates:edit", args=[newsletter.pk]))
    assert b'id="content-body"' in page.content and b'id="builder-schema"' not in page.content
    edited = body.replace("The monthly letter", "Hand-made")
    logged_in.post(
        reverse("email_templates:edit", args=[newsletter.pk]),
        post_content(newsletter, body=edited, format="mjml"),
    )
    newsletter.refresh_from_db()
    assert "Hand-made" in newsletter.body


def test_preview_is_sandboxed_and_shows_the_contact(logged_in, workspace, newsletter):
    ada = ContactFactory(workspace=workspace, first_name="Ada", email="ada@example.org")
    response = logged_in.post(
        reverse("email_templates:preview"), post_content(newsletter, preview_contact=ada.pk)
    )
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'")
    assert b"Hi Ada," in response.content
    # Another workspace's contact is not found: the example person is used.
    other = ContactFactory(first_name="Zed")
    response = logged_in.post(
        reverse("email_templates:preview"), post_content(newsletter, preview_contact=other.pk)
    )
    assert b"Hi Alex," in response.content and b"Zed" not in response.content


def test_preview_says_why_a_design_cannot_be_shown(logged_in, newsletter):
    response = logged_in.post(
        reverse("email_templates:preview"),
        post_content(newsletter, blocks=json.dumps({"blocks": [{"type": "marquee"}]})),
    )
    assert "unknown block type “marquee”".encode() in response.content
    code = logged_in.post(
        reverse("email_templates:preview"),
        {"blocks": "", "format": "html", "body": "<p>{% if %}</p>", "subject": "x"},
    )
    assert b"The preview cannot be shown" in code.content


def test_checks_fail_without_footer_and_pass_with_it(logged_in, newsletter):
    ok = logged_in.post(reverse("email_templates:checks"), post_content(newsletter))
    assert b'id="checks-ok"' in ok.content
    design = json.loads(json.dumps(newsletter.blocks))
    design["blocks"] = [b for b in design["blocks"] if b["type"] != "footer"]
    failing = logged_in.post(
        reverse("email_templates:checks"), post_content(newsletter, blocks=json.dumps(design))
    )
    assert b"Add an unsubscribe link" in failing.content
    assert b"Add your postal address" in failing.content
    assert (
        b'data-blocking="true"' in failing.content and b'data-invalid-block="0"' in failing.content
    )
    design["blocks"][1]["align"] = "sideways"
    wrong = logged_in.post(
        reverse("email_templates:checks"), post_content(newsletter, blocks=json.dumps(design))
    )
    assert b"Block 2 (Header): Alignment: choose one of" in wrong.content
    assert b'data-invalid-block="2"' in wrong.content


def test_checks_locate_liquid_errors_in_code(logged_in):
    response = logged_in.post(
        reverse("email_templates:checks"),
        {
            "blocks": "",
            "format": "html",
            "subject": "Hi",
            "body": "<p>\n  {% iff x %}</p>",
        },
    )
    assert b"unexpected tag &#x27;iff&#x27;" in response.content
    assert b"(body, line 2, column 6)" in response.content


def test_plain_text_is_generated_from_the_design(logged_in, newsletter):
    response = logged_in.post(reverse("email_templates:text"), post_content(newsletter))
    assert b"The monthly letter" in response.content
    assert b"Read the full story (https://example.com/blog/lead-story)" in response.content


def test_source_shows_the_mjml_written_from_the_design(logged_in, newsletter):
    response = logged_in.post(reverse("email_templates:source"), post_content(newsletter))
    assert b"&lt;mjml&gt;" in response.content and b"The monthly letter" in response.content
    bad = logged_in.post(
        reverse("email_templates:source"),
        post_content(newsletter, blocks=json.dumps({"blocks": [{"type": "x"}]})),
    )
    assert "unknown block type “x”".encode() in bad.content


def test_contact_picker_searches_the_workspace_only(logged_in, workspace):
    # Every name is given: a random last name such as "Adams" would match "ada" too.
    ContactFactory(workspace=workspace, first_name="Ada", last_name="Byron", email="ada@x.org")
    ContactFactory(workspace=workspace, first_name="Bob", last_name="Smith", email="bob@x.org")
    ContactFactory(first_name="Adalbert", last_name="Stifter", email="adalbert@elsewhere.org")
    response = logged_in.get(reverse("email_templates:contacts"), {"q": "ada"})
    assert b"ada@x.org" in response.content
    assert b"bob@" not in response.content and b"elsewhere" not in response.content


def test_duplicate_and_delete_with_confirmation(logged_in, workspace, newsletter):
    response = logged_in.post(reverse("email_templates:duplicate", args=[newsletter.pk]))
    copy = EmailTemplate.objects.for_workspace(workspace).get(name="Copy of Newsletter")
    assert response.url == reverse("email_templates:edit", args=[copy.pk])
    confirm = logged_in.get(reverse("email_templates:delete", args=[newsletter.pk]))
    assert "Delete “Newsletter”?".encode() in confirm.content
    assert EmailTemplate.objects.for_workspace(workspace).count() == 2
    logged_in.post(reverse("email_templates:delete", args=[newsletter.pk]))
    assert list(EmailTemplate.objects.for_workspace(workspace)) == [copy]


def test_roles_without_marketing_cannot_open_templates(client, workspace, newsletter):
    user = member(workspace, Role.SUPPORT)
    client.login(email=user.email, password=PASSWORD)
    assert client.get(reverse("email_templates:list")).status_code == 403
    assert client.post(reverse("email_templates:preview"), {}).status_code == 403


def test_the_list_does_a_fixed_number_of_queries(
    logged_in, workspace, owner, django_assert_max_num_queries
):
    for key in ("survey", "birthday", "newsletter"):
        templates_service.create_from_starter(workspace, user=owner, key=key)
    with django_assert_max_num_queries(12):
        logged_in.get(reverse("email_templates:list"))


def test_send_test_goes_through_the_transport_marked_test(logged_in, workspace, owner, newsletter):
    from patron.core.models import AuditEntry
    from patron.mail.models import OutboxMessage
    from tests.mail.campaign_setup import verified_sender

    url = f"/email-templates/{newsletter.pk}/test/"
    assert 'id="test-form"' in logged_in.get(f"/email-templates/{newsletter.pk}/").content.decode()
    # No verified sender address yet: nothing goes, and the page says why.
    page = logged_in.post(url, {"addresses": "me@acme.example"}, follow=True).content.decode()
    assert "Verify a sender address first" in page
    assert not OutboxMessage.objects.exists()

    verified_sender(workspace, email="news@acme.example")
    ContactFactory(workspace=workspace, first_name="Zoë", email="zoe@example.org")
    response = logged_in.post(
        url, {"addresses": "me@acme.example, you@acme.example", "contact": "Zoë"}
    )
    assert response.status_code == 302 and response.url.endswith(f"/{newsletter.pk}/#test")
    sent = OutboxMessage.objects.filter(workspace=workspace).order_by("id")
    assert [m.to for m in sent] == [["me@acme.example"], ["you@acme.example"]]
    message = sent[0]
    assert message.subject.startswith("[Test] Zoë") and "news@acme.example" in message.from_address
    assert "The monthly letter" in message.html_body and "Hi Zoë" in message.html_body
    assert ("X-Patron-Test", "1") in [tuple(h) for h in message.headers]
    audit = AuditEntry.objects.get(action="email_template.test_sent")
    assert audit.data == {
        "template": newsletter.pk,
        "addresses": ["me@acme.example", "you@acme.example"],
    }

    # Bad addresses are refused with a clear message, and nothing more is sent.
    page = logged_in.post(url, {"addresses": "not-an-address"}, follow=True).content.decode()
    assert "“not-an-address” is not a valid email address." in page
    assert OutboxMessage.objects.count() == 2


def test_send_test_is_kept_to_the_workspace(client, workspace, newsletter):
    from patron.core.services import create_workspace
    from tests.factories import UserFactory

    stranger = UserFactory(email="eve@else.example")
    create_workspace(name="Elsewhere", owner=stranger)
    assert client.login(email=stranger.email, password=PASSWORD)
    response = client.post(f"/email-templates/{newsletter.pk}/test/", {"addresses": "e@x.io"})
    assert response.status_code == 404
