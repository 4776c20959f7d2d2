"""``patron manage rotate_secrets``: re-encrypt every stored secret with the current key.

Run it after putting a new key first in ``PATRON_ENCRYPTION_KEY`` (``new,old``); once
it reports no unreadable secret, the old key can be removed from the list.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from patron.core.crypto import SecretUnreadable, reencrypt_secret
from patron.mail.models import DeliveryConfig, SendingDomain, WorkspaceSmtpServer

# Every encrypted column: (model, field).
ENCRYPTED_FIELDS = (
    (DeliveryConfig, "esp_secret"),
    (WorkspaceSmtpServer, "password"),
    (SendingDomain, "private_key"),
)


class Command(BaseCommand):
    help = "Re-encrypt stored credentials and DKIM keys with the first PATRON_ENCRYPTION_KEY."

    def handle(self, *args: Any, **options: Any) -> None:
        rotated = unreadable = 0
        for model, field_name in ENCRYPTED_FIELDS:
            # Installation maintenance: every workspace's rows.
            rows = model.objects.unscoped().exclude(**{field_name: ""})  # type: ignore[attr-defined]
            for row in rows.iterator():
                with transaction.atomic():
                    try:
                        new_value = reencrypt_secret(getattr(row, field_name))
                    except SecretUnreadable:
                        unreadable += 1
                        self.stderr.write(
                            f"{model._meta.label} {row.pk} (workspace {row.workspace_id}): "
                            "no configured key decrypts it; enter it again in its settings."
                        )
                        continue
                    model.objects.unscoped().filter(pk=row.pk).update(**{field_name: new_value})  # type: ignore[attr-defined]
                    rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} secrets; {unreadable} unreadable.")
