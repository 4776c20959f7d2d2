"""The web tracker as people meet it: an admin adds the website and copies its snippet; a
visitor browses the site anonymously, sends a form, and the marketer sees the visits."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from patron.activity.models import Event
from patron.audience import lists
from patron.audience.models import Subscription
from patron.capture.services import create_form
from patron.core.services import create_workspace
from patron.crm.models import Contact
from patron.mail.models import OutboxMessage
from patron.tracking import sites, web
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_add_a_website_and_copy_its_snippet(page, live_server):
    user = UserFactory(email="ines@example.pt", name="Inês")
    create_workspace(name="Loja Azul", owner=user)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)

    log_in(page, user.email, PASSWORD)
    page.goto("/settings/")
    page.get_by_role("link", name="Websites").click()
    expect(page.get_by_text("No websites yet")).to_be_visible()
    page.get_by_label("Name").fill("Loja Azul shop")
    page.get_by_label("Site addresses").fill("shop.lojaazul.example")
    page.get_by_role("button", name="Add website").click()
    expect(page.locator("#id_allowed_origins_error")).to_contain_text("is not a site address")

    page.get_by_label("Site addresses").fill("https://shop.lojaazul.example")
    page.get_by_label("Track only after consent").check()
    page.get_by_role("button", name="Add website").click()
    expect(page.locator(".alert-success")).to_contain_text("Site Loja Azul shop added.")
    size = sites.tracker_sizes()["gzipped"]
    expect(page.locator("main")).to_contain_text("gzipped")
    page.get_by_role("button", name="Copy snippet").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("<script async src=") and "/static/patron/tracker.js" in copied
    assert 'data-consent="required"' in copied and "/t/e" in copied
    assert size < 4000

    page.get_by_role("link", name="All websites").click()
    expect(page.locator("#sites")).to_contain_text("https://shop.lojaazul.example")
    expect(page.locator("#sites")).to_contain_text("After consent")


# --- The acceptance flow: a visitor on the customer's own site ----------------------------


class Site(ThreadingHTTPServer):
    pages: dict[str, str]


class Handler(BaseHTTPRequestHandler):
    server: Site

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        html = self.server.pages.get(path)
        if html is None:
            self.send_error(404)
            return
        data = html.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def customer_site() -> Iterator[Site]:
    """The customer's own website, on another loopback port (another origin)."""
    server = Site(("127.0.0.1", 0), Handler)
    server.pages = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def html_page(title: str, body: str, snippet: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{snippet}"
        f"</head><body><h1>{title}</h1>{body}</body></html>"
    )


def recorded(browser_page) -> list[int]:
    """The statuses of the page's collect requests, as their answers arrive (waiting on
    these rather than on the database: SQLite's shared in-memory test database makes a
    reader lock out the live server's writes)."""
    statuses: list[int] = []
    browser_page.on(
        "response",
        lambda response: statuses.append(response.status) if "/t/e" in response.url else None,
    )
    return statuses


def viewing(browser_page):  # type: ignore[no-untyped-def]
    """Expect the collect request of what comes next (a page view) to be answered.

    A beacon still in flight when the page is left goes on, but its answer is no longer
    the page's to report: waiting for it before the next click keeps the count whole.
    """
    return browser_page.expect_response(
        lambda response: "/t/e" in response.url and response.request.method == "POST"
    )


