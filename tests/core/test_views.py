"""The core pages, through the test client, as the people who use them."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from patron.core.background import background_task
from patron.core.models import ApiKey, AuditAction, AuditEntry, Membership, TaskFailure
from patron.core.roles import Role
from patron.core.scheduler import PERIODIC_JOBS, PeriodicJob, run_due_jobs
from patron.mail.models import OutboxMessage
from tests.conftest import member
from tests.factories import PASSWORD, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_login_page_and_logging_in_and_out(client, owner):
    page = client.get("/login/")
    assert b'name="username"' in page.content and b"Forgot your password?" in page.content
    wrong = client.post("/login/", {"username": owner.email, "password": "nope"})
    assert wrong.status_code == 200 and b"correct email" in wrong.content.lower()
    assert AuditEntry.objects.filter(action=AuditAction.LOGIN_FAILED, actor=owner).exists()
    response = client.post("/login/", {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert b"Acme" in client.get("/").content
    assert AuditEntry.objects.filter(action=AuditAction.LOGIN, actor=owner).exists()
    assert client.get("/logout/").status_code == 405  # logging out is a POST
    client.post("/logout/")
    assert client.get("/").status_code == 302
    assert AuditEntry.objects.filter(action=AuditAction.LOGOUT, actor=owner).exists()


def test_pages_need_a_login(client):
    response = client.get("/contacts/")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_password_reset_through_the_emailed_link(client, owner):
    client.post("/password/reset/", {"email": "OWNER@acme.example"})
    mail = OutboxMessage.objects.get()
    assert mail.workspace is None and mail.to == [owner.email]
    link = re.search(r"http://\S+/password/reset/\S+/", mail.text_body).group(0)
    path = "/" + link.split("/", 3)[3]
    form_page = client.get(path, follow=True)
    assert b"Choose a new password" in form_page.content
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "fresh passphrase 9", "new_password2": "fresh passphrase 9"},
    )
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("fresh passphrase 9")
    assert AuditEntry.objects.filter(action=AuditAction.PASSWORD_RESET_REQUESTED).exists()


def test_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client, db):
    response = client.post("/password/reset/", {"email": "nobody@example.com"}, follow=True)
    assert b"Check your email" in response.content
    assert not OutboxMessage.objects.exists()


def test_switching_workspace(logged_in, owner, workspace):
    other = WorkspaceFactory(name="Bravo")
    Membership.objects.create(workspace=other, user=owner, role=Role.SALES)
    stranger = WorkspaceFactory(name="Stranger")
    response = logged_in.post("/workspace/switch/", {"workspace": other.pk, "next": "/contacts/5/"})
    assert response["Location"] == "/contacts/"
    assert b'<h1 class="h3 mb-4">Bravo</h1>' in logged_in.get("/").content
    logged_in.post("/workspace/switch/", {"workspace": stranger.pk})
    assert b"Bravo</h1>" in logged_in.get("/").content  # unchanged
    bad = logged_in.post("/workspace/switch/", {"workspace": "x", "next": "https://evil.example/"})
    assert bad["Location"] == "/"


def test_a_user_without_workspace_is_told_what_to_do(client, db):
    user = UserFactory()
    client.login(email=user.email, password=PASSWORD)
    response = client.get("/", follow=True)
    assert b"not a member of any workspace" in response.content


def test_workspace_settings_save_and_validate(logged_in, workspace):
    bad = logged_in.post(
        "/settings/",
        {"name": "Acme", "language": "en", "time_zone": "Mars/Base", "currency": "USD"},
    )
    assert "is not a time zone" in bad.content.decode()
    logged_in.post(
        "/settings/",
        {
            "name": "Acme Indonesia",
            "language": "id",
            "time_zone": "Asia/Jakarta",
            "currency": "IDR",
        },
    )
    workspace.refresh_from_db()
    assert (workspace.name, workspace.language, workspace.time_zone, workspace.currency) == (
        "Acme Indonesia",
        "id",
        "Asia/Jakarta",
        "IDR",
    )


def test_roles_without_the_permission_get_403(client, workspace):
    seller = member(workspace, Role.SALES)
    client.login(email=seller.email, password=PASSWORD)
    for url in [
        "/settings/",
        "/settings/members/",
        "/settings/api-keys/",
        "/settings/audit-log/",
        "/system/tasks/",
    ]:
        assert client.get(url).status_code == 403, url
    agency = member(workspace, Role.AGENCY)
    client.login(email=agency.email, password=PASSWORD)
    assert client.get("/activity/").status_code == 403
    assert client.get("/contacts/").status_code == 200


def test_members_page_invites_changes_roles_and_removes(logged_in, workspace):
    logged_in.post("/settings/members/", {"email": "new@example.com", "role": "marketing"})
    page = logged_in.get("/settings/members/").content.decode()
    assert "new@example.com" in page and "Pending invitations" in page
    seller = member(workspace, Role.SALES, email="seller@example.com")
    membership = Membership.objects.for_workspace(workspace).get(user=seller)
    logged_in.post(f"/settings/members/{membership.pk}/role/", {"role": "support"})
    membership.refresh_from_db()
    assert membership.role == Role.SUPPORT
    logged_in.post(f"/settings/members/{membership.pk}/remove/")
    assert not Membership.objects.for_workspace(workspace).filter(pk=membership.pk).exists()


def test_api_key_secret_is_shown_once(logged_in, workspace):
    response = logged_in.post("/settings/api-keys/", {"name": "Zapier"}, follow=True)
    secret = re.search(r"ptn_[A-Za-z0-9_\-]+", response.content.decode()).group(0)
    assert response["Cache-Control"] == "no-store"
    assert secret not in logged_in.get("/settings/api-keys/").content.decode()
    key = ApiKey.objects.for_workspace(workspace).get()
    logged_in.post(f"/settings/api-keys/{key.pk}/revoke/")
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_audit_log_lists_the_workspace_and_its_members_logins(logged_in, workspace, owner):
    outsider = UserFactory(email="outsider@example.com")
    Client().login(email=outsider.email, password=PASSWORD)
    logged_in.post("/settings/api-keys/", {"name": "Audit me"})
    page = logged_in.get("/settings/audit-log/").content.decode()
    assert "API key created" in page and "Audit me" in page
    assert "Logged in" in page and owner.email in page
    assert "outsider@example.com" not in page


def test_profile_language_changes_the_interface(logged_in, owner):
    logged_in.post("/profile/", {"name": "Olivia", "language": "vi", "time_zone": "Asia/Saigon"})
    response = logged_in.get("/")
    assert response["Content-Language"] == "vi"
    assert '<html lang="vi">' in response.content.decode()
    bad = logged_in.post("/profile/", {"name": "O", "language": "", "time_zone": "Nowhere/City"})
    assert "is not a time zone" in bad.content.decode()


@background_task
def always_fails(reason: str) -> None:
    raise ValueError(f"cannot do it: {reason}")


calls: list[str] = []


@background_task
def remembers(value: str = "tick") -> None:
    calls.append(value)


def test_failed_tasks_are_listed_retried_and_dismissed(client, owner):
    owner.is_staff = True
    owner.save()
    client.login(email=owner.email, password=PASSWORD)
    always_fails.enqueue("disk full")
    failure = TaskFailure.objects.get()
    assert failure.task_path.endswith("always_fails") and failure.args == ["disk full"]
    assert "ValueError: cannot do it: disk full" in failure.error_class
    page = client.get("/system/tasks/").content.decode()
    assert "always_fails" in page and "cannot do it" in page
    client.post(f"/system/tasks/{failure.pk}/retry/")
    failure.refresh_from_db()
    assert failure.retried_at is not None
    assert TaskFailure.objects.count() == 2  # the retry ran (inline in tests) and failed again
    newest = TaskFailure.objects.order_by("-pk").first()
    client.post(f"/system/tasks/{newest.pk}/dismiss/")
    assert "always_fails" not in client.get("/system/tasks/").content.decode()
    again = client.post(f"/system/tasks/{failure.pk}/retry/", follow=True)
    assert "already retried" in again.content.decode()


def test_the_scheduler_enqueues_a_due_job_once_per_period(db):
    from datetime import timedelta

    from django.utils import timezone

    calls.clear()
    PERIODIC_JOBS["test.remembers"] = PeriodicJob(
        name="test.remembers", task=remembers.using(), every=timedelta(minutes=10)
    )
    try:
        now = timezone.now()
        assert "test.remembers" in run_due_jobs(now)
        assert "test.remembers" not in run_due_jobs(now)  # a second scheduler finds nothing
        assert "test.remembers" not in run_due_jobs(now + timedelta(minutes=9))
        assert "test.remembers" in run_due_jobs(now + timedelta(minutes=10))
    finally:
        del PERIODIC_JOBS["test.remembers"]
    assert len(calls) == 2
