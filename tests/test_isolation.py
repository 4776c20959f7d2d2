"""No route lets workspace B read or change workspace A's data (see tests/isolation.py)."""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import include, path

from patron.core.roles import Role
from patron.core.services import create_api_key
from patron.crm.models import Contact
from tests.factories import PASSWORD, MembershipFactory, UserFactory, WorkspaceFactory
from tests.isolation import ROW_MAKERS, check_isolation, iter_routes, make_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def victim():
    workspace = WorkspaceFactory(name="Victim", slug="victim")
    MembershipFactory(workspace=workspace, user=UserFactory(), role=Role.OWNER)
    return workspace, make_rows(workspace)


@pytest.fixture
def intruder():
    workspace = WorkspaceFactory(name="Intruder", slug="intruder")
    user = UserFactory(email="intruder@example.com")
    MembershipFactory(workspace=workspace, user=user, role=Role.OWNER)
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    key = create_api_key(workspace=workspace, name="intruder", created_by=user).secret
    return client, key


def test_no_route_leaks_across_workspaces(victim, intruder):
    workspace, rows = victim
    client, key = intruder
    report = check_isolation(
        victim=workspace, victim_rows=rows, intruder_client=client, intruder_api_key=key
    )
    assert report.leaks == []
    # The walk really covered pages and the API.
    assert report.routes_checked >= 30
    assert report.requests_made > report.routes_checked


def test_every_registered_model_has_a_row_maker():
    from patron.core.tenancy import URL_PARAMETER_MODELS

    list(iter_routes())  # importing the URLconf registers its parameters
    assert set(URL_PARAMETER_MODELS.values()) <= set(ROW_MAKERS)


# --- The harness itself catches what it is meant to catch ---------------------------


def leaky_contact(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = Contact.objects.unscoped().get(pk=contact_id)  # the deliberate mistake
    return HttpResponse(contact.first_name)


def leaky_rename(request: HttpRequest, contact_id: int) -> HttpResponse:
    Contact.objects.unscoped().filter(pk=contact_id).update(last_name="changed")
    return HttpResponse(status=404)


def unregistered(request: HttpRequest, thing: int) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("leak/<int:contact_id>/", leaky_contact),
    path("rename/<int:contact_id>/", leaky_rename),
    path("unregistered/<int:thing>/", unregistered),
    path("", include("patron.urls")),
]


@override_settings(ROOT_URLCONF=__name__)
def test_the_harness_finds_a_deliberately_unscoped_view(victim, intruder):
    workspace, rows = victim
    client, key = intruder
    report = check_isolation(
        victim=workspace,
        victim_rows=rows,
        intruder_client=client,
        intruder_api_key=key,
        urlconf=__name__,
    )
    contact_id = rows["crm.Contact"].pk
    leaks = "\n".join(report.leaks)
    assert f"GET /leak/{contact_id}/" in leaks and "shows workspace A's data" in leaks
    assert f"/leak/{contact_id}/" in leaks and "answered 200" in leaks
    assert "crm.Contact rows changed" in leaks
    assert "'thing' is not registered" in leaks
    # Nothing else in the product leaks: only the planted routes are reported.
    assert all(
        (
            "/leak/" in line
            or "/rename/" in line
            or "thing" in line
            or "crm.Contact rows changed" in line
        )
        for line in report.leaks
    )


def test_the_web_tracker_api_cannot_reach_another_workspaces_visitors(victim, intruder):
    """Identify with B's key names A's visitor id and contact email: B gets its own contact,
    A's link and events stay as they were."""
    from patron.tracking.models import VisitorLink
    from tests.conftest import ApiClient
    from tests.isolation import MARKER

    workspace, _rows = victim
    _client, key = intruder
    api = ApiClient(key)
    response = api.post(
        "/api/v1/visitors/identify",
        {"visitor_id": f"{MARKER}-visitor", "email": f"{MARKER}@web.example"},
    )
    assert response.status_code == 200
    victim_link = VisitorLink.objects.for_workspace(workspace).get(visitor_id=f"{MARKER}-visitor")
    assert response.json()["contact_id"] != victim_link.contact_id
    response = api.post(
        "/api/v1/events/batch",
        {"events": [{"kind": "custom.event", "visitor_id": f"{MARKER}-visitor"}]},
    )
    assert response.status_code == 201
    from patron.activity.models import Event

    assert (
        not Event.objects.for_workspace(workspace)
        .filter(kind="custom.event")
        .exclude(properties__note=MARKER)
        .exists()
    )
