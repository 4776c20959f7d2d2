"""DKIM signing (RFC 6376, relaxed/relaxed) with OpenSSL through ``cryptography``.

``dkimpy`` (the reference Python implementation, used by the tests to verify
every signature) computes RSA in pure Python; ``bench/bench_mime.py`` measures
it against this signer. Both keys types are supported: RSA (``rsa-sha256``,
what every receiver verifies) and Ed25519 (``ed25519-sha256``, RFC 8463,
several times cheaper to sign; not every receiver checks it yet, so it is
usually added beside an RSA signature rather than instead of it).

The signer is built once per campaign (``signer_for``) and signs each message:
it hashes the canonical body, canonicalises the signed headers found in the
message, and prepends the ``DKIM-Signature`` header.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from patron.mail.mime import ascii_address

# Signed when present, in this order. "from" is listed once more than it occurs
# ("over-signing"): a From header added on the way then breaks the signature.
SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "reply-to",
    "content-type",
    "list-unsubscribe",
    "list-unsubscribe-post",
)
# Only runs that change: two or more spaces, or any tab (single spaces are left alone,
# which makes the substitution several times faster on indented HTML).
_WSP_RUN = re.compile(rb"[ \t]{2,}|\t")
_TRAILING_WSP = re.compile(rb"[ \t]+\r\n")
_SELECTOR = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)


class DkimKeyInvalid(ValueError):
    """A private key that cannot sign DKIM (not PEM, not RSA/Ed25519, too small)."""


def canonical_body(body: bytes) -> bytes:
    """The relaxed body canonicalisation (RFC 6376 3.4.4)."""
    if b"\t" in body or b"  " in body:
        body = _WSP_RUN.sub(b" ", body)
    if b" \r\n" in body:
        body = _TRAILING_WSP.sub(b"\r\n", body)
    if body.endswith(b" "):
        body = body.rstrip(b" ")
    while body.endswith(b"\r\n\r\n"):
        body = body[:-2]
    if body == b"\r\n":
        return b""
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body


def canonical_header(name: bytes, value: bytes) -> bytes:
    """The relaxed header canonicalisation (RFC 6376 3.4.2), with its CRLF."""
    value = value.replace(b"\r\n", b"")
    if b"\t" in value or b"  " in value:
        value = _WSP_RUN.sub(b" ", value)
    return name.strip().lower() + b":" + value.strip(b" \t") + b"\r\n"


def split_message(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """((name, value) per header, folding kept) and the body of ``message``."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        head, body = message, b""
    else:
        head, body = message[: end + 2], message[end + 4 :]
    headers: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + b"\r\n" + line)
        else:
            name, _, value = line.partition(b":")
            headers.append((name, value))
    return headers, body


class DkimSigner:
    """Signs messages for ``domain`` with the key published at ``selector._domainkey``."""

    def __init__(self, domain: str, selector: str, private_key_pem: bytes) -> None:
        domain = domain.strip().lower().rstrip(".")
        if not domain:
            raise DkimKeyInvalid("a DKIM signer needs a domain")
        if not domain.isascii():
            domain = ascii_address(f"x@{domain}").partition("@")[2]
        if not _SELECTOR.match(selector):
            raise DkimKeyInvalid(f"not a DKIM selector: {selector!r}")
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError) as error:
            raise DkimKeyInvalid(f"the DKIM private key cannot be read: {error}") from error
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < 1024:
                raise DkimKeyInvalid("an RSA DKIM key needs at least 1024 bits")
            self.algorithm = "rsa-sha256"
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            self.algorithm = "ed25519-sha256"
        else:
            raise DkimKeyInvalid("DKIM keys are RSA or Ed25519")
        self._key = key
        self.domain = domain
        self.selector = selector
        self._prefix = f"v=1; a={self.algorithm}; c=relaxed/relaxed; d={domain}; s={selector};"

    def public_record(self) -> str:
        """The TXT record to publish at ``selector._domainkey.domain``."""
        public = self._key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"

    def _sign_bytes(self, data: bytes) -> bytes:
        key = self._key
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        # RFC 8463: Ed25519 signs the SHA-256 hash of the canonical data.
        return key.sign(hashlib.sha256(data).digest())

    def sign(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        """``message`` with a ``DKIM-Signature`` header in front."""
        headers, body = split_message(message)
        body_hash = base64.b64encode(hashlib.sha256(canonical_body(body)).digest()).decode()

        # Header instances are signed from the bottom up (RFC 6376 5.4.2).
        by_name: dict[bytes, list[bytes]] = {}
        for name, value in headers:
            by_name.setdefault(name.strip().lower(), []).append(value)
        signed_names: list[str] = []
        canonical: list[bytes] = []
        for header_name in SIGNED_HEADERS:
            values = by_name.get(header_name.encode())
            if not values:
                continue
            for value in reversed(values):
                signed_names.append(header_name)
                canonical.append(canonical_header(header_name.encode(), value))
        signed_names.append("from")  # over-signed: no second From may be added

        when = int(time.time()) if timestamp is None else timestamp
        header = (
            f"DKIM-Signature: {self._prefix}\r\n"
            f" t={when}; h={':'.join(signed_names)};\r\n"
            f" bh={body_hash};\r\n"
            " b="
        )
        name, _, value = header.encode("ascii").partition(b":")
        canonical.append(canonical_header(name, value)[:-2])  # the signature header, no CRLF
        signature = base64.b64encode(self._sign_bytes(b"".join(canonical))).decode()
        folded = "\r\n ".join(signature[i : i + 72] for i in range(0, len(signature), 72))
        return f"{header}{folded}\r\n".encode("ascii") + message


@lru_cache(maxsize=16)
def _load(domain: str, selector: str, path: str, modified: float) -> DkimSigner:
    try:
        pem = Path(path).read_bytes()
    except OSError as error:
        raise ImproperlyConfigured(f"PATRON_DKIM_PRIVATE_KEY_FILE: {error}") from error
    try:
        return DkimSigner(domain, selector, pem)
    except DkimKeyInvalid as error:
        raise ImproperlyConfigured(f"PATRON_DKIM_PRIVATE_KEY_FILE: {error}") from error


def installation_signer() -> DkimSigner | None:
    """The installation's signer (PATRON_DKIM_*), or None when none is configured."""
    domain, path = settings.DKIM_DOMAIN, settings.DKIM_PRIVATE_KEY_FILE
    if not domain or not path:
        return None
    try:
        modified = Path(path).stat().st_mtime
    except OSError as error:
        raise ImproperlyConfigured(f"PATRON_DKIM_PRIVATE_KEY_FILE: {error}") from error
    return _load(domain.lower(), settings.DKIM_SELECTOR, path, modified)


def _aligned(signing_domain: str, from_domain: str) -> bool:
    # Relaxed DMARC alignment: the From domain is the signing domain or below it.
    return from_domain == signing_domain or from_domain.endswith("." + signing_domain)


def signer_for(workspace_id: int | None, from_domain: str) -> DkimSigner | None:
    """The signer for mail from ``from_domain``: the workspace's own key for that
    domain once its DNS record was found (Settings -> Sending domains), else the
    installation key when its domain matches, else None."""
    from_domain = from_domain.strip().lower().rstrip(".")
    if not from_domain.isascii():
        from_domain = ascii_address(f"x@{from_domain}").partition("@")[2]
    if workspace_id is not None:
        from patron.mail.dkim_keys import workspace_signer

        own = workspace_signer(workspace_id, from_domain)
        if own is not None:
            return own
    signer = installation_signer()
    if signer is not None and _aligned(signer.domain, from_domain):
        return signer
    return None
