"""The journey, end to end: a stranger on the website becomes a customer.

Anonymous visits on the company's own site, an e-book behind a form, a nurture
workflow's email in the Outbox, an open and a click that raise the score, the
hand-off of the new MQL to a salesperson, who accepts, opens a deal, sends a
quote that the contact accepts, wins the deal, and the funnel shows the way.

The background work (the workflow engine, the send pipeline, the tracking hit
processor, scoring, the funnel rollup) is run here the way the worker runs it,
one round at a time, so that each step can be looked at.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from patron.activity.models import Event
from patron.automation import lifecycle, scoring
from patron.automation.models import Handoff
from patron.capture import downloads
from patron.capture.services import create_form
from patron.core.roles import Role
from patron.core.services import create_workspace
from patron.crm import assignment
from patron.crm.models import AssignmentStrategy, Contact, Deal, Task
from patron.insights import rollups
from patron.mail.models import EmailTemplate, OutboxMessage
from patron.tracking import sites, web
from patron.tracking.services import process_hits
from tests.automation.workflow_helpers import published, run
from tests.browser.conftest import log_in
from tests.browser.test_web_tracking import (
    customer_site,
    html_page,
    recorded,
    viewing,
    wait_for,
)
from tests.factories import PASSWORD, MembershipFactory, UserFactory
from tests.mail.campaign_setup import verified_sender

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

__all__ = ["customer_site"]  # the fixture, shared with the web tracking tests

DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
PDF = b"%PDF-1.4\n% A guide to choosing a CRM\n%%EOF\n"


def test_a_visitor_becomes_a_customer(page, browser, live_server, customer_site, settings):
    settings.BASE_URL = live_server.url
    settings.TRACKING_BASE_URL = live_server.url
    settings.FORMS_MIN_FILL_SECONDS = 0
    # Hits made right after a message was made look like scanners; here the reader is quick.
    settings.TRACKING_MACHINE_SECONDS = 0
    settings.TRACKING_SETTLE_SECONDS = 0
    cache.clear()
    web.sites.clear()
    origin = f"http://127.0.0.1:{customer_site.server_address[1]}"

    # The business: a marketer (the owner) and a salesperson who gets the new leads.
    mia = UserFactory(email="mia@nordlicht.example", name="Mia Marketer")
    workspace = create_workspace(name="Nordlicht CRM", owner=mia)
    sam = UserFactory(email="sam@nordlicht.example", name="Sam Seller")
    MembershipFactory(workspace=workspace, user=sam, role=Role.SALES)
    assignment.save_rule(
        workspace=workspace,
        object_type="contact",
        name="New leads to Sam",
        conditions=[],
        strategy=AssignmentStrategy.USER,
        user=sam,
    )
    for name, kind, points in [
        ("E-book downloaded", "file.downloaded", 30),
        ("Email opened", "email.opened", 10),
        ("Email link clicked", "email.clicked", 20),
    ]:
        scoring.save_scoring_rule(
            workspace=workspace, name=name, kind="behaviour", points=points, event_kind=kind
        )
    lifecycle.save_lifecycle_rule(workspace=workspace, trigger="score", threshold=50, stage="mql")
    lifecycle.save_lifecycle_rule(workspace=workspace, trigger="deal_won", stage="customer")

    site = sites.create_site(
        workspace=workspace, name="nordlicht.example", allowed_origins=[origin]
    )
    guide = downloads.upload_file(
        workspace=workspace, file=io.BytesIO(PDF), name="Choosing a CRM.pdf"
    )
    form = create_form(
        workspace=workspace,
        name="E-book: choosing a CRM",
        title="Get the e-book",
        fields=[
            {"key": "email", "label": "Email", "maps_to": "contact.email"},
            {"key": "first_name", "label": "First name", "maps_to": "contact.first_name"},
        ],
        tags=["ebook-crm"],
        allowed_origins=[origin],
        download_file=guide,
    )
    verified_sender(workspace, email="hello@nordlicht.example")
    nurture_email = EmailTemplate.objects.create(
        workspace=workspace,
        name="E-book follow-up",
        format="html",
        subject="Your CRM guide, {{ contact.first_name }}",
        body=(
            '<html><body><p>Hello {{ contact.first_name | default: "there" }},</p>'
            f'<p>Chapter 3 compares prices: <a href="{origin}/pricing">see our plans</a>.</p>'
            '<p>{{ postal_address }} · <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
            "</body></html>"
        ),
    )
    published(
        workspace,
        [
            {"id": "tag", "type": "add_tag", "tag": "nurture"},
            {"id": "mail", "type": "send_email", "template": nurture_email.pk},
        ],
        trigger={"type": "form_submitted", "form": form.pk},
        name="E-book nurture",
    )

    # 1. A stranger reads two pages of the site, then asks for the e-book.
    snippet = sites.snippet(site)
    nav = "<a href='/pricing'>Pricing</a> <a href='/ebook'>E-book</a>"
    form_tag = (
        f'<div data-patron-form="{form.key}" data-patron-base="{live_server.url}"></div>'
        f'<script src="{live_server.url}/static/patron/forms.js" async></script>'
    )
    customer_site.pages = {
        "/": html_page("Nordlicht", nav, snippet),
        "/pricing": html_page("Pricing", nav, snippet),
        "/ebook": html_page("The CRM e-book", form_tag, snippet),
    }
    # Lena's own browser (a headless one names itself so, and would count as a link scanner).
    visitor = browser.new_context(accept_downloads=True, user_agent=DESKTOP_CHROME).new_page()
    answers = recorded(visitor)
    with viewing(visitor):
        visitor.goto(f"{origin}/?utm_source=linkedin&utm_medium=social&utm_campaign=crm-guide")
    with viewing(visitor):
        visitor.get_by_role("link", name="Pricing").click()
    with viewing(visitor):
        visitor.get_by_role("link", name="E-book").click()
    wait_for(visitor, lambda: answers.count(200) == 3, "three page views")
    visitor.get_by_label("Email").fill("lena@brightwave.example")
    visitor.get_by_label("First name").fill("Lena")
    visitor.get_by_role("button", name="Send").click()
    download_link = visitor.locator(".patron-form-download")
    expect(download_link).to_contain_text("Choosing a CRM.pdf")
    with visitor.expect_download() as download:
        download_link.click()
    assert download.value.suggested_filename == "choosing-a-crm.pdf"

    lena = Contact.objects.for_workspace(workspace).get(email="lena@brightwave.example")
    views = Event.objects.for_workspace(workspace).filter(kind="page.viewed")
    assert set(views.values_list("contact_id", flat=True)) == {lena.pk}  # stitched

    # 2. The worker: the form enrols her in the nurture workflow, whose email is sent.
    from patron.automation import engine

    engine.follow_activity()
    run(workspace)
    message = OutboxMessage.objects.get(subject="Your CRM guide, Lena")
    assert message.to == ["lena@brightwave.example"]
    scoring.follow_activity()
    lena.refresh_from_db()
    assert lena.score == 30  # the e-book so far

    # 3. Lena opens the email and clicks its link (in her own mail client: her browser).
    html = message.html_body
    pixel = re.search(r'src="([^"]*/t/o/[^"]+)"', html).group(1)
    click = re.search(r'href="([^"]*/t/c/[^"]+)"', html).group(1)
    mail_client = browser.new_context(user_agent=DESKTOP_CHROME).new_page()
    mail_client.goto(pixel.replace("&amp;", "&"))
    # The click lands on the site's pricing page, whose page view is awaited: the test
    # database is one connection, shared with the server while it answers.
    with viewing(mail_client):
        mail_client.goto(click.replace("&amp;", "&"))
    expect(mail_client.get_by_role("heading", name="Pricing")).to_be_visible()
    process_hits()
    scoring.follow_activity()
    lena.refresh_from_db()
    assert lena.score == 60
    assert lena.lifecycle_stage == "mql"
    assert lena.owner_id == sam.pk
    assert Task.objects.for_workspace(workspace).filter(contact=lena, assignee=sam).exists()

    # 4. Sam is told, accepts the lead, and opens a deal for her.
    log_in(page, sam.email, PASSWORD)
    expect(page.locator("#unread-count")).to_contain_text("1")
    page.locator("nav.navbar").get_by_role("link", name="Hand-offs").click()
    expect(page.locator("#handoffs")).to_contain_text("Lena")
    page.get_by_role("button", name=re.compile(r"^Accept Lena")).click()
    expect(page.get_by_role("alert")).to_contain_text("is now a sales-qualified lead")
    assert Handoff.objects.for_workspace(workspace).get(contact=lena).status == "accepted"

    page.get_by_role("link", name=re.compile(r"^Lena")).first.click()
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("File downloaded")
    expect(timeline).to_contain_text("Your CRM guide, Lena")  # the subject she got
    expect(timeline).to_contain_text("Email opened")
    expect(timeline).to_contain_text("Accepted by sales")
    expect(page.locator("#first-touch")).to_contain_text("linkedin")

    # 5. Sam opens a deal for her and sends a quote; Lena accepts it from the email.
    page.get_by_role("link", name="Add deal").click()
    page.get_by_label("Name").fill("Brightwave CRM rollout")
    page.get_by_label("Amount").fill("12000")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Brightwave CRM rollout")).to_be_visible()
    deal = Deal.objects.for_workspace(workspace).get(name="Brightwave CRM rollout")
    assert list(deal.contacts.all()) == [lena]
    page.get_by_role("link", name="New quote").click()
    page.get_by_label("Line 1 Description").fill("Patron rollout, 25 seats")
    page.get_by_label("Line 1 Quantity").fill("1")
    page.get_by_label("Line 1 Unit price").fill("12000")
    page.get_by_role("button", name="Save quote").click()
    page.get_by_role("button", name="Send to the contact").click()
    expect(page.locator("#quote-status")).to_contain_text("Sent")
    quote_mail = OutboxMessage.objects.get(subject__startswith="Quote ")
    assert quote_mail.to == ["lena@brightwave.example"]
    quote_link = re.search(r'href="([^"]*/q/[^"]+)"', quote_mail.html_body).group(1)
    lena_browser = browser.new_context(user_agent=DESKTOP_CHROME).new_page()
    lena_browser.goto(quote_link.replace("&amp;", "&"))
    lena_browser.get_by_label("Your full name").fill("Lena Berg")
    lena_browser.get_by_role("button", name="Accept this quote").click()
    expect(lena_browser.locator("#quote-answer")).to_contain_text("Accepted by Lena Berg")
    lena_browser.context.close()

    # 6. Sam wins the deal on the board; the lifecycle rule makes Lena a customer.
    page.locator("nav.navbar").get_by_role("link", name="Deals").click()
    move = page.get_by_label("Move Brightwave CRM rollout to")
    move.select_option(label="Won")
    move.locator("xpath=..").get_by_role("button", name="Move").click()
    won = page.get_by_role("list", name="Won", exact=True)
    expect(won.locator(".board-card", has_text="Brightwave CRM rollout")).to_be_visible()
    scoring.follow_activity()
    lena.refresh_from_db()
    assert lena.lifecycle_stage == "customer"
    stages = list(
        Event.objects.for_workspace(workspace)
        .filter(kind="contact.lifecycle_changed", contact_id=lena.pk)
        .order_by("id")
        .values_list("properties__to", flat=True)
    )
    assert stages == ["mql", "sql", "customer"]

    # 7. The funnel report shows the way she came (the rollup the worker keeps).
    rollups.refresh_stage_entries()
    page.goto("/reports/funnel/")
    table = page.locator("table").last
    for stage in ("Marketing-qualified lead", "Sales-qualified lead", "Customer"):
        row = table.locator("tr", has_text=stage)
        expect(row.locator("td").nth(1)).to_have_text("1")  # reached in the period

    # 8. Mia finds the workflow's email with its numbers, apart from her campaigns.
    page.context.clear_cookies()  # Sam signs out
    log_in(page, mia.email, PASSWORD)
    page.goto("/campaigns/")
    page.locator("#campaign-kinds").get_by_role("link", name="Sent by workflows").click()
    nurture = page.locator("#campaigns tbody tr")
    expect(nurture).to_have_count(1)
    expect(nurture).to_contain_text("E-book nurture")
    expect(nurture.locator(".campaign-counts")).to_have_text("1 / 1")
    mail_client.context.close()
    visitor.context.close()
