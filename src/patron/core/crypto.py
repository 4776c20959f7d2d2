"""Secrets stored encrypted at rest: SMTP passwords, ESP API keys, DKIM private keys.

``encrypt_secret()`` returns a Fernet token (AES-128-CBC + HMAC-SHA256) made with
the first of ``settings.ENCRYPTION_KEYS``; ``decrypt_secret()`` accepts a token
made with any of them. Each configured key is a passphrase, stretched into a
Fernet key with HKDF-SHA256, so ``PATRON_ENCRYPTION_KEY`` can be any long
random string (and the default, ``SECRET_KEY``, works as it is).

Rotation: put the new key first (``PATRON_ENCRYPTION_KEY=new,old``), run
``patron manage rotate_secrets`` (re-encrypts every stored secret with the new
key), then drop the old key. A secret no configured key opens raises
``SecretUnreadable``; the settings pages then ask for it again.

``mask_secret()`` is what the UI and the API show instead of a secret.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_INFO = b"patron.stored-secrets.v1"  # a derivation label, not a secret


class SecretUnreadable(ValueError):
    """A stored secret was encrypted with a key that is no longer configured."""


def _fernet_key(passphrase: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        passphrase.encode()
    )
    return base64.urlsafe_b64encode(derived)


@functools.lru_cache(maxsize=8)
def _box(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(key)) for key in keys])


def _current_box() -> MultiFernet:
    keys = tuple(settings.ENCRYPTION_KEYS)
    if not keys:
        raise SecretUnreadable("No encryption key is configured.")
    return _box(keys)


def encrypt_secret(plain: str) -> str:
    """The secret encrypted with the current key ("" stays "")."""
    if not plain:
        return ""
    return _current_box().encrypt(plain.encode()).decode("ascii")


def decrypt_secret(token: str) -> str:
    """The plain secret; ``SecretUnreadable`` when no configured key opens it."""
    if not token:
        return ""
    try:
        return _current_box().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted with the configured keys."
        ) from exc


def reencrypt_secret(token: str) -> str:
    """The same secret encrypted with the current (first) key."""
    if not token:
        return ""
    try:
        return _current_box().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted with the configured keys."
        ) from exc


def mask_secret(plain: str) -> str:
    """What may be shown of a secret: bullets and at most its last four characters.

    Short secrets show nothing of themselves, so a mask never gives away most of one.
    """
    if not plain:
        return ""
    tail = plain[-4:] if len(plain) >= 12 else ""
    return "••••••••" + tail