def wait_for(browser_page, condition, what: str, limit: float = 15.0) -> None:
    """Wait until ``condition()``, letting the browser's events come in meanwhile."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return
        browser_page.wait_for_timeout(100)
    raise AssertionError(f"still waiting for {what}")


def test_anonymous_visits_then_a_form_put_the_visits_on_the_contacts_timeline(
    page, browser, live_server, customer_site, settings
):
    settings.BASE_URL = live_server.url
    settings.TRACKING_BASE_URL = live_server.url
    settings.FORMS_MIN_FILL_SECONDS = 0
    cache.clear()
    web.sites.clear()
    origin = f"http://127.0.0.1:{customer_site.server_address[1]}"
    user = UserFactory(email="noor@example.nl", name="Noor")
    workspace = create_workspace(name="Fietsen", owner=user)
    site = sites.create_site(workspace=workspace, name="Fietsen.nl", allowed_origins=[origin])
    newsletter = lists.create_list(workspace=workspace, name="Fietsnieuws", double_opt_in=True)
    form = create_form(
        workspace=workspace,
        name="Brochure",
        title="Get the brochure",
        fields=[
            {"key": "email", "label": "Email", "maps_to": "contact.email"},
            {"key": "first_name", "label": "First name", "maps_to": "contact.first_name"},
        ],
        allowed_origins=[origin],
        lists=[newsletter],
        consent_text="Yes, send me Fietsnieuws every month.",
        tags=["brochure"],
    )
    snippet = sites.snippet(site)
    nav = "<a href='/pricing'>Pricing</a> <a href='/brochure'>Brochure</a>"
    form_tag = (
        f'<div data-patron-form="{form.key}" data-patron-base="{live_server.url}"></div>'
        f'<script src="{live_server.url}/static/patron/forms.js" async></script>'
    )
    customer_site.pages = {
        "/": html_page("Fietsen home", nav, snippet),
        "/pricing": html_page("Pricing", nav, snippet),
        "/brochure": html_page("Brochure", form_tag, snippet),
    }

    visitor = browser.new_context().new_page()
    answers = recorded(visitor)
    with viewing(visitor):
        visitor.goto(f"{origin}/?utm_source=newsletter&utm_medium=email&utm_campaign=spring")
    expect(visitor.get_by_role("heading", name="Fietsen home")).to_be_visible()
    with viewing(visitor):
        visitor.get_by_role("link", name="Pricing").click()
    expect(visitor.get_by_role("heading", name="Pricing")).to_be_visible()
    with viewing(visitor):
        visitor.get_by_role("link", name="Brochure").click()
    expect(visitor.get_by_label("Email")).to_be_visible()
    wait_for(visitor, lambda: answers.count(200) == 3, "three page views")
    views = Event.objects.for_workspace(workspace).filter(kind="page.viewed")
    assert views.count() == 3
    assert set(views.values_list("contact_id", flat=True)) == {None}
    visitor_id = visitor.evaluate("window.patronVisitorId")
    assert set(views.values_list("visitor_id", flat=True)) == {visitor_id}

    visitor.get_by_label("Email").fill("sanne@fietsen.example")
    visitor.get_by_label("First name").fill("Sanne")
    visitor.get_by_label("Yes, send me Fietsnieuws every month.").check()
    visitor.get_by_role("button", name="Send").click()
    expect(visitor.locator(".patron-form-sent")).to_be_visible()
    contact = Contact.objects.for_workspace(workspace).get(email="sanne@fietsen.example")
    assert set(views.values_list("contact_id", flat=True)) == {contact.pk}

    # Double opt-in: the confirmation waits in the Outbox; Sanne follows its link.
    log_in(page, user.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("link", name="Outbox").click()
    page.get_by_role("link", name="Please confirm your subscription to Fietsnieuws").click()
    expect(page.locator("#message-to")).to_have_text("sanne@fietsen.example")
    confirmation = OutboxMessage.objects.get(subject__contains="Fietsnieuws")
    confirm_url = re.search(r"https?://\S+/\S+", confirmation.text_body).group(0)
    visitor.goto(confirm_url)
    visitor.get_by_role("button", name="Confirm my subscription").click()
    expect(visitor.get_by_role("button", name="Confirm my subscription")).to_have_count(0)
    visitor.context.close()
    subscription = Subscription.objects.for_workspace(workspace).get(contact=contact)
    assert subscription.status == "subscribed"

    page.goto("/contacts/")
    page.get_by_role("link", name="Sanne").click()
    expect(page.locator("#first-touch")).to_contain_text("newsletter")
    expect(page.locator("#first-touch")).to_contain_text("spring")
    expect(page.locator("#contact-lists")).to_contain_text("Fietsnieuws")
    expect(page.get_by_text("brochure", exact=True)).to_be_visible()
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Form submitted")
    expect(timeline.get_by_text("Page viewed")).to_have_count(3)
    expect(timeline).to_contain_text("Fietsen home")
    expect(timeline).to_contain_text("Pricing")
