"""A real SMTP server on loopback (aiosmtpd) that records what it accepts, for pipeline tests.

Recipients whose address contains ``tempfail`` get ``451`` after DATA,
``reject`` gets ``554``: the pipeline's retry and failure paths meet a real
server's replies. (The reliability tests use the C sink of ``bench/sink``,
which injects faults at random and logs what it accepted.)
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Recorder:
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):
        recipients = " ".join(envelope.rcpt_tos)
        if "tempfail" in recipients:
            return "451 4.3.0 Temporary local problem, try later"
        if "reject" in recipients:
            return "554 5.7.1 Message rejected as spam"
        with self.lock:
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                )
            )
        return "250 2.0.0 Ok: queued"

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.recipients]


class Sink:
    def __init__(self) -> None:
        self.recorder = Recorder()
        self.port = free_port()
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> Sink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
