"""Real SMTP servers for the transport tests: aiosmtpd on loopback, with rules.

``MailServer`` records every message it accepts and answers as the test
says: a recipient whose address contains ``tempfail`` gets ``451`` after DATA,
``reject`` gets ``554``, ``unknown`` is refused at RCPT with ``550``, and
``drop`` makes the server close the connection in the middle of DATA. It
offers PIPELINING (aiosmtpd reads pipelined commands in order; only the
EHLO line is added), optionally STARTTLS and AUTH.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    data: bytes


@dataclass
class Handler:
    pipelining: bool = True
    messages: list[Received] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.lock:
            self.connections += 1
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "unknown" in address:
            return "550 5.1.1 No such user here"
        if "busy" in address:
            return "450 4.2.1 Mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        recipients = " ".join(envelope.rcpt_tos)
        if "drop" in recipients:
            server.transport.close()
            return "250 never seen"
        if "tempfail" in recipients:
            return "451 4.3.0 Temporary local problem, try later"
        if "reject" in recipients:
            return "554 5.7.1 Message rejected as spam"
        with self.lock:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 2.0.0 Ok: queued"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key, written to ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class MailServer:
    """An aiosmtpd server on 127.0.0.1 in a thread; ``url`` is its PATRON_SMTP_URLS entry."""

    def __init__(
        self,
        *,
        pipelining: bool = True,
        tls_files: tuple[Path, Path] | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
        smtputf8: bool = True,
    ) -> None:
        self.handler = Handler(pipelining=pipelining)
        self.port = free_port()
        kwargs: dict = {"enable_SMTPUTF8": smtputf8}
        controller_kwargs: dict = {}
        if tls_files:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls_files[0]), str(tls_files[1]))
            if implicit_tls:  # TLS from the first byte (smtps, port 465)
                controller_kwargs["ssl_context"] = context
            else:
                kwargs["tls_context"] = context
                kwargs["require_starttls"] = True
        if credentials:

            def authenticate(server, session, envelope, mechanism, auth_data):
                ok = (
                    isinstance(auth_data, LoginPassword)
                    and (
                        auth_data.login.decode(),
                        auth_data.password.decode(),
                    )
                    == credentials
                )
                return AuthResult(success=ok, handled=False)

            kwargs["authenticator"] = authenticate
            kwargs["auth_required"] = True
            # aiosmtpd counts only STARTTLS as encryption; implicit TLS is encrypted too.
            kwargs["auth_require_tls"] = bool(tls_files) and not implicit_tls
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, **controller_kwargs, **kwargs
        )

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def url(self, **options: str | int) -> str:
        query = "&".join(f"{key}={value}" for key, value in options.items())
        return f"smtp://127.0.0.1:{self.port}" + (f"?{query}" if query else "")

    def __enter__(self) -> MailServer:
        self.controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.controller.stop()
