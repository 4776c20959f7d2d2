"""Sender identities: values, verification by a signed link, the one default."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import signing
from django.db import IntegrityError, transaction
from freezegun import freeze_time

from patron.core.models import AuditEntry
from patron.mail import senders
from patron.mail.models import OutboxMessage, SenderIdentity
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

POSTAL = "Acme Ltd\n1 Main Street\nLisbon"


def make(workspace, email="news@Acme.Example", **values):
    return senders.create_sender(
        workspace=workspace,
        from_name=values.pop("from_name", "Acme News"),
        from_email=email,
        postal_address=values.pop("postal_address", POSTAL),
        **values,
    )


def link_token(message: OutboxMessage) -> str:
    match = re.search(r"/senders/verify/([^/\s]+)/", message.text_body)
    assert match is not None, message.text_body
    return match.group(1)


def verified(workspace, email="news@acme.example"):
    identity = make(workspace, email)
    identity, _changed = senders.verify_sender(token=senders.verification_token(identity))
    return identity


def test_create_normalises_and_audits(workspace, owner):
    identity = make(
        workspace, "  News.Letter@ACME.Example ", reply_to="Help@Acme.EXAMPLE ", actor=owner
    )
    assert identity.from_email == "News.Letter@acme.example"
    assert identity.reply_to == "Help@acme.example"
    assert identity.postal_address == POSTAL
    assert identity.verified_at is None and not identity.is_default
    assert identity.created_by == owner
    entry = AuditEntry.objects.get(action="sender.created")
    assert (entry.workspace, entry.actor, entry.target) == (
        workspace,
        owner,
        "News.Letter@acme.example",
    )


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"from_name": "  "}, "from_name", "Enter the name"),
        ({"email": "not an address"}, "from_email", "is not a valid email address"),
        ({"email": ""}, "from_email", "Enter an email address"),
        ({"reply_to": "nope@"}, "reply_to", "is not a valid email address"),
        ({"postal_address": " \n "}, "postal_address", "Enter the postal address"),
        ({"postal_address": "x" * 1001}, "postal_address", "under 1,000"),
    ],
)
def test_invalid_values_name_their_field(workspace, values, field, message):
    with pytest.raises(senders.SenderInvalid, match=message) as caught:
        make(workspace, values.pop("email", "news@acme.example"), **values)
    assert caught.value.field == field
    assert not SenderIdentity.objects.for_workspace(workspace).exists()


def test_address_is_unique_per_workspace_in_any_case(workspace):
    make(workspace, "news@acme.example")
    with pytest.raises(senders.SenderEmailTaken):
        make(workspace, "NEWS@ACME.EXAMPLE")
    make(WorkspaceFactory(), "news@acme.example")  # another workspace may use it
    with pytest.raises(IntegrityError), transaction.atomic():
        SenderIdentity.objects.create(
            workspace=workspace, from_name="x", from_email="News@acme.example", postal_address="x"
        )


def test_verification_happy_path(workspace):
    identity = make(workspace)
    senders.send_verification(identity=identity)
    message = OutboxMessage.objects.get()
    assert message.workspace == workspace
    assert message.to == ["news@acme.example"]
    assert message.subject == "Confirm news@acme.example as a sender for Acme"
    assert "“Acme News” <news@acme.example>" in message.text_body
    assert 'href="http' in message.html_body
    identity.refresh_from_db()
    assert identity.verification_sent_at is not None

    token = link_token(message)
    assert senders.identity_for_token(token) == identity
    verified_identity, changed = senders.verify_sender(token=token)
    assert changed and verified_identity.verified_at is not None
    # The first verified identity becomes the default.
    assert verified_identity.is_default
    assert list(senders.verified_identities(workspace)) == [identity]
    assert senders.default_identity(workspace) == identity
    assert AuditEntry.objects.filter(action="sender.verified", target=identity.from_email).exists()
    # A second click changes nothing.
    assert senders.verify_sender(token=token)[1] is False
    with pytest.raises(senders.SenderInvalid, match="verified already"):
        senders.send_verification(identity=verified_identity)


def test_pending_identities_are_not_offered_to_campaigns(workspace):
    make(workspace, "pending@acme.example")
    ready = verified(workspace, "ready@acme.example")
    assert list(senders.verified_identities(workspace)) == [ready]
    assert not senders.verified_identities(WorkspaceFactory()).exists()


def test_expired_link(workspace):
    identity = make(workspace)
    with freeze_time() as frozen:
        token = senders.verification_token(identity)
        frozen.tick(timedelta(days=3, minutes=1))
        with pytest.raises(senders.VerificationInvalid) as caught:
            senders.verify_sender(token=token)
    assert caught.value.reason == "expired"
    assert caught.value.identity == identity
    identity.refresh_from_db()
    assert identity.verified_at is None


def test_forged_links(workspace):
    identity = make(workspace)
    token = senders.verification_token(identity)
    forged = [
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        "not-a-token",
        # Signed for another purpose (the list confirmation salt).
        signing.dumps({"w": workspace.pk, "s": identity.pk, "e": identity.from_email}),
        signing.dumps(
            {"w": workspace.pk, "s": identity.pk, "e": identity.from_email},
            salt="patron.audience.confirm",
        ),
        # Genuine signature, another workspace's id.
        signing.dumps(
            {"w": WorkspaceFactory().pk, "s": identity.pk, "e": identity.from_email},
            salt=senders.SENDER_SALT,
        ),
        signing.dumps({"w": workspace.pk}, salt=senders.SENDER_SALT),
    ]
    for bad in forged:
        with pytest.raises(senders.VerificationInvalid) as caught:
            senders.verify_sender(token=bad)
        assert caught.value.reason == "invalid", bad
    identity.refresh_from_db()
    assert identity.verified_at is None


def test_address_change_unverifies_and_outdates_old_links(workspace, owner):
    identity = verified(workspace, "news@acme.example")
    old_token = senders.verification_token(identity)
    identity, changed = senders.update_sender(
        identity=identity, from_email="hello@acme.example", actor=owner
    )
    assert changed
    assert identity.verified_at is None and not identity.is_default
    assert senders.default_identity(workspace) is None
    entry = AuditEntry.objects.get(action="sender.updated")
    assert entry.data == {"previous_address": "news@acme.example"}
    with pytest.raises(senders.VerificationInvalid) as caught:
        senders.verify_sender(token=old_token)
    assert caught.value.reason == "outdated"
    # The new address verifies with its own link.
    identity, _changed = senders.verify_sender(token=senders.verification_token(identity))
    assert identity.is_verified and identity.is_default


def test_other_changes_keep_verification(workspace):
    identity = verified(workspace, "news@acme.example")
    identity, changed = senders.update_sender(
        identity=identity,
        from_name="Acme Letters",
        from_email="News@ACME.example",  # the same mailbox, written another way
        reply_to="",
        postal_address="Acme\nPorto",
    )
    assert not changed
    assert identity.is_verified and identity.is_default
    assert (identity.from_name, identity.postal_address) == ("Acme Letters", "Acme\nPorto")
    assert identity.from_email == "News@acme.example"
    with pytest.raises(senders.SenderInvalid) as caught:
        senders.update_sender(identity=identity, verified_at=None)
    assert caught.value.field == "verified_at"


def test_one_default_per_workspace(workspace):
    first = verified(workspace, "first@acme.example")
    second = verified(workspace, "second@acme.example")
    assert first.is_default and not second.is_default
    senders.set_default_sender(identity=second)
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.is_default and not first.is_default
    assert SenderIdentity.objects.for_workspace(workspace).filter(is_default=True).count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        SenderIdentity.objects.for_workspace(workspace).filter(pk=first.pk).update(is_default=True)

    pending = make(workspace, "pending@acme.example")
    with pytest.raises(senders.SenderNotVerified):
        senders.set_default_sender(identity=pending)

    # Deleting the default hands it to the earliest verified other identity.
    senders.delete_sender(identity=second)
    first.refresh_from_db()
    assert first.is_default
    assert AuditEntry.objects.filter(action="sender.deleted", target="second@acme.example").exists()
    senders.delete_sender(identity=first)
    assert senders.default_identity(workspace) is None
    assert list(senders.sender_identities(workspace)) == [pending]


def test_mail_failure_is_reported_and_leaves_identity_pending(workspace, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens
    identity = make(workspace)
    with pytest.raises(senders.VerificationNotSent, match="could not be sent"):
        senders.send_verification(identity=identity)
    identity.refresh_from_db()
    assert identity.verification_sent_at is None


def test_from_header_is_encoded(workspace):
    identity = make(workspace, from_name='Acme "News", Lisbon')
    assert identity.formatted == '"Acme \\"News\\", Lisbon" <news@acme.example>'
