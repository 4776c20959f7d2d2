"""Workspaces, invitations, roles, API keys, the audit log, and the first start."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from patron.core import services
from patron.core.models import ApiKey, AuditAction, AuditEntry, Invitation, Membership, User
from patron.core.roles import Role
from patron.mail.models import OutboxMessage
from tests.conftest import member

pytestmark = pytest.mark.django_db


def _token_from_outbox() -> str:
    message = OutboxMessage.objects.latest("pk")
    link = next(word for word in message.text_body.split() if "/invitations/" in word)
    return link.rstrip("/").rsplit("/", 1)[1]


def test_create_workspace_makes_the_creator_its_owner(owner):
    workspace = services.create_workspace(name="Café Đà Lạt", owner=owner)
    assert workspace.slug == "cafe-da-lat"
    assert Membership.objects.for_workspace(workspace).get(user=owner).role == Role.OWNER
    again = services.create_workspace(name="Café Đà Lạt", owner=owner)
    assert again.slug == "cafe-da-lat-2"
    assert AuditEntry.objects.filter(workspace=workspace, action=AuditAction.WORKSPACE_CREATED)


def test_an_invitation_is_mailed_and_accepting_it_creates_the_account(workspace, owner_membership):
    invitation = services.invite_member(
        workspace=workspace,
        actor_membership=owner_membership,
        email="New@Example.com",
        role=Role.SALES,
    )
    assert invitation.email == "new@example.com"
    mail = OutboxMessage.objects.get()
    assert mail.workspace_id == workspace.pk and mail.to == ["new@example.com"]
    assert "Acme" in mail.subject
    token = _token_from_outbox()
    assert (
        invitation.token_hash == services.hash_token(token) and token not in invitation.token_hash
    )

    membership = services.accept_invitation(token=token, user=None, name="Nia", password="x" * 12)
    assert membership.role == Role.SALES and membership.workspace == workspace
    assert membership.user.check_password("x" * 12)
    with pytest.raises(services.InvitationInvalid):
        services.accept_invitation(token=token, user=None, name="Again", password="y" * 12)


def test_expired_revoked_and_unknown_invitations_are_refused(workspace, owner_membership, owner):
    services.invite_member(
        workspace=workspace,
        actor_membership=owner_membership,
        email="late@example.com",
        role=Role.SALES,
    )
    token = _token_from_outbox()
    Invitation.objects.for_workspace(workspace).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(services.InvitationInvalid):
        services.accept_invitation(token=token, user=None, name="Late", password="x" * 12)
    with pytest.raises(services.InvitationInvalid):
        services.find_open_invitation("made-up")

    invitation = services.invite_member(
        workspace=workspace,
        actor_membership=owner_membership,
        email="gone@example.com",
        role=Role.SALES,
    )
    token = _token_from_outbox()
    services.revoke_invitation(invitation=invitation, actor=owner)
    with pytest.raises(services.InvitationInvalid):
        services.find_open_invitation(token)


def test_an_invitation_cannot_be_taken_by_someone_else(workspace, owner_membership):
    services.invite_member(
        workspace=workspace,
        actor_membership=owner_membership,
        email="meant@example.com",
        role=Role.SALES,
    )
    token = _token_from_outbox()
    other = User.objects.create_user("other@example.com", "pw-123456789")
    with pytest.raises(services.InvitationInvalid):
        services.accept_invitation(token=token, user=other)
    assert not Membership.objects.for_workspace(workspace).filter(user=other).exists()


def test_nobody_grants_more_than_they_hold(workspace, owner_membership):
    admin = member(workspace, Role.ADMIN)
    admin_membership = Membership.objects.for_workspace(workspace).get(user=admin)
    with pytest.raises(services.PermissionDenied):
        services.invite_member(
            workspace=workspace,
            actor_membership=admin_membership,
            email="boss@example.com",
            role=Role.OWNER,
        )
    with pytest.raises(services.PermissionDenied):
        services.change_member_role(
            membership=owner_membership, actor_membership=admin_membership, role=Role.SALES
        )
    sales = Membership.objects.for_workspace(workspace).get(user=member(workspace, Role.SALES))
    with pytest.raises(services.PermissionDenied):
        services.invite_member(
            workspace=workspace, actor_membership=sales, email="x@example.com", role=Role.SALES
        )
    services.change_member_role(
        membership=sales, actor_membership=admin_membership, role=Role.MARKETING
    )
    sales.refresh_from_db()
    assert sales.role == Role.MARKETING
    entry = AuditEntry.objects.filter(action=AuditAction.ROLE_CHANGED).get()
    assert entry.data == {"from": "sales", "to": "marketing"} and entry.actor == admin


def test_the_last_owner_stays(workspace, owner_membership):
    with pytest.raises(services.LastOwner):
        services.change_member_role(
            membership=owner_membership, actor_membership=owner_membership, role=Role.ADMIN
        )
    with pytest.raises(services.LastOwner):
        services.remove_member(membership=owner_membership, actor_membership=owner_membership)
    second = Membership.objects.for_workspace(workspace).get(user=member(workspace, Role.OWNER))
    services.remove_member(membership=owner_membership, actor_membership=second)
    assert list(Membership.objects.for_workspace(workspace)) == [second]


def test_api_keys_are_stored_hashed_shown_once_and_revocable(workspace, owner):
    created = services.create_api_key(workspace=workspace, name="Site", created_by=owner)
    key = ApiKey.objects.for_workspace(workspace).get()
    assert created.secret.startswith("ptn_") and len(created.secret) > 40
    assert created.secret not in (key.key_hash, key.prefix) and key.prefix == created.secret[:12]
    assert key.key_hash == services.hash_token(created.secret)
    assert services.authenticate_api_key(created.secret) == key
    assert services.authenticate_api_key(created.secret + "x") is None
    assert services.authenticate_api_key("") is None
    services.revoke_api_key(api_key=key, actor=owner)
    assert services.authenticate_api_key(created.secret) is None
    actions = set(AuditEntry.objects.filter(workspace=workspace).values_list("action", flat=True))
    assert {AuditAction.API_KEY_CREATED, AuditAction.API_KEY_REVOKED} <= actions


def test_last_used_is_written_at_most_once_a_minute(workspace, owner, django_assert_num_queries):
    secret = services.create_api_key(workspace=workspace, name="A", created_by=owner).secret
    first = services.authenticate_api_key(secret)
    assert first.last_used_at is not None
    with django_assert_num_queries(1):  # the lookup only, no write
        services.authenticate_api_key(secret)
    ApiKey.objects.for_workspace(workspace).update(
        last_used_at=timezone.now() - timedelta(minutes=5)
    )
    with django_assert_num_queries(2):
        again = services.authenticate_api_key(secret)
    assert again.last_used_at > first.last_used_at


def test_the_first_start_creates_the_admin_and_workspace_once():
    installation = services.bootstrap_installation(
        admin_email="Boss@Example.com", admin_password="a long passphrase"
    )
    assert installation is not None
    assert installation.admin.email == "boss@example.com" and installation.admin.is_staff
    assert installation.admin.check_password("a long passphrase")
    welcome = OutboxMessage.objects.get()
    assert welcome.subject == "Welcome to Patron" and welcome.workspace == installation.workspace
    assert services.bootstrap_installation() is None
    assert User.objects.count() == 1


def test_a_generated_admin_password_is_returned_once():
    installation = services.bootstrap_installation()
    assert installation.admin.email == "admin@example.com"
    assert len(installation.password) >= 12
    assert installation.admin.check_password(installation.password)


def test_workspace_settings_changes_are_audited(workspace, owner):
    services.update_workspace_settings(
        workspace=workspace,
        actor=owner,
        name="Acme Asia",
        language="vi",
        time_zone="Asia/Ho_Chi_Minh",
        currency="vnd",
    )
    workspace.refresh_from_db()
    assert (workspace.name, workspace.language, workspace.currency) == ("Acme Asia", "vi", "VND")
    entry = AuditEntry.objects.get(action=AuditAction.SETTINGS_CHANGED)
    assert entry.data["changed"]["name"] == ["Acme", "Acme Asia"]
