"""Shared fixtures: a workspace with an owner, logged-in clients, an API client."""

from __future__ import annotations

import pytest
from django.test import Client
from hypothesis import settings as hypothesis_settings

from patron.core.models import Membership, User, Workspace
from patron.core.roles import Role
from patron.core.services import create_api_key
from tests.factories import PASSWORD, MembershipFactory, UserFactory, WorkspaceFactory

# No test measures time: on a loaded machine an example may take seconds, and a
# hypothesis deadline would then fail a test that is right.
hypothesis_settings.register_profile("patron", deadline=None)
hypothesis_settings.load_profile("patron")


@pytest.fixture(autouse=True)
def capture_mail(settings):
    """Mail goes through Patron's own capture transport (the Outbox), as in embedded mode."""
    settings.EMAIL_BACKEND = "patron.mail.backends.CaptureBackend"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path_factory):
    """Uploaded files (the image library) go to a temporary directory, never ./var/."""
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def tracking_spool(settings, tmp_path_factory):
    """Tracking hits the database refuses are spooled to a temporary directory."""
    settings.TRACKING_SPOOL_DIR = tmp_path_factory.mktemp("tracking-spool")


@pytest.fixture
def workspace(db) -> Workspace:
    return WorkspaceFactory(name="Acme", slug="acme")


@pytest.fixture
def owner(workspace) -> User:
    user = UserFactory(email="owner@acme.example", name="Olivia Owner")
    MembershipFactory(workspace=workspace, user=user, role=Role.OWNER)
    return user


@pytest.fixture
def owner_membership(owner, workspace) -> Membership:
    return Membership.objects.for_workspace(workspace).get(user=owner)


def member(workspace: Workspace, role: str, email: str | None = None) -> User:
    user = UserFactory(**({"email": email} if email else {}))
    MembershipFactory(workspace=workspace, user=user, role=role)
    return user


@pytest.fixture
def logged_in(client: Client, owner) -> Client:
    assert client.login(email=owner.email, password=PASSWORD)
    return client


class ApiClient:
    """A test client that sends a workspace API key on every request."""

    def __init__(self, secret: str) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {secret}"}

    def get(self, path: str, **params):
        return self.client.get(path, params, headers=self.headers)

    def post(self, path: str, data=None):
        return self.client.post(
            path, data or {}, content_type="application/json", headers=self.headers
        )

    def patch(self, path: str, data=None):
        return self.client.patch(
            path, data or {}, content_type="application/json", headers=self.headers
        )

    def delete(self, path: str):
        return self.client.delete(path, headers=self.headers)


@pytest.fixture
def api(workspace, owner) -> ApiClient:
    new_key = create_api_key(workspace=workspace, name="tests", created_by=owner)
    return ApiClient(new_key.secret)
