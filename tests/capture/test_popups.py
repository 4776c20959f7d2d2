"""Pop-ups: the services' rules, the tracker's pop-up list, and the Marketing pages."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from patron.capture import popups
from patron.capture.models import Popup
from patron.capture.services import create_form
from patron.core.models import AuditEntry
from patron.tracking.stitching import stitch_visitor
from tests.factories import ContactFactory, WorkspaceFactory
from tests.tracking.web_helpers import ORIGIN, make_site

pytestmark = pytest.mark.django_db

FIELDS = [{"key": "email", "label": "Email", "maps_to": "contact.email", "required": True}]


@pytest.fixture
def site(workspace):
    return make_site(workspace)


@pytest.fixture
def form(workspace):
    return create_form(
        workspace=workspace, name="Newsletter", title="Join us", fields=FIELDS,
        allowed_origins=[ORIGIN],
    )  # fmt: skip


def make_popup(workspace, form, site, **values):
    values.setdefault("name", "Spring offer")
    values.setdefault("trigger", "delay")
    values.setdefault("trigger_value", 3)
    return popups.create_popup(workspace=workspace, form=form, sites=[site], **values)


def ask(client, site, *, visitor="visitor-0001", path="/", origin=ORIGIN, **headers):
    return client.get(
        popups.POPUPS_PATH, {"k": site.key, "v": visitor, "u": path},
        headers={"Origin": origin, **headers},
    )  # fmt: skip


# --- Services -----------------------------------------------------------------------------


def test_create_keeps_clean_values_and_audits(workspace, form, site):
    popup = make_popup(
        workspace, form, site, name="  Spring   offer ", url_patterns=[" /pricing* ", "", "/"],
        cap_days=14, hide_from_contacts=False,
    )  # fmt: skip
    popup.refresh_from_db()
    assert popup.name == "Spring offer"
    assert popup.url_patterns == ["/pricing*", "/"]
    assert (popup.trigger, popup.trigger_value, popup.cap_days) == ("delay", 3, 14)
    assert list(popup.sites.all()) == [site]
    assert AuditEntry.objects.filter(action="popup.created", target="Spring offer").exists()


def test_exit_intent_needs_no_value(workspace, form, site):
    popup = make_popup(workspace, form, site, trigger="exit", trigger_value=None)
    assert popup.trigger_value == 0


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"name": ""}, "name"),
        ({"trigger": "hover"}, "trigger"),
        ({"trigger": "scroll", "trigger_value": 0}, "trigger_value"),
        ({"trigger": "scroll", "trigger_value": 101}, "trigger_value"),
        ({"trigger": "delay", "trigger_value": None}, "trigger_value"),
        ({"trigger": "delay", "trigger_value": 601}, "trigger_value"),
        ({"cap_days": 366}, "cap_days"),
        ({"url_patterns": ["pricing"]}, "url_patterns"),
        ({"url_patterns": ["/a b"]}, "url_patterns"),
        ({"url_patterns": [f"/{n}" for n in range(21)]}, "url_patterns"),
    ],
)
def test_bad_values_are_refused_with_the_field_and_nothing_saved(
    workspace, form, site, values, field
):
    with pytest.raises(popups.PopupInvalid) as refused:
        make_popup(workspace, form, site, **values)
    assert field in refused.value.errors
    assert not Popup.objects.unscoped().exists()


def test_at_least_one_site_and_only_own_sites_and_forms(workspace, form, site):
    with pytest.raises(popups.PopupInvalid) as refused:
        popups.create_popup(workspace=workspace, name="X", form=form, sites=[])
    assert "at least one website" in refused.value.errors["sites"]
    other = WorkspaceFactory(name="Other", slug="other")
    foreign_site = make_site(other)
    foreign_form = create_form(workspace=other, name="Theirs", fields=FIELDS)
    with pytest.raises(popups.PopupInvalid) as refused:
        popups.create_popup(workspace=workspace, name="X", form=form, sites=[foreign_site])
    assert "sites" in refused.value.errors
    with pytest.raises(popups.PopupInvalid) as refused:
        popups.create_popup(workspace=workspace, name="X", form=foreign_form, sites=[site])
    assert "form" in refused.value.errors
    assert not Popup.objects.unscoped().exists()


def test_the_form_must_allow_the_sites_addresses(workspace, site):
    closed = create_form(workspace=workspace, name="Closed", fields=FIELDS)
    with pytest.raises(popups.PopupInvalid) as refused:
        make_popup(workspace, closed, site)
    assert ORIGIN in refused.value.errors["form"]


def test_update_and_delete(workspace, form, site):
    popup = make_popup(workspace, form, site)
    popups.update_popup(
        popup=popup, name="Renamed", form=form, sites=[site], trigger="scroll", trigger_value=50,
        url_patterns=["/blog/*"], cap_days=0, hide_from_contacts=True, active=False,
    )  # fmt: skip
    popup.refresh_from_db()
    assert (popup.name, popup.trigger, popup.trigger_value, popup.active) == (
        "Renamed", "scroll", 50, False,
    )  # fmt: skip
    with pytest.raises(popups.PopupInvalid):
        popups.update_popup(
            popup=popup, name="", form=form, sites=[site], trigger="scroll", trigger_value=50,
            url_patterns=[], cap_days=0, hide_from_contacts=True, active=False,
        )  # fmt: skip
    popup.refresh_from_db()
    assert popup.name == "Renamed"
    popups.delete_popup(popup=popup)
    assert not Popup.objects.unscoped().exists()
    form.refresh_from_db()  # the form stays


@pytest.mark.parametrize(
    ("patterns", "path", "matches"),
    [
        ([], "/anything", True),
        (["/pricing*"], "/pricing", True),
        (["/pricing*"], "/pricing/teams", True),
        (["/pricing*"], "/about/pricing", False),
        (["/blog/*/intro"], "/blog/2026/intro", True),
        (["/blog/*/intro"], "/blog/2026/outro", False),
        (["/"], "/", True),
        (["/"], "/a", False),
        (["/a.b"], "/axb", False),
    ],
)
def test_url_rules(patterns, path, matches):
    assert popups.path_matches(patterns, path) is matches


# --- The tracker's pop-up list --------------------------------------------------------------


def test_the_list_gives_what_the_tracker_needs_with_cors(client, workspace, form, site, settings):
    popup = make_popup(workspace, form, site, cap_days=5)
    response = ask(client, site)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    data = json.loads(response.content)
    assert data["popups"] == [
        {"id": popup.pk, "form": form.key, "title": "Join us", "trigger": "delay", "value": 3,
         "cap_days": 5}
    ]  # fmt: skip
    assert data["base"] == settings.BASE_URL
    assert data["script"].endswith("/patron/forms.js")
    assert data["ui"].endswith("/patron/popups.js")


def test_url_rules_and_inactive_pop_ups(client, workspace, form, site):
    make_popup(workspace, form, site, name="Pricing", url_patterns=["/pricing*"])
    make_popup(workspace, form, site, name="Off", active=False)
    assert [p["value"] for p in json.loads(ask(client, site, path="/pricing/x").content)["popups"]]
    assert json.loads(ask(client, site, path="/about").content)["popups"] == []
    # A full address or a query is reduced to its path.
    found = json.loads(ask(client, site, path="/pricing?plan=pro").content)["popups"]
    assert len(found) == 1


def test_known_contacts_are_skipped_when_the_pop_up_says_so(client, workspace, form, site):
    make_popup(workspace, form, site, name="Strangers only", hide_from_contacts=True)
    shown_to_all = make_popup(workspace, form, site, name="Everyone", hide_from_contacts=False)
    contact = ContactFactory(workspace=workspace, email="ada@example.com")
    stitch_visitor(
        workspace_id=workspace.pk, visitor_id="known-visitor", contact_id=contact.pk, method="form"
    )
    known = json.loads(ask(client, site, visitor="known-visitor").content)["popups"]
    assert [p["id"] for p in known] == [shown_to_all.pk]
    anonymous = json.loads(ask(client, site, visitor="stranger-01").content)["popups"]
    assert len(anonymous) == 2


def test_a_visitor_known_in_another_workspace_is_a_stranger_here(client, workspace, form, site):
    make_popup(workspace, form, site)
    other = WorkspaceFactory(name="Other", slug="other")
    contact = ContactFactory(workspace=other, email="ada@example.com")
    stitch_visitor(workspace_id=other.pk, visitor_id="known-visitor", contact_id=contact.pk,
                   method="form")  # fmt: skip
    assert len(json.loads(ask(client, site, visitor="known-visitor").content)["popups"]) == 1


def test_a_foreign_origin_is_refused_without_cors(client, workspace, form, site):
    make_popup(workspace, form, site)
    response = ask(client, site, origin="https://evil.example")
    assert response.status_code == 403
    assert json.loads(response.content)["error"]["code"] == "origin"
    assert "Access-Control-Allow-Origin" not in response
    assert ask(client, site, origin="").status_code == 403


def test_an_unknown_key_is_not_found(client, workspace, form, site):
    make_popup(workspace, form, site)
    response = client.get(popups.POPUPS_PATH, {"k": "nope"}, headers={"Origin": ORIGIN})
    assert response.status_code == 404
    assert json.loads(response.content)["error"]["code"] == "unknown_site"
    assert client.get(popups.POPUPS_PATH, headers={"Origin": ORIGIN}).status_code == 404


def test_do_not_track_and_bad_visitor(client, workspace, form, site):
    make_popup(workspace, form, site)
    assert ask(client, site, DNT="1").status_code == 403
    assert ask(client, site, visitor="bad id!").status_code == 400


def test_changes_apply_at_once_in_this_process(client, workspace, form, site):
    popup = make_popup(workspace, form, site)
    assert len(json.loads(ask(client, site).content)["popups"]) == 1
    popups.delete_popup(popup=popup)
    assert json.loads(ask(client, site).content)["popups"] == []


def test_no_session_is_touched(client, workspace, form, site):
    make_popup(workspace, form, site)
    response = ask(client, site)
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies


# --- Marketing → Pop-ups ------------------------------------------------------------------


def test_add_edit_and_delete_through_the_pages(client, owner, workspace, form, site):
    client.force_login(owner)
    response = client.post(
        reverse("capture:popup_new"),
        {"name": "Leave offer", "form": form.pk, "sites": [site.pk], "trigger": "scroll",
         "trigger_value": "150", "cap_days": "7", "active": "on"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "1 to 100" in response.content.decode()
    assert not Popup.objects.unscoped().exists()
    response = client.post(
        reverse("capture:popup_new"),
        {"name": "Leave offer", "form": form.pk, "sites": [site.pk], "trigger": "exit",
         "url_patterns": "/pricing*\n/plans", "cap_days": "7", "active": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    popup = Popup.objects.unscoped().get()
    assert (popup.trigger, popup.url_patterns, popup.hide_from_contacts) == (
        "exit", ["/pricing*", "/plans"], False,
    )  # fmt: skip
    listing = client.get(reverse("capture:popup_list")).content.decode()
    assert "Leave offer" in listing and "Newsletter" in listing
    response = client.post(
        reverse("capture:popup_edit", args=[popup.pk]),
        {"name": "Exit offer", "form": form.pk, "sites": [site.pk], "trigger": "exit",
         "cap_days": "3", "hide_from_contacts": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    popup.refresh_from_db()
    assert (popup.name, popup.active, popup.cap_days) == ("Exit offer", False, 3)
    client.post(reverse("capture:popup_delete", args=[popup.pk]))
    assert not Popup.objects.unscoped().exists()


def test_another_workspaces_forms_and_sites_are_not_offered(client, owner, workspace, form, site):
    other = WorkspaceFactory(name="Other", slug="other")
    theirs = create_form(workspace=other, name="Their secret form", fields=FIELDS)
    client.force_login(owner)
    page = client.get(reverse("capture:popup_new")).content.decode()
    assert "Newsletter" in page and "Their secret form" not in page
    response = client.post(
        reverse("capture:popup_new"),
        {"name": "X", "form": theirs.pk, "sites": [site.pk], "trigger": "exit", "cap_days": "1"},
    )
    assert response.status_code == 200
    assert not Popup.objects.unscoped().exists()


def test_the_lean_tracking_app_hands_the_list_to_django():
    from patron.tracking.asgi import TrackingApp
    from tests.tracking.test_asgi import Fallback, call, run

    fallback = Fallback()
    app = TrackingApp(fallback)
    try:
        run(call(app, popups.POPUPS_PATH))
    finally:
        run(app.batcher.close())
        run(app.web_batcher.close())
    assert fallback.paths == [popups.POPUPS_PATH]
