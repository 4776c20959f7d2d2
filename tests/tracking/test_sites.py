"""Settings → Websites: adding, changing and deleting sites, and what the page shows."""

from __future__ import annotations

import html

import pytest

from patron.core.models import AuditEntry
from patron.core.roles import Role
from patron.tracking import sites
from patron.tracking.models import Site
from tests.conftest import member
from tests.factories import PASSWORD
from tests.tracking.web_helpers import make_site

pytestmark = pytest.mark.django_db


def test_add_a_site_and_see_its_snippet_and_the_trackers_size(logged_in, workspace):
    response = logged_in.post(
        "/settings/websites/",
        {
            "name": "Shop",
            "allowed_origins": "https://shop.acme.example/\nhttps://www.acme.example",
            "consent_required": "on",
            "honour_dnt": "on",
        },
    )
    site = Site.objects.for_workspace(workspace).get()
    assert response.status_code == 302 and response["Location"] == f"/settings/websites/{site.pk}/"
    assert site.allowed_origins == ["https://shop.acme.example", "https://www.acme.example"]
    assert (site.consent_required, site.honour_dnt, site.allow_identify) == (True, True, False)
    page = html.unescape(logged_in.get(response["Location"]).content.decode())
    assert f'data-site="{site.key}"' in page
    assert "/static/patron/tracker.js" in page and "/t/e" in page
    assert 'data-consent="required"' in page
    size = sites.tracker_sizes()["gzipped"]
    assert 500 < size < 4000
    assert AuditEntry.objects.filter(workspace=workspace, action="site.created").exists()


def test_bad_addresses_are_shown_on_the_field(logged_in, workspace):
    response = logged_in.post(
        "/settings/websites/", {"name": "Shop", "allowed_origins": "shop.acme.example/path"}
    )
    assert response.status_code == 200
    assert "is not a site address" in response.content.decode()
    assert not Site.objects.for_workspace(workspace).exists()


def test_edit_and_delete_a_site(logged_in, workspace):
    site = make_site(workspace)
    response = logged_in.post(
        f"/settings/websites/{site.pk}/",
        {"name": "Renamed", "allowed_origins": "https://new.acme.example", "allow_identify": "on"},
    )
    assert response.status_code == 302
    site.refresh_from_db()
    assert (site.name, site.allowed_origins) == ("Renamed", ["https://new.acme.example"])
    assert (site.honour_dnt, site.allow_identify) == (False, True)
    listing = logged_in.get("/settings/websites/").content.decode()
    assert "Renamed" in listing and site.key in listing
    assert logged_in.post(f"/settings/websites/{site.pk}/delete/").status_code == 302
    assert not Site.objects.for_workspace(workspace).exists()


def test_only_those_who_manage_settings_reach_the_pages(client, workspace):
    site = make_site(workspace)
    user = member(workspace, Role.MARKETING)
    assert client.login(email=user.email, password=PASSWORD)
    assert client.get("/settings/websites/").status_code == 403
    assert client.post(f"/settings/websites/{site.pk}/delete/").status_code == 403
    assert Site.objects.for_workspace(workspace).exists()
