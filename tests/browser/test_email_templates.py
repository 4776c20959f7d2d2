"""A marketer starts a template from the newsletter starter, edits it in the block
builder (add, reorder, merge tag), previews it as a contact on a phone, watches the
checks fail and pass, saves it and opens it again."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

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
    button_block.get_by_label("Button text").fill("Shop the tea")
    button_block.get_by_label("Link", exact=True).fill("https://mara.example/shop")
    button_block.get_by_role("button", name="Move up").click()
    assert block_types(page)[len(starting) - 1 : len(starting) + 2] == ["button", "text", "footer"]

    # Preview as Ada on a phone.
    page.get_by_label("Search contacts to preview as").fill("Ada")
    expect(page.locator("#preview-contact option")).to_have_count(2)
    page.locator("#preview-contact").select_option(label="Ada Lovelace <ada@example.org>")
    page.get_by_role("button", name="Mobile").click()
    expect(page.locator("#preview-frame")).to_have_js_property("offsetWidth", 375)
    expect(preview.get_by_text("Spring tea for Ada")).to_be_visible()
    expect(preview.get_by_role("link", name="Shop the tea")).to_be_visible()
    page.screenshot(path=str(SHOTS / "builder-mobile.png"), full_page=True)

    # Without the footer the checks fail; with a new footer they pass again.
    page.locator("#builder-blocks > li[data-type=footer]").get_by_role(
        "button", name="Delete"
    ).click()
    expect(page.locator("#check-problems")).to_contain_text("Add an unsubscribe link")
    expect(page.locator("#check-problems")).to_contain_text("Add your postal address")
    page.locator("#builder-add").get_by_role("button", name="Footer", exact=True).click()
    expect(page.locator("#checks-ok")).to_be_visible()

    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".alert-success")).to_contain_text("Template “Newsletter” saved.")
    template = EmailTemplate.objects.for_workspace(workspace).get()
    types = [block["type"] for block in template.blocks["blocks"]]
    assert types[-3:] == ["button", "text", "footer"]
    assert "Shop the tea</mj-button>" in template.body
    assert 'Spring tea for {{ contact.first_name | default: "there" }}' in template.body

    # Opened again from the list, the design is as it was saved.
    page.locator("nav.navbar").get_by_role("button", name="Marketing").click()
    page.locator("nav.navbar").get_by_role("link", name="Email templates").click()
    page.get_by_role("link", name="Newsletter").click()
    assert block_types(page) == types
    expect(
        page.locator("#builder-blocks > li[data-type=button] .builder-summary").last
    ).to_have_text("Shop the tea")
    expect(preview.get_by_text("Spring tea for Alex")).to_be_visible()
