"""API: the forms' new settings, the download library and landing pages with their numbers."""

from __future__ import annotations

import io

import pytest

from patron.capture import downloads, pages, services
from tests.capture.conftest import valid
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ebook(workspace):
    return downloads.upload_file(
        workspace=workspace, file=io.BytesIO(b"%PDF-1.4 guide"), name="Guide.pdf"
    )


def test_a_form_shows_its_file_and_follow_up(api, signup, ebook):
    services.update_form(
        form=signup, download_file=ebook, download_days=14, follow_up="ticket",
        ticket_priority="high", email_download=True,
    )  # fmt: skip
    body = api.get(f"/api/v1/forms/{signup.pk}").json()
    assert body["download_file_id"] == ebook.pk
    assert body["download_days"] == 14 and body["email_download"] is True
    assert body["follow_up"] == "ticket" and body["ticket_priority"] == "high"
    assert body["deal_stage_id"] is None


def test_the_download_library(api, ebook):
    body = api.get("/api/v1/download-files").json()
    assert [item["name"] for item in body["items"]] == ["Guide.pdf"]
    assert body["items"][0]["content_type"] == "application/pdf"
    assert "file" not in body["items"][0] and "url" not in body["items"][0]  # no public address


def test_landing_pages_with_their_numbers(api, workspace, signup):
    page = pages.create_page(
        workspace=workspace,
        name="E-book",
        slug="ebook",
        title="Guide",
        blocks={"blocks": [{"type": "form", "form": signup.pk}]},
    )
    pages.publish_page(page=page)
    for visitor in ("x" * 22, "y" * 22):
        pages.record_view(page=page, visitor=visitor, params={})
    services.submit_form(form=signup, data=valid(signup), landing_page=page)
    listing = api.get("/api/v1/landing-pages").json()
    assert [item["slug"] for item in listing["items"]] == ["ebook"]
    one = api.get(f"/api/v1/landing-pages/{page.pk}").json()
    assert one["status"] == "published"
    assert one["url"].endswith("/p/acme/ebook")
    assert (one["views"], one["visitors"], one["submissions"]) == (2, 2, 1)
    assert one["conversion"] == 0.5


def test_another_workspaces_page_is_not_found(api):
    other = WorkspaceFactory(slug="globex")
    theirs = pages.create_page(workspace=other, name="Theirs", slug="theirs", title="T")
    assert api.get(f"/api/v1/landing-pages/{theirs.pk}").status_code == 404
    assert api.get("/api/v1/landing-pages").json()["items"] == []
