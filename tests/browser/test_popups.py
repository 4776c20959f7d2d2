"""Pop-ups as a visitor meets them on the customer's own site (another loopback port): a
form appears after a delay in an accessible dialog, Escape closes it and it stays away on
the next page; a fresh visitor sends it and becomes a contact in Patron."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from patron.activity.models import Event
from patron.capture import popups
from patron.capture.services import create_form
from patron.core.services import create_workspace
from patron.crm.models import Contact
from patron.tracking import sites, web
from patron.tracking.models import VisitorLink
from tests.browser.conftest import log_in
from tests.browser.test_web_tracking import customer_site, html_page, wait_for  # noqa: F401
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_delayed_pop_up_is_closed_capped_and_sent_by_a_fresh_visitor(
    page,
    browser,
    live_server,
    customer_site,  # noqa: F811
    settings,
):
    settings.BASE_URL = live_server.url
    settings.TRACKING_BASE_URL = live_server.url
    settings.FORMS_MIN_FILL_SECONDS = 0
    cache.clear()
    web.sites.clear()
    popups.cache.clear()
    origin = f"http://127.0.0.1:{customer_site.server_address[1]}"
    user = UserFactory(email="lea@example.de", name="Lea")
    workspace = create_workspace(name="Bergwerk", owner=user)
    site = sites.create_site(workspace=workspace, name="Bergwerk.de", allowed_origins=[origin])
    form = create_form(
        workspace=workspace,
        name="Newsletter",
        title="Get our newsletter",
        fields=[
            {"key": "email", "label": "Email", "maps_to": "contact.email", "required": True},
            {"key": "first_name", "label": "First name", "maps_to": "contact.first_name"},
        ],
        allowed_origins=[origin],
    )
    popups.create_popup(
        workspace=workspace, name="Welcome", form=form, sites=[site], trigger="delay",
        trigger_value=1, cap_days=30,
    )  # fmt: skip
    snippet = sites.snippet(site)
    nav = "<a href='/pricing'>Pricing</a> <button type='button'>Menu</button>"
    customer_site.pages = {
        "/": html_page("Bergwerk home", nav, snippet),
        "/pricing": html_page("Pricing", nav, snippet),
    }

    # A visitor closes the pop-up with Escape; the next page does not show it again.
    visitor = browser.new_context().new_page()
    asked: list[int] = []
    visitor.on(
        "response",
        lambda r: asked.append(r.status) if popups.POPUPS_PATH in r.url else None,
    )
    visitor.goto(f"{origin}/")
    visitor.get_by_role("button", name="Menu").focus()
    dialog = visitor.get_by_role("dialog", name="Get our newsletter")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Email")).to_be_visible()
    assert visitor.evaluate("document.activeElement.getAttribute('role')") == "dialog"
    visitor.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert visitor.evaluate("document.activeElement.textContent") == "Menu"
    visitor.get_by_role("link", name="Pricing").click()
    expect(visitor.get_by_role("heading", name="Pricing")).to_be_visible()
    wait_for(visitor, lambda: asked == [200, 200], "the pop-ups of both pages")
    visitor.wait_for_timeout(1500)
    expect(visitor.get_by_role("dialog")).to_have_count(0)
    visitor.context.close()

    # A fresh visitor sends the form from the pop-up.
    fresh = browser.new_context().new_page()
    fresh.goto(f"{origin}/pricing")
    dialog = fresh.get_by_role("dialog", name="Get our newsletter")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Email").fill("jonas@bergwerk.example")
    dialog.get_by_label("First name").fill("Jonas")
    dialog.get_by_role("button", name="Send").click()
    expect(dialog.locator(".patron-form-sent")).to_be_visible()
    visitor_id = fresh.evaluate("window.patronVisitorId")
    assert fresh.evaluate(f"localStorage.getItem('_patron_pop{form.popups.get().pk}')") == "x"
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)
    fresh.context.close()

    contact = Contact.objects.for_workspace(workspace).get(email="jonas@bergwerk.example")
    link = VisitorLink.objects.for_workspace(workspace).get(visitor_id=visitor_id)
    assert link.contact_id == contact.pk

    log_in(page, user.email, PASSWORD)
    page.goto("/contacts/")
    page.get_by_role("link", name="Jonas").click()
    expect(page.locator("#timeline")).to_contain_text("Form submitted")
    shown = Event.objects.for_workspace(workspace).filter(
        kind="custom.event", properties__name="popup.shown"
    )
    assert shown.count() == 2
    assert shown.filter(contact_id=contact.pk).count() == 1  # the sender's, stitched


def test_marketing_adds_a_pop_up_from_the_menu(page, live_server, settings):
    user = UserFactory(email="lea@example.de", name="Lea")
    workspace = create_workspace(name="Bergwerk", owner=user)
    origin = "https://bergwerk.example"
    sites.create_site(workspace=workspace, name="Bergwerk.de", allowed_origins=[origin])
    create_form(
        workspace=workspace, name="Newsletter",
        fields=[{"key": "email", "label": "Email", "maps_to": "contact.email"}],
    )  # fmt: skip
    log_in(page, user.email, PASSWORD)
    page.get_by_role("button", name="Marketing").click()
    page.get_by_role("link", name="Pop-ups").click()
    expect(page.get_by_text("No pop-ups yet")).to_be_visible()
    page.get_by_role("link", name="New pop-up").click()
    page.get_by_label("Name").fill("Exit offer")
    page.get_by_label("Form").select_option(label="Newsletter")
    page.get_by_label("Bergwerk.de").check()
    page.get_by_role("combobox", name="Show").select_option("exit")
    page.get_by_label("Only on pages").fill("/pricing*")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main")).to_contain_text("may not be sent from https://bergwerk.example")

    from patron.capture.models import Form
    from patron.capture.services import update_form

    update_form(form=Form.objects.for_workspace(workspace).get(), allowed_origins=[origin])
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success")).to_contain_text("Pop-up “Exit offer” saved.")
    row = page.locator("#popups tr", has_text="Exit offer")
    expect(row).to_contain_text("/pricing*")
    expect(row).to_contain_text("Bergwerk.de")


def test_scroll_depth_and_exit_intent_on_the_pages_they_are_meant_for(
    browser,
    live_server,
    customer_site,  # noqa: F811
    settings,
):
    settings.BASE_URL = live_server.url
    settings.TRACKING_BASE_URL = live_server.url
    cache.clear()
    web.sites.clear()
    popups.cache.clear()
    origin = f"http://127.0.0.1:{customer_site.server_address[1]}"
    user = UserFactory(email="lea@example.de", name="Lea")
    workspace = create_workspace(name="Bergwerk", owner=user)
    site = sites.create_site(workspace=workspace, name="Bergwerk.de", allowed_origins=[origin])
    fields = [{"key": "email", "label": "Email", "maps_to": "contact.email"}]
    guide = create_form(workspace=workspace, name="Guide", title="The climbing guide",
                        fields=fields, allowed_origins=[origin])  # fmt: skip
    offer = create_form(workspace=workspace, name="Offer", title="Before you go",
                        fields=fields, allowed_origins=[origin])  # fmt: skip
    popups.create_popup(workspace=workspace, name="Guide", form=guide, sites=[site],
                        trigger="scroll", trigger_value=60, url_patterns=["/blog/*"])  # fmt: skip
    popups.create_popup(workspace=workspace, name="Offer", form=offer, sites=[site],
                        trigger="exit", url_patterns=["/pricing*"])  # fmt: skip
    snippet = sites.snippet(site)
    tall = "<div style='height:3000px'>Long read</div><p>The end</p>"
    customer_site.pages = {
        "/blog/routes": html_page("Routes", tall, snippet),
        "/pricing": html_page("Pricing", tall, snippet),
    }

    visitor = browser.new_context().new_page()
    asked: list[int] = []
    visitor.on("response", lambda r: asked.append(r.status) if "/t/popups" in r.url else None)
    visitor.goto(f"{origin}/blog/routes")
    wait_for(visitor, lambda: asked == [200], "the pop-ups of the blog page")
    visitor.mouse.move(300, 200)
    visitor.mouse.move(300, -10)  # not this page's pop-up
    visitor.mouse.wheel(0, 600)
    visitor.wait_for_timeout(500)
    expect(visitor.get_by_role("dialog")).to_have_count(0)  # not deep enough yet
    visitor.get_by_text("The end").scroll_into_view_if_needed()
    dialog = visitor.get_by_role("dialog", name="The climbing guide")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)

    visitor.goto(f"{origin}/pricing")
    wait_for(visitor, lambda: asked == [200, 200], "the pop-ups of the pricing page")
    visitor.get_by_text("The end").scroll_into_view_if_needed()
    visitor.wait_for_timeout(500)
    expect(visitor.get_by_role("dialog")).to_have_count(0)
    visitor.mouse.move(300, 200)
    visitor.mouse.move(300, -10)
    expect(visitor.get_by_role("dialog", name="Before you go")).to_be_visible()
    visitor.context.close()


def test_in_consent_mode_pop_ups_wait_for_consent(
    browser,
    live_server,
    customer_site,  # noqa: F811
    settings,
):
    settings.BASE_URL = live_server.url
    settings.TRACKING_BASE_URL = live_server.url
    cache.clear()
    web.sites.clear()
    popups.cache.clear()
    origin = f"http://127.0.0.1:{customer_site.server_address[1]}"
    user = UserFactory(email="lea@example.de", name="Lea")
    workspace = create_workspace(name="Bergwerk", owner=user)
    site = sites.create_site(
        workspace=workspace, name="Bergwerk.de", allowed_origins=[origin], consent_required=True
    )
    form = create_form(
        workspace=workspace, name="Newsletter", title="Get our newsletter",
        fields=[{"key": "email", "label": "Email", "maps_to": "contact.email"}],
        allowed_origins=[origin],
    )  # fmt: skip
    popups.create_popup(workspace=workspace, name="Welcome", form=form, sites=[site],
                        trigger="delay", trigger_value=1)  # fmt: skip
    customer_site.pages = {"/": html_page("Bergwerk home", "", sites.snippet(site))}

    visitor = browser.new_context().new_page()
    asked: list[str] = []
    visitor.on("request", lambda r: asked.append(r.url) if "/t/popups" in r.url else None)
    visitor.goto(f"{origin}/")
    visitor.wait_for_timeout(1500)
    assert asked == []
    expect(visitor.get_by_role("dialog")).to_have_count(0)
    visitor.evaluate("window.patron.consent(true)")
    expect(visitor.get_by_role("dialog", name="Get our newsletter")).to_be_visible()
    assert len(asked) == 1
    visitor.context.close()
