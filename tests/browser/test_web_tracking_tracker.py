"""The tracker script in a real browser: consent mode and Do Not Track held back in the
page, custom events, time on page, and a click from an email recognising the visitor."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patron.activity.models import Event
from patron.core.services import create_workspace
from patron.tracking import sites, stitching, web
from patron.tracking.models import VisitorLink
from tests.browser.test_web_tracking import (  # noqa: F401 - the fixture
    customer_site,
    html_page,
    recorded,
    wait_for,
)
from tests.factories import ContactFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def setup(live_server, customer_site, settings):  # noqa: F811
    settings.BASE_URL = live_server.url
    settings.TRACKING_BASE_URL = live_server.url
    web.sites.clear()
    origin = f"http://127.0.0.1:{customer_site.server_address[1]}"
    workspace = create_workspace(name="Bakkerij", owner=UserFactory())

    def publish(**options):
        site = sites.create_site(
            workspace=workspace, name="Bakkerij", allowed_origins=[origin], **options
        )
        snippet = sites.snippet(site)
        customer_site.pages = {
            "/": html_page("Home", "<a href='/bread'>Bread</a>", snippet),
            "/bread": html_page("Bread", "<a href='/'>Home</a>", snippet),
        }
        return site

    return workspace, origin, publish


def collected(browser_page):
    """The collect requests the page sends, as they go (those sent while a page unloads,
    the leaves, are not reported by the browser driver)."""
    sent: list[str] = []
    browser_page.on(
        "request", lambda request: sent.append(request.url) if "/t/e" in request.url else None
    )
    return sent


def test_consent_mode_sends_nothing_until_consent_then_what_waited(browser, setup):
    workspace, origin, publish = setup
    publish(consent_required=True)
    visitor = browser.new_context().new_page()
    sent = collected(visitor)
    answers = recorded(visitor)
    visitor.goto(f"{origin}/")
    expect(visitor.get_by_role("heading", name="Home")).to_be_visible()
    visitor.wait_for_function("window.patron && window.patron.loaded")
    visitor.evaluate("patron.track('recipe_opened', {recipe: 'sourdough'})")
    assert sent == []
    assert visitor.evaluate("document.cookie") == ""  # no visitor id before consent
    assert visitor.evaluate("window.patronVisitorId") is None

    visitor.evaluate("patron.consent(true)")
    wait_for(visitor, lambda: answers.count(200) == 2, "the page view and event held back")
    events = Event.objects.for_workspace(workspace)
    assert sorted(events.values_list("kind", flat=True)) == ["custom.event", "page.viewed"]
    assert "_patron_vid=" in visitor.evaluate("document.cookie")
    # The next page remembers the answer.
    visitor.get_by_role("link", name="Bread").click()
    expect(visitor.get_by_role("heading", name="Bread")).to_be_visible()
    wait_for(visitor, lambda: answers.count(200) == 3, "the second page view")
    visitor.wait_for_timeout(1000)  # and the first page's leave, sent as it unloaded
    assert events.filter(kind="page.viewed").count() == 2
    visitor.context.close()


def test_consent_refused_keeps_everything_out(browser, setup):
    workspace, origin, publish = setup
    publish(consent_required=True)
    visitor = browser.new_context().new_page()
    sent = collected(visitor)
    visitor.goto(f"{origin}/")
    visitor.wait_for_function("window.patron && window.patron.loaded")
    visitor.evaluate("patron.consent(false)")
    visitor.get_by_role("link", name="Bread").click()
    expect(visitor.get_by_role("heading", name="Bread")).to_be_visible()
    visitor.wait_for_function("window.patron && window.patron.loaded")
    visitor.evaluate("patron.track('anything')")
    assert sent == []
    assert not Event.objects.for_workspace(workspace).exists()
    visitor.context.close()


def test_do_not_track_is_honoured_in_the_page(browser, setup):
    workspace, origin, publish = setup
    publish(honour_dnt=True)
    context = browser.new_context()
    context.add_init_script("Object.defineProperty(navigator, 'doNotTrack', {get: () => '1'})")
    visitor = context.new_page()
    sent = collected(visitor)
    visitor.goto(f"{origin}/")
    visitor.wait_for_function("window.patron && window.patron.loaded")
    visitor.evaluate("patron.track('recipe_opened')")
    assert sent == []
    assert visitor.evaluate("document.cookie") == ""
    context.close()
    assert not Event.objects.for_workspace(workspace).exists()


def test_custom_events_time_on_page_and_an_email_click(browser, setup):
    workspace, origin, publish = setup
    publish()
    contact = ContactFactory(workspace=workspace, email="jan@bakkerij.example")
    token = stitching.sign_reference(workspace_id=workspace.pk, contact_id=contact.pk)
    visitor = browser.new_context().new_page()
    answers = recorded(visitor)
    # As the click redirect sends a reader of the newsletter to the site.
    visitor.goto(f"{origin}/?utm_source=newsletter&{stitching.REFERENCE_PARAMETER}={token}")
    visitor.wait_for_function("window.patron && window.patron.loaded")
    assert stitching.REFERENCE_PARAMETER not in visitor.url  # out of the address bar
    assert "utm_source=newsletter" in visitor.url
    events = Event.objects.for_workspace(workspace)
    wait_for(visitor, lambda: answers.count(200) == 1, "the page view")
    link = VisitorLink.objects.for_workspace(workspace).get()
    assert (link.contact_id, link.method) == (contact.pk, "email_click")

    visitor.evaluate("patron.track('webinar_attended', {webinar: 'Baking 101'})")
    wait_for(visitor, lambda: answers.count(200) == 2, "the custom event")
    custom = events.get(kind="custom.event")
    assert custom.contact_id == contact.pk
    assert custom.properties["name"] == "webinar_attended"
    assert custom.properties["properties"] == {"webinar": "Baking 101"}

    visitor.wait_for_timeout(1200)  # a moment on the page before leaving it
    visitor.get_by_role("link", name="Bread").click()
    expect(visitor.get_by_role("heading", name="Bread")).to_be_visible()
    wait_for(visitor, lambda: answers.count(200) == 3, "the next page view")
    # The leave goes out as the page unloads, unseen by the browser driver: give it a moment.
    visitor.wait_for_timeout(1000)
    home = events.filter(kind="page.viewed", properties__title="Home")
    assert home.get().properties["seconds"] >= 1
    assert home.get().contact_id == contact.pk
    contact.refresh_from_db()
    assert contact.first_touch_source == "newsletter"
    visitor.context.close()


def test_identify_from_the_page_and_calls_made_before_the_script_loaded(
    browser,
    setup,
    customer_site,  # noqa: F811
):
    workspace, origin, publish = setup
    site = publish(allow_identify=True)
    contact = ContactFactory(workspace=workspace, email="lotte@bakkerij.example")
    early = "<script>window.patron = {q: [['track', 'opened_early', {from: 'queue'}]]};</script>"
    customer_site.pages["/account"] = (
        f"<!doctype html><html><head><title>Account</title>{early}{sites.snippet(site)}"
        "</head><body><h1>Account</h1></body></html>"
    )
    visitor = browser.new_context().new_page()
    answers = recorded(visitor)
    visitor.goto(f"{origin}/account")
    visitor.wait_for_function("window.patron && window.patron.loaded")
    wait_for(visitor, lambda: answers.count(200) == 2, "the page view and the queued event")
    visitor.evaluate("patron.identify('lotte@bakkerij.example')")
    wait_for(visitor, lambda: answers.count(200) == 3, "the identification")
    link = VisitorLink.objects.for_workspace(workspace).get()
    assert (link.contact_id, link.method) == (contact.pk, "identify")
    events = Event.objects.for_workspace(workspace)
    queued = events.get(kind="custom.event")
    assert queued.properties["name"] == "opened_early"
    assert queued.contact_id == contact.pk  # stitched with the page view
    assert events.get(kind="page.viewed").contact_id == contact.pk
    visitor.context.close()
