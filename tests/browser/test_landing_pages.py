"""A marketer builds a landing page with a text block and a form that hands out an e-book,
publishes it; a visitor opens it, sends the form and downloads the e-book."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from patron.activity.models import Event
from patron.capture.models import FormSubmission, LandingPage
from patron.core.services import create_workspace
from patron.crm.models import Contact
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PDF = b"%PDF-1.7\n% The CRM guide\n%%EOF\n"


def test_build_publish_visit_submit_and_download(page, browser, live_server, settings, tmp_path):
    settings.FORMS_MIN_FILL_SECONDS = 0
    settings.BASE_URL = live_server.url  # the download link is absolute (it is also mailed)
    cache.clear()
    user = UserFactory(email="lena@example.de", name="Lena")
    workspace = create_workspace(name="Nordlicht", owner=user)
    ebook = tmp_path / "CRM guide.pdf"
    ebook.write_bytes(PDF)

    log_in(page, user.email, PASSWORD)
    # The e-book goes into the download library.
    page.locator("nav.navbar").get_by_role("button", name="Marketing").click()
    page.locator("nav.navbar").get_by_role("link", name="Downloads").click()
    page.get_by_label("File", exact=True).set_input_files(str(ebook))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".alert-success")).to_contain_text("“CRM guide.pdf” uploaded.")

    # A form that delivers it.
    page.goto("/forms/new/")
    page.get_by_role("textbox", name="Name", exact=True).fill("E-book request")
    page.get_by_label("Deliver a file").select_option(label="CRM guide.pdf")
    page.get_by_label("The download link works for (days)").fill("5")
    page.get_by_role("button", name="Save form").click()
    expect(page.locator(".alert-success")).to_contain_text("Form “E-book request” created.")

    # The landing page: a text block and the form block.
    page.locator("nav.navbar").get_by_role("button", name="Marketing").click()
    page.locator("nav.navbar").get_by_role("link", name="Landing pages").click()
    page.get_by_role("link", name="New landing page").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("E-book page")
    page.get_by_label("Address").fill("crm-guide")
    page.get_by_label("Page title").fill("Get the CRM guide")
    page.get_by_label("Description").fill("Forty pages on keeping customers.")
    add = page.locator("#builder-add")
    add.get_by_role("button", name="Text", exact=True).click()
    blocks = page.locator("#builder-blocks")
    text = blocks.get_by_role("textbox", name="Text")
    text.fill("Forty pages on keeping customers <script>alert(1)</script>")
    add.get_by_role("button", name="Form", exact=True).click()
    blocks.get_by_label("Form", exact=True).select_option(label="E-book request")
    expect(blocks.locator(".builder-block")).to_have_count(3)  # the heading, text and form
    # The preview beside the builder shows the page as built so far, the form included.
    preview = page.frame_locator("#preview-frame")
    expect(preview.locator("body")).to_contain_text("Forty pages on keeping customers")
    expect(preview.get_by_role("button", name="Send")).to_be_visible()
    page.get_by_role("button", name="Save page").click()
    expect(page.locator(".alert-success")).to_contain_text("Page “E-book page” created.")
    expect(page.locator("#page-status")).to_have_text("Draft")
    landing = LandingPage.objects.for_workspace(workspace).get()
    assert [block["type"] for block in landing.blocks["blocks"]] == ["heading", "text", "form"]

    page.get_by_role("button", name="Publish").click()
    expect(page.locator("#page-status")).to_have_text("Published")
    address = urlsplit(page.locator("#public-link").get_attribute("href") or "").path
    assert address == "/p/nordlicht/crm-guide"

    # A visitor, in a browser of their own.
    visitor = browser.new_context(base_url=live_server.url, accept_downloads=True)
    visitor.set_default_timeout(10_000)
    tab = visitor.new_page()
    tab.goto(address + "?utm_source=ads")
    expect(tab).to_have_title("Get the CRM guide")
    expect(tab.locator("#landing-page")).to_contain_text("<script>alert(1)</script>")
    tab.get_by_label("Email").fill("jon@example.org")
    tab.get_by_label("First name").fill("Jon")
    tab.get_by_role("button", name="Send").click()
    expect(tab.locator(".alert-success")).to_contain_text("Thank you")
    expect(tab.locator(".alert-success")).to_contain_text("The link works for 5 days.")
    with tab.expect_download() as download_info:
        tab.get_by_role("link", name="Download “CRM guide.pdf”").click()
    download = download_info.value
    assert download.suggested_filename == "crm-guide.pdf"
    assert Path(download.path()).read_bytes() == PDF
    # Reloading the thank-you sends nothing again (the post answered with a redirect).
    tab.reload()
    expect(tab.locator(".alert-success")).to_contain_text("Thank you")
    visitor.close()

    contact = Contact.objects.for_workspace(workspace).get(email="jon@example.org")
    submission = FormSubmission.objects.for_workspace(workspace).get()
    assert submission.landing_page_id == landing.pk and submission.contact_id == contact.pk
    view = Event.objects.for_workspace(workspace).get(kind="page.viewed")
    assert view.visitor_id == submission.visitor_id != ""
    assert view.properties["utm_source"] == "ads"
    downloaded = Event.objects.for_workspace(workspace).get(kind="file.downloaded")
    assert downloaded.contact_id == contact.pk
    assert downloaded.properties["file"] == "CRM guide.pdf"

    # The marketer sees the numbers.
    page.goto("/landing-pages/")
    row = page.locator('tr[data-page="E-book page"]')
    expect(row.locator('[data-stat="views"]')).to_have_text("1")
    expect(row.locator('[data-stat="submissions"]')).to_have_text("1")
    expect(row.locator('[data-stat="conversion"]')).to_have_text("100 %")
