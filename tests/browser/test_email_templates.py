"""A marketer starts a template from the newsletter starter, edits it in the block
builder (add, reorder, merge tag), previews it as a contact on a phone, watches the
checks fail and pass, saves it and opens it again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from patron.audience.models import Segment
from patron.core.services import create_workspace
from patron.crm import services
from patron.mail.models import EmailTemplate
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory

SHOTS = Path("/tmp/wt-templates-shots")
SHOTS.mkdir(exist_ok=True)
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def block_types(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.locator("#builder-blocks > li").evaluate_all(
        "items => items.map(item => item.dataset.type)"
    )


def test_build_a_newsletter_preview_it_and_save(page, tmp_path: Path):
    user = UserFactory(email="mara@example.ro", name="Mara")
    workspace = create_workspace(name="Ceainăria Mara", owner=user)
    services.create_contact(workspace=workspace, first_name="Ada", last_name="Lovelace",
                            email="ada@example.org")  # fmt: skip
    services.create_contact(workspace=workspace, first_name="Bob", email="bob@example.org")
    tea_lovers = Segment.objects.create(
        workspace=workspace,
        name="Tea lovers",
        definition={
            "match": "all",
            "conditions": [{"type": "field", "field": "first_name", "op": "eq", "value": "Ada"}],
        },
    )

    log_in(page, user.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("button", name="Marketing").click()
    page.locator("nav.navbar").get_by_role("link", name="Email templates").click()
    expect(page.get_by_role("heading", name="No templates yet")).to_be_visible()
    page.get_by_role("link", name="New template").click()
    page.get_by_role("button", name="Use Newsletter").click()
    expect(page.locator(".alert-success")).to_contain_text("Template “Newsletter” created.")

    # The starter opens in the builder, and the preview shows it.
    preview = page.frame_locator("#preview-frame")
    expect(preview.get_by_text("The monthly letter")).to_be_visible()
    expect(page.locator("#checks-ok")).to_be_visible()
    expect(page.locator("#builder-blocks > li")).to_have_count(12)  # the newsletter starter
    starting = block_types(page)
    assert starting[-1] == "footer"

    # A text block: new blocks go above the footer, opened for editing.
    page.locator("#builder-add").get_by_role("button", name="Text", exact=True).click()
    text_block = page.locator("#builder-blocks > li").nth(len(starting) - 1)
    expect(text_block).to_have_attribute("data-type", "text")
    editor = text_block.get_by_role("textbox", name="Text")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("Spring tea for ")
    page.get_by_role("button", name="Insert merge tag").click()
    page.get_by_role("button", name="First name").click()
    expect(editor).to_contain_text('Spring tea for {{ contact.first_name | default: "there" }}')

    # A button, then moved above the text block.
    page.locator("#builder-add").get_by_role("button", name="Button", exact=True).click()
    button_block = page.locator("#builder-blocks > li").nth(len(starting))
    expect(button_block).to_have_attribute("data-type", "button")
    # Until it has a link, the server refuses it: the block is outlined and the check says why.
    expect(page.locator("#check-problems")).to_contain_text(
        f"Block {len(starting) + 1} (Button): Link: this is required."
    )
    expect(button_block).to_have_attribute("aria-invalid", "true")
    button_block.get_by_label("Button text").fill("Shop the tea")
    button_block.get_by_label("Link", exact=True).fill("https://mara.example/shop")
    expect(button_block).not_to_have_attribute("aria-invalid", "true")
    button_block.get_by_role("button", name="Move up").click()
    assert block_types(page)[len(starting) - 1 : len(starting) + 2] == ["button", "text", "footer"]
    # Dragging works too: the header dropped on the logo goes first.
    blocks = page.locator("#builder-blocks > li")
    blocks.nth(1).drag_to(blocks.nth(0), source_position={"x": 8, "y": 8})
    assert block_types(page)[:2] == ["heading", "logo"]

    # Preview as Ada on a phone.
    page.get_by_label("Search contacts to preview as").fill("Ada")
    expect(page.locator("#preview-contact option")).to_have_count(2)
    page.locator("#preview-contact").select_option(label="Ada Lovelace <ada@example.org>")
    page.get_by_role("button", name="Mobile").click()
    expect(page.locator("#preview-frame")).to_have_js_property("offsetWidth", 375)
    expect(preview.get_by_text("Spring tea for Ada")).to_be_visible()
    expect(preview.get_by_role("link", name="Shop the tea")).to_be_visible()
    page.screenshot(path=str(SHOTS / "builder-mobile.png"), full_page=True)

    # Dynamic content: the new text only for the "Tea lovers" segment (Ada is in it, Bob not).
    tea_text = page.locator("#builder-blocks > li[data-type=text]").last
    tea_text.get_by_role("button", name="Edit").click()
    tea_text.get_by_label("Show only to a segment").select_option(label="Tea lovers")
    expect(tea_text.locator(".badge")).to_have_text("Tea lovers")
    expect(preview.get_by_text("Spring tea for Ada")).to_be_visible()
    page.get_by_label("Search contacts to preview as").fill("")
    expect(page.locator("#preview-contact option")).to_have_count(3)
    page.locator("#preview-contact").select_option(label="Bob <bob@example.org>")
    expect(preview.get_by_text("Hi Bob,")).to_be_visible()
    expect(preview.get_by_text("Spring tea for")).to_have_count(0)

    # Without the footer the checks fail; with a new footer they pass again.
    page.locator("#builder-blocks > li[data-type=footer]").get_by_role(
        "button", name="Delete"
    ).click()
    expect(page.locator("#check-problems")).to_contain_text("Add an unsubscribe link")
    expect(page.locator("#check-problems")).to_contain_text("Add your postal address")
    page.locator("#builder-add").get_by_role("button", name="Footer", exact=True).click()
    expect(page.locator("#checks-ok")).to_be_visible()

    # The MJML the server writes is there to read beside the builder.
    page.get_by_role("tab", name="MJML").click()
    expect(page.locator("#content-source-mjml")).to_contain_text("Shop the tea</mj-button>")
    page.get_by_role("tab", name="Design").click()

    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".alert-success")).to_contain_text("Template “Newsletter” saved.")
    template = EmailTemplate.objects.for_workspace(workspace).get()
    types = [block["type"] for block in template.blocks["blocks"]]
    assert types[-3:] == ["button", "text", "footer"]
    assert "Shop the tea</mj-button>" in template.body
    assert 'Spring tea for {{ contact.first_name | default: "there" }}' in template.body
    assert f"{{% if segments contains {tea_lovers.pk} %}}" in template.body

    # Opened again from the list, the design is as it was saved.
    page.locator("nav.navbar").get_by_role("button", name="Marketing").click()
    page.locator("nav.navbar").get_by_role("link", name="Email templates").click()
    page.get_by_role("link", name="Newsletter").click()
    expect(page.locator("#builder-blocks > li")).to_have_count(len(types))
    assert block_types(page) == types
    expect(
        page.locator("#builder-blocks > li[data-type=button] .builder-summary").last
    ).to_have_text("Shop the tea")
    expect(preview.get_by_text("Spring tea for Alex")).to_be_visible()


def test_images_code_view_duplicate_and_delete(page, tmp_path: Path):
    import io

    from PIL import Image

    user = UserFactory(email="kofi@example.gh", name="Kofi")
    workspace = create_workspace(name="Kente Works", owner=user)
    logo = tmp_path / "kente-logo.png"
    Image.new("RGB", (120, 60), "orange").save(logo, "PNG")
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture")
    photo = io.BytesIO()
    Image.new("RGB", (200, 100), "purple").save(photo, "JPEG")
    (tmp_path / "cloth.jpg").write_bytes(photo.getvalue())

    log_in(page, user.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("button", name="Marketing").click()
    page.locator("nav.navbar").get_by_role("link", name="Images").click()
    page.get_by_label("Image file").set_input_files(str(fake))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".alert-danger")).to_contain_text("“notes.png” is not an image we can read")
    page.get_by_label("Image file").set_input_files(str(logo))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".alert-success")).to_contain_text("Image “kente-logo.png” uploaded.")
    expect(page.locator('[data-image="kente-logo.png"]')).to_contain_text("120 \u00d7 60")

    # A blank design; an image block picks from the library, and uploads there too.
    page.goto("/email-templates/new/")
    page.get_by_role("button", name="Use Blank design").click()
    expect(page.locator("#builder-blocks > li")).to_have_count(3)  # heading, text, footer
    page.locator("#builder-add").get_by_role("button", name="Image", exact=True).click()
    page.get_by_role("button", name="Choose from library").click()
    picker = page.locator("#image-picker")
    expect(picker.get_by_role("button", name="Use kente-logo.png")).to_be_visible()
    picker.get_by_label("Upload an image").set_input_files(str(tmp_path / "cloth.jpg"))
    picker.get_by_role("button", name="Use cloth.jpg").click()
    expect(picker).to_be_hidden()
    image_block = page.locator("#builder-blocks > li[data-type=image]")
    expect(image_block.get_by_label("Image", exact=True)).to_have_value(re.compile(r"/cloth\.jpg$"))
    image_block.get_by_label("Image description (alt text)").fill("Purple cloth")
    preview = page.frame_locator("#preview-frame")
    expect(preview.get_by_role("img", name="Purple cloth")).to_have_attribute(
        "src", re.compile(r"/mail-images/[\w-]+/cloth\.jpg$")
    )
    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".alert-success")).to_contain_text("saved")

    # The one-way switch to code (the confirmation is accepted), then edit by hand.
    page.get_by_role("button", name="Switch to code").click()
    expect(page.locator("#content-body")).to_be_visible()
    expect(page.locator("#builder")).to_have_count(0)
    body = page.locator("#content-body")
    expect(body).to_have_value(re.compile("Your heading"))
    body.fill(body.input_value().replace("Your heading", "Akwaaba {{ contact.first_name }}"))
    expect(preview.get_by_text("Akwaaba Alex")).to_be_visible()
    page.get_by_role("tab", name="Plain text").click()
    page.get_by_role("button", name="Generate from the design").click()
    expect(page.locator("#content-text")).to_have_value(re.compile("Akwaaba"))
    page.get_by_label("Template name").fill("Akwaaba")
    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".alert-success")).to_contain_text("Template “Akwaaba” saved.")
    template = EmailTemplate.objects.for_workspace(workspace).get()
    assert template.blocks == {} and "Akwaaba {{ contact.first_name }}" in template.body
    assert "Akwaaba" in template.text

    page.get_by_role("button", name="Duplicate").click()
    expect(page.locator(".alert-success")).to_contain_text("Copied as “Copy of Akwaaba”.")
    page.get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete template").click()
    expect(page.locator(".alert-success")).to_contain_text("Template “Copy of Akwaaba” deleted.")
    expect(page.locator("#templates tbody tr")).to_have_count(1)
    expect(page.locator('tr[data-template="Akwaaba"]')).to_be_visible()

    # Leaving with unsaved changes asks first (the page's dialog handler accepts).
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.type))
    page.get_by_role("link", name="Akwaaba").click()
    expect(page.locator("#content-body")).to_be_visible()
    page.get_by_label("Template name").fill("Akwaaba, changed")
    page.get_by_role("link", name="Email templates").first.click()
    expect(page.get_by_role("heading", name="Email templates")).to_be_visible()
    assert "beforeunload" in dialogs
    assert EmailTemplate.objects.for_workspace(workspace).get().name == "Akwaaba"


def test_send_a_test_of_a_saved_template(page):
    from patron.mail import templates_service
    from patron.mail.models import OutboxMessage
    from tests.mail.campaign_setup import verified_sender

    user = UserFactory(email="mara@example.ro", name="Mara")
    workspace = create_workspace(name="Ceainăria Mara", owner=user)
    verified_sender(workspace, email="news@example.ro")
    services.create_contact(workspace=workspace, first_name="Ada", email="ada@example.org")
    template = templates_service.create_from_starter(workspace, user=user, key="newsletter")

    log_in(page, user.email, PASSWORD)
    page.goto(f"/email-templates/{template.pk}/")
    expect(page.get_by_label("Send a test to")).to_have_value("mara@example.ro")
    page.get_by_label("Send a test to").fill("mara@example.ro, desk@example.ro")
    page.get_by_label("Merge tags as contact").fill("Ada")
    page.get_by_role("button", name="Send test").click()
    expect(page.locator(".alert-success")).to_contain_text(
        "Test sent to mara@example.ro, desk@example.ro."
    )
    messages = OutboxMessage.objects.filter(workspace=workspace)
    assert sorted(m.to[0] for m in messages) == ["desk@example.ro", "mara@example.ro"]
    assert all(m.subject == "[Test] Ada, this month's news from us" for m in messages)

    page.get_by_label("Send a test to").fill("not an address")
    page.get_by_role("button", name="Send test").click()
    expect(page.locator(".alert-danger")).to_contain_text("“not” is not a valid email address.")
    assert messages.count() == 2
