"""DKIM: every signature Patron makes is verified by dkimpy, the reference implementation."""

from __future__ import annotations

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from django.core.exceptions import ImproperlyConfigured

from patron.mail.dkim import (
    DkimKeyInvalid,
    DkimSigner,
    canonical_body,
    signer_for,
)
from patron.mail.mime import build_message, message_id_for


def pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def rsa_pem() -> bytes:
    return pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def ed25519_pem() -> bytes:
    return pem(ed25519.Ed25519PrivateKey.generate())


def verify(message: bytes, signer: DkimSigner) -> bool:
    record = signer.public_record().encode()

    def dns(name, timeout=5):
        assert name == f"{signer.selector}._domainkey.{signer.domain}.".encode()
        return record

    return bool(dkimpy.verify(message, dnsfunc=dns))


def message(**overrides) -> bytes:
    values = {
        "from_name": "Nguyễn Thị Lan 🌸",
        "from_email": "news@acme.example",
        "to_email": "wang@例え.jp",
        "to_name": "王小明",
        "subject": "Ưu đãi  đặc biệt\t歡迎 👋",
        "html": "<p>Hello   there</p>\n" + "<p>Lê Thị Hồng</p>" * 300 + "\n\n\n",
        "text": "Tabs\tand  spaces  \ntrailing   \n\n\n",
        "message_id": message_id_for("d1"),
        "reply_to": "support@acme.example",
        "headers": [
            ("List-Unsubscribe", "<https://acme.example/u/abc/>, <mailto:u+abc@acme.example>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ],
    }
    values.update(overrides)
    return build_message(**values)


@pytest.mark.parametrize("key", ["rsa_pem", "ed25519_pem"])
def test_signatures_verify_with_dkimpy(key, request):
    signer = DkimSigner("acme.example", "s2026", request.getfixturevalue(key))
    signed = signer.sign(message())
    assert signed.startswith(b"DKIM-Signature: v=1; a=")
    assert verify(signed, signer)
    assert all(len(line) < 998 for line in signed.split(b"\r\n"))


def test_the_listed_headers_are_signed(rsa_pem):
    signer = DkimSigner("acme.example", "s1", rsa_pem)
    signed = signer.sign(message())
    header = signed.split(b"\r\n b=", 1)[0].decode()
    h = header.split("h=", 1)[1].split(";", 1)[0].replace("\r\n ", "")
    assert h.split(":") == [
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
        "from",
    ]


@pytest.mark.parametrize(
    "change",
    [
        (b"Tabs\tand", b"TABS\tand"),  # the body
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x"),
        (b"Message-ID: <d1@", b"Message-ID: <d2@"),
    ],
)
def test_a_changed_message_fails(rsa_pem, change):
    signer = DkimSigner("acme.example", "s1", rsa_pem)
    signed = signer.sign(message())
    assert change[0] in signed
    assert not verify(signed.replace(change[0], change[1], 1), signer)


def test_an_added_from_header_fails(rsa_pem):
    signer = DkimSigner("acme.example", "s1", rsa_pem)
    signed = signer.sign(message())
    assert not verify(
        signed.replace(b"MIME-Version:", b"From: evil@x.example\r\nMIME-Version:"), signer
    )


def test_relaxed_canonicalisation_survives_rewrapping(ed25519_pem):
    """Relays may re-fold headers and change whitespace runs: relaxed/relaxed allows it."""
    signer = DkimSigner("acme.example", "s1", ed25519_pem)
    signed = signer.sign(message())
    assert b"Tabs\tand" in signed
    rewrapped = signed.replace(b"Subject: ", b"Subject:    ").replace(b"Tabs\tand", b"Tabs \t and")
    assert verify(rewrapped, signer)


def test_canonical_body_rules():
    assert canonical_body(b"") == b""
    assert canonical_body(b"\r\n\r\n") == b""
    assert canonical_body(b"a  \t b \r\n\r\n\r\n") == b"a b\r\n"
    assert canonical_body(b"no end") == b"no end\r\n"


def test_bad_keys_are_refused(rsa_pem):
    with pytest.raises(DkimKeyInvalid):
        DkimSigner("acme.example", "s1", b"not a key")
    with pytest.raises(DkimKeyInvalid):
        DkimSigner("acme.example", "bad selector!", rsa_pem)
    with pytest.raises(DkimKeyInvalid):
        DkimSigner("", "s1", rsa_pem)


@pytest.mark.django_db  # the workspace's own keys are asked first
def test_the_installation_key_signs_its_domain_only(settings, tmp_path, rsa_pem):
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(rsa_pem)
    assert signer_for(None, "acme.example") is None  # nothing configured
    settings.DKIM_DOMAIN = "acme.example"
    settings.DKIM_SELECTOR = "patron"
    settings.DKIM_PRIVATE_KEY_FILE = str(key_file)
    signer = signer_for(3, "ACME.example")
    assert signer is not None and (signer.domain, signer.selector) == ("acme.example", "patron")
    assert signer_for(3, "news.acme.example") is signer  # aligned subdomain
    assert signer_for(3, "other.example") is None
    assert signer_for(3, "notacme.example") is None
    settings.DKIM_DOMAIN = "xn--bcher-kva.example"
    assert signer_for(3, "bücher.example") is not None  # the same domain, written in Unicode
    assert verify(signer.sign(message()), signer)


def test_a_missing_key_file_says_so(settings, tmp_path):
    settings.DKIM_DOMAIN = "acme.example"
    settings.DKIM_PRIVATE_KEY_FILE = str(tmp_path / "missing.pem")
    with pytest.raises(ImproperlyConfigured, match="PATRON_DKIM_PRIVATE_KEY_FILE"):
        signer_for(None, "acme.example")


def test_a_signed_message_still_verifies_after_an_smtp_conversation(rsa_pem):
    from patron.mail import smtp
    from patron.mail.transports import Outgoing, SmtpTransport
    from tests.mail.smtp_servers import MailServer

    signer = DkimSigner("acme.example", "s1", rsa_pem)
    # A body with lines that start with dots: dot-stuffed on the way, restored by the server.
    signed = signer.sign(message(text=".\n..two\n.three\n", html=""))
    with MailServer() as server:
        transport = SmtpTransport(smtp.parse_smtp_urls(server.url()), pool=smtp.ConnectionPool())
        [result] = transport.send(
            [Outgoing("1", "bounce@acme.example", ["wang@example.jp"], signed)]
        )
        assert result.outcome == "sent"
        received = server.messages[0].data
    assert received == signed
    assert verify(received, signer)
