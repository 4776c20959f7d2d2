"""Landing pages: slugs, building from blocks, publishing, the public page, views,
submissions from the page and the numbers on the list."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from patron.activity.models import Event
from patron.capture import pages, services
from patron.capture.models import FormSubmission, LandingPage, PageStatus
from tests.capture.conftest import valid
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


def document(*blocks):
    return {"version": 1, "settings": {}, "blocks": list(blocks)}


def text(html):
    return {"type": "text", "text": html}


def form_block(form):
    return {"type": "form", "form": form.pk}


@pytest.fixture
def page(workspace, owner, signup):
    return pages.create_page(
        workspace=workspace,
        created_by=owner,
        name="E-book",
        slug="free-ebook",
        title="The CRM guide",
        meta_description="Everything about CRM in 40 pages.",
        blocks=document(
            {"type": "heading", "text": "Get the guide"},
            text("<p>Forty pages of <strong>advice</strong>.</p>"),
            form_block(signup),
        ),
    )


@pytest.fixture
def published(page):
    return pages.publish_page(page=page)


# --- Slugs --------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["", "-ebook", "ebook-", "e--", "e_book", "e book", "x" * 81])
def test_bad_slugs_are_refused(workspace, slug):
    with pytest.raises(pages.PageInvalid) as caught:
        pages.create_page(workspace=workspace, name="P", slug=slug, title="P")
    assert "slug" in caught.value.errors
    assert not LandingPage.objects.for_workspace(workspace).exists()


def test_reserved_slugs_are_refused(workspace):
    with pytest.raises(pages.PageInvalid, match="kept for Patron"):
        pages.create_page(workspace=workspace, name="P", slug="admin", title="P")


def test_slugs_are_unique_per_workspace_only(workspace, page):
    with pytest.raises(pages.PageInvalid, match="Another page"):
        pages.create_page(workspace=workspace, name="Copy", slug="free-ebook", title="Copy")
    other = WorkspaceFactory(slug="globex")
    theirs = pages.create_page(workspace=other, name="Theirs", slug="free-ebook", title="Theirs")
    assert theirs.slug == page.slug
    # Renaming a page to its own slug is no clash.
    pages.update_page(page=page, slug="free-ebook", name="E-book 2")


def test_slug_is_lower_cased(workspace):
    created = pages.create_page(workspace=workspace, name="P", slug=" Webinar-2026 ", title="P")
    assert created.slug == "webinar-2026"


# --- Blocks -------------------------------------------------------------------------------


def test_a_page_is_compiled_once_with_a_placeholder_for_its_form(page, signup):
    assert f"<!--patron-form:{signup.pk}-->" in page.html
    assert "Forty pages of <strong>advice</strong>." in page.html
    assert page.styles  # MJML's style sheets
    assert "<!--[if" not in page.html  # no Outlook conditionals on a web page


def test_a_form_block_must_name_a_form_of_the_workspace(workspace, signup):
    other = WorkspaceFactory(slug="globex")
    with pytest.raises(pages.PageInvalid) as caught:
        pages.create_page(
            workspace=other, name="P", slug="p", title="P", blocks=document(form_block(signup))
        )
    assert caught.value.invalid_block == 1
    assert "that form does not exist" in caught.value.errors["blocks"]


def test_pages_have_no_footer_and_no_segments(workspace):
    with pytest.raises(pages.PageInvalid, match="unknown block type"):
        pages.create_page(
            workspace=workspace, name="P", slug="p", title="P", blocks=document({"type": "footer"})
        )
    created = pages.create_page(
        workspace=workspace,
        name="P",
        slug="p",
        title="P",
        blocks=document({**text("<p>Hi</p>"), "segment": 12}),
    )
    assert "segment" not in created.blocks["blocks"][0]
    assert "segments contains" not in created.html


def test_emails_still_have_no_form_block():
    from patron.mail import blocks as builder

    with pytest.raises(builder.BlocksInvalid, match="unknown block type"):
        builder.validate_blocks(document({"type": "form", "form": 1}))
    assert "form" not in {t["type"] for t in builder.builder_schema()["types"]}
    assert "footer" not in {t["type"] for t in builder.builder_schema(builder.PAGE)["types"]}


# --- The public page ----------------------------------------------------------------------


def test_a_draft_page_is_not_found_by_the_public(client: Client, page):
    assert client.get("/p/acme/free-ebook").status_code == 404
    assert not Event.objects.for_workspace(page.workspace).filter(kind="page.viewed").exists()


def test_an_unpublished_page_is_gone_again(client: Client, published):
    pages.unpublish_page(page=published)
    assert client.get("/p/acme/free-ebook").status_code == 404


def test_a_page_is_only_found_under_its_own_workspace(client: Client, published):
    WorkspaceFactory(slug="globex")
    assert client.get("/p/globex/free-ebook").status_code == 404


def test_the_published_page_has_its_title_description_and_og_tags(client: Client, published):
    response = client.get("/p/acme/free-ebook")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>The CRM guide</title>" in html
    assert '<meta name="description" content="Everything about CRM in 40 pages.">' in html
    assert '<meta property="og:title" content="The CRM guide">' in html
    assert '<meta property="og:description" content="Everything about CRM in 40 pages.">' in html
    assert '<meta property="og:url" content="http://testserver/p/acme/free-ebook">' in html
    assert 'name="robots" content="noindex"' not in html  # a landing page is meant to be found
    assert "Get the guide" in html
    # The form is drawn in place, posting back to the page.
    assert 'action="/p/acme/free-ebook"' in html and 'name="_form"' in html
    policy = response["Content-Security-Policy"]
    assert "script-src" not in policy and "default-src 'none'" in policy
    assert "<script" not in html


def test_text_is_escaped_and_rich_text_sanitised(client: Client, workspace, signup):
    hostile = pages.create_page(
        workspace=workspace,
        name="X",
        slug="x",
        title='"><script>alert(1)</script>',
        meta_description='"><script>alert(2)</script>',
        blocks=document(
            {"type": "heading", "text": "<script>alert(3)</script>"},
            text(
                '<p onclick="alert(4)">Hi<script>alert(5)</script><img src=x onerror=alert(6)></p>'
            ),
            {"type": "button", "label": "<b>Go</b>", "url": 'https://example.com/"onmouseover="x'},
        ),
    )
    pages.publish_page(page=hostile)
    html = client.get("/p/acme/x").content.decode()
    assert "<script" not in html
    assert "onclick" not in html and "onerror" not in html
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html
    assert '"onmouseover' not in html
    assert "&lt;b&gt;Go&lt;/b&gt;" in html


def test_a_view_is_recorded_with_a_first_party_visitor_cookie(client: Client, published):
    response = client.get(
        "/p/acme/free-ebook?utm_source=ads", HTTP_REFERER="https://search.example/"
    )
    cookie = response.cookies[pages.VISITOR_COOKIE]
    assert cookie["samesite"] == "Lax" and cookie["max-age"] == 365 * 86400
    visitor = cookie.value
    client.get("/p/acme/free-ebook")  # the same visitor again: the cookie is kept
    events = Event.objects.for_workspace(published.workspace).filter(kind="page.viewed")
    assert events.count() == 2
    assert set(events.values_list("visitor_id", flat=True)) == {visitor}
    first = events.order_by("id").first()
    assert first.properties["landing_page"] == published.pk
    assert first.properties["utm_source"] == "ads"
    assert first.properties["referrer"] == "https://search.example/"
    assert first.source_type == "capture.landing_page" and first.source_id == str(published.pk)


def test_the_form_on_the_page_submits_with_the_visitor_id(client: Client, published, signup):
    visitor = client.get("/p/acme/free-ebook").cookies[pages.VISITOR_COOKIE].value
    response = client.post("/p/acme/free-ebook", {**valid(signup), "_form": str(signup.pk)})
    assert response.status_code == 302 and "?sent=" in response["Location"]
    views = Event.objects.for_workspace(signup.workspace).filter(kind="page.viewed").count()
    html = client.get(response["Location"]).content.decode()
    assert f'id="lp{signup.pk}-form-sent"' in html
    # The thank-you is no second view, and reloading it sends nothing.
    client.get(response["Location"])
    assert Event.objects.for_workspace(signup.workspace).filter(kind="page.viewed").count() == views
    submission = FormSubmission.objects.for_workspace(signup.workspace).get()
    assert submission.visitor_id == visitor
    assert submission.landing_page_id == published.pk
    event = Event.objects.for_workspace(signup.workspace).get(kind="form.submitted")
    assert event.visitor_id == visitor and event.properties["landing_page"] == published.pk


def test_errors_show_on_the_page_with_the_values_kept(client: Client, published, signup):
    response = client.post(
        "/p/acme/free-ebook", {**valid(signup, email="not-an-email"), "_form": str(signup.pk)}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter a valid email address" in html
    assert 'value="Ann"' in html
    assert not FormSubmission.objects.for_workspace(signup.workspace).exists()


def test_a_form_not_on_the_page_cannot_be_sent_through_it(client: Client, published, workspace):
    other = services.create_form(
        workspace=workspace,
        name="Other",
        fields=[{"key": "email", "label": "Email", "maps_to": "contact.email"}],
    )
    response = client.post("/p/acme/free-ebook", {**valid(other), "_form": str(other.pk)})
    assert response.status_code == 404


# --- Numbers --------------------------------------------------------------------------------


def test_views_visitors_submissions_and_conversion(published, signup, workspace):
    empty = pages.create_page(workspace=workspace, name="Empty", slug="empty", title="Empty")
    for visitor in ("a" * 22, "a" * 22, "b" * 22, "c" * 22, "d" * 22):
        pages.record_view(page=published, visitor=visitor, params={})
    for email in ("one@example.com", "two@example.com"):
        services.submit_form(form=signup, data=valid(signup, email=email), landing_page=published)
    services.submit_form(form=signup, data=valid(signup, email="hosted@example.com"))
    stats = pages.page_stats(workspace, [published, empty])
    assert (stats[published.pk].views, stats[published.pk].visitors) == (5, 4)
    assert stats[published.pk].submissions == 2
    assert stats[published.pk].conversion == 0.5
    assert stats[empty.pk].conversion is None


def test_the_list_shows_the_numbers_in_a_fixed_number_of_queries(
    logged_in, published, signup, workspace, django_assert_max_num_queries
):
    pages.record_view(page=published, visitor="v" * 22, params={})
    services.submit_form(form=signup, data=valid(signup), landing_page=published)
    for n in range(5):
        pages.create_page(workspace=workspace, name=f"P{n}", slug=f"p{n}", title="P")
    with django_assert_max_num_queries(12):
        response = logged_in.get("/landing-pages/")
    html = response.content.decode()
    row = html[html.index('data-page="E-book"') :]
    row = row[: row.index("</tr>")]
    assert 'data-stat="views">1<' in row
    assert 'data-stat="submissions">1<' in row
    assert 'data-stat="conversion">100 %<' in row
    assert "http://testserver/p/acme/free-ebook" in row or "/p/acme/free-ebook" in row


# --- The editor ---------------------------------------------------------------------------


def test_build_save_and_publish_through_the_pages(logged_in, workspace, signup):
    blocks = document(text("<p>Hello</p>"), form_block(signup))
    response = logged_in.post(
        "/landing-pages/new/",
        {
            "name": "Webinar",
            "slug": "webinar",
            "title": "Join the webinar",
            "meta_description": "",
            "blocks": json.dumps(blocks),
        },
    )
    assert response.status_code == 302
    created = LandingPage.objects.for_workspace(workspace).get()
    assert created.status == PageStatus.DRAFT
    assert [b["type"] for b in created.blocks["blocks"]] == ["text", "form"]
    editor = logged_in.get(f"/landing-pages/{created.pk}/").content.decode()
    assert 'id="builder-forms"' in editor and "Demo request" in editor
    assert logged_in.post(f"/landing-pages/{created.pk}/publish/").status_code == 302
    created.refresh_from_db()
    assert created.status == PageStatus.PUBLISHED and created.published_at is not None


def test_a_bad_block_comes_back_with_the_message_and_nothing_saved(logged_in, workspace):
    response = logged_in.post(
        "/landing-pages/new/",
        {
            "name": "Bad",
            "slug": "bad",
            "title": "Bad",
            "blocks": json.dumps(document({"type": "form", "form": 999999})),
        },
    )
    assert response.status_code == 400
    assert "that form does not exist" in response.content.decode()
    assert not LandingPage.objects.for_workspace(workspace).exists()


def test_the_preview_draws_the_page_sandboxed(logged_in, signup):
    response = logged_in.post(
        "/landing-pages/preview/",
        {
            "title": "T",
            "blocks": json.dumps(document(text("<p>Preview me</p>"), form_block(signup))),
        },
    )
    assert response.status_code == 200
    assert "Preview me" in response.content.decode()
    assert response["Content-Security-Policy"].startswith("sandbox")


@pytest.mark.parametrize("header", [{"HTTP_DNT": "1"}, {"HTTP_SEC_GPC": "1"}])
def test_do_not_track_is_honoured(client: Client, published, signup, header):
    response = client.get("/p/acme/free-ebook", **header)
    assert response.status_code == 200
    assert pages.VISITOR_COOKIE not in response.cookies
    assert not Event.objects.for_workspace(published.workspace).filter(kind="page.viewed").exists()
    client.post("/p/acme/free-ebook", {**valid(signup), "_form": str(signup.pk)}, **header)
    assert FormSubmission.objects.for_workspace(signup.workspace).get().visitor_id == ""


def test_the_web_trackers_visitor_id_is_taken_as_it_is(client: Client, published):
    client.cookies[pages.VISITOR_COOKIE] = "tracker1"
    client.get("/p/acme/free-ebook")
    event = Event.objects.for_workspace(published.workspace).get(kind="page.viewed")
    assert event.visitor_id == "tracker1"
