"""Forms that give something back: an e-book behind a form (and what an old link says),
and a demo request that opens a deal in the chosen stage."""

from __future__ import annotations

import io
import time
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from patron.capture import downloads, services
from patron.capture.models import FormSubmission
from patron.core.services import create_workspace
from patron.crm.models import Deal, Stage
from patron.crm.services import create_pipeline
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PDF = b"%PDF-1.4\n% Price list\n%%EOF\n"


def test_a_hosted_form_hands_out_the_file_and_an_old_link_says_how_to_get_a_new_one(
    page, live_server, settings
):
    settings.FORMS_MIN_FILL_SECONDS = 0
    settings.BASE_URL = live_server.url
    cache.clear()
    user = UserFactory(email="ines@example.pt")
    workspace = create_workspace(name="Azulejo", owner=user)
    price_list = downloads.upload_file(
        workspace=workspace, file=io.BytesIO(PDF), name="Price list 2026.pdf"
    )
    form = services.create_form(
        workspace=workspace,
        name="Price list",
        title="Get our price list",
        fields=[{"key": "email", "label": "Email", "maps_to": "contact.email"}],
        download_file=price_list,
    )

    page.goto(f"/f/{form.key}/")
    page.get_by_label("Email").fill("rui@example.pt")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#form-sent")).to_contain_text("The link works for 7 days.")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download “Price list 2026.pdf”").click()
    assert info.value.suggested_filename == "price-list-2026.pdf"

    # A link from long ago: the page says it expired and leads back to the form.
    submission = FormSubmission.objects.for_workspace(workspace).get()
    old = downloads.download_token(submission, now=time.time() - 30 * 86400)
    page.goto(f"/d/{old}")
    expect(page.get_by_role("heading")).to_have_text("This download link has expired")
    page.get_by_role("link", name="Get a new link: “Get our price list”").click()
    expect(page.get_by_role("heading", name="Get our price list")).to_be_visible()

    # A link with a character changed does not work, and says so.
    page.goto(f"/d/{old[:-1]}{'B' if old[-1] != 'B' else 'C'}")
    expect(page.get_by_role("heading")).to_have_text("This download link does not work")


def test_a_demo_request_opens_a_deal_in_the_chosen_stage(page, settings):
    settings.FORMS_MIN_FILL_SECONDS = 0
    cache.clear()
    user = UserFactory(email="sam@example.com", name="Sam")
    workspace = create_workspace(name="Brightline", owner=user)
    pipeline = create_pipeline(workspace=workspace, name="Inbound")
    qualified = (
        Stage.objects.for_workspace(workspace).filter(pipeline=pipeline).order_by("position")[1]
    )

    log_in(page, user.email, PASSWORD)
    page.goto("/forms/new/")
    page.get_by_role("textbox", name="Name", exact=True).fill("Demo request")
    page.get_by_label("Also", exact=True).select_option(label="Open a deal")
    page.get_by_label("Deal pipeline and stage").select_option(label=f"Inbound → {qualified.name}")
    page.get_by_role("button", name="Save form").click()
    expect(page.locator(".alert-success")).to_contain_text("Form “Demo request” created.")
    page.get_by_role("link", name="Publish").click()
    hosted = urlsplit(page.locator("#hosted-link").get_attribute("href") or "").path

    page.goto(hosted)
    page.get_by_label("Email").fill("kim@example.com")
    page.get_by_label("First name").fill("Kim")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#form-sent")).to_contain_text("Thank you")

    deal = Deal.objects.for_workspace(workspace).get()
    assert deal.stage_id == qualified.pk
    page.goto(f"/deals/{deal.pk}/")
    expect(page.locator("body")).to_contain_text("Demo request: Kim")
    expect(page.locator("body")).to_contain_text(qualified.name)


def test_the_snippet_on_a_customers_site_shows_the_download_link(page, live_server, settings):
    settings.FORMS_MIN_FILL_SECONDS = 0
    settings.BASE_URL = live_server.url
    cache.clear()
    user = UserFactory(email="ana@example.com")
    workspace = create_workspace(name="Cometa", owner=user)
    guide = downloads.upload_file(workspace=workspace, file=io.BytesIO(PDF), name="Guide.pdf")
    # The customer's site: another origin (the browser's private-network rules keep the
    # stand-in on the loopback address, under the other name of the same machine).
    customer = live_server.url.replace("localhost", "127.0.0.1")
    assert customer != live_server.url
    form = services.create_form(
        workspace=workspace,
        name="Guide",
        fields=[{"key": "email", "label": "Email", "maps_to": "contact.email"}],
        download_file=guide,
        allowed_origins=[customer],
    )
    site = (
        "<!doctype html><html><body><h1>Cometa</h1>"
        f'<div data-patron-form="{form.key}" data-patron-base="{live_server.url}"></div>'
        f'<script src="{live_server.url}/static/patron/forms.js"></script></body></html>'
    )
    page.route(
        f"{customer}/guide",
        lambda route: route.fulfill(status=200, content_type="text/html", body=site),
    )
    # Chromium asks before a public page may reach a loopback address; the test says yes.
    page.context.grant_permissions(["local-network-access"])
    page.goto(f"{customer}/guide")
    page.get_by_label("Email").fill("lu@example.com")
    page.get_by_role("button", name="Send").click()
    link = page.get_by_role("link", name="Download “Guide.pdf”")
    expect(link).to_be_visible()
    assert (link.get_attribute("href") or "").startswith(f"{live_server.url}/d/")
    assert FormSubmission.objects.for_workspace(workspace).count() == 1
