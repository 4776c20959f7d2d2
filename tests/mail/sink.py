"""A real SMTP server on loopback (aiosmtpd) that records what it accepts, for pipeline tests.

Recipients whose address contains ``tempfail`` get ``451`` after DATA,
``reject`` gets ``554``: the pipeline's retry and failure paths meet a real
server's replies. With ``faults`` the server misbehaves at random, as busy
servers do: a share of transactions answered ``421`` (and the connection
closed) or ``451``, and a share of connections dropped in the middle of DATA.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import random
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
class Faults:
    """Shares of transactions that fail: 421 + close, 451, connection dropped mid-DATA."""

    busy: float = 0.0
    tempfail: float = 0.0
    drop: float = 0.0
    seed: int = 5


@dataclass
class Recorder:
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    faults: Faults | None = None
    keep_data: bool = True
    refused: dict[str, int] = field(default_factory=dict)
    _random: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.faults is not None:
            self._random.seed(self.faults.seed)

    def _count(self, kind: str) -> None:
        with self.lock:
            self.refused[kind] = self.refused.get(kind, 0) + 1

    async def handle_DATA(self, server, session, envelope):
        if self.faults is not None:
            roll = self._random.random()
            faults = self.faults
            if roll < faults.drop:
                self._count("dropped")
                server.transport.abort()
                return "250 never seen"
            if roll < faults.drop + faults.busy:
                self._count("421")
                asyncio.get_running_loop().call_soon(server.transport.close)
                return "421 4.3.2 Too busy, closing the connection"
            if roll < faults.drop + faults.busy + faults.tempfail:
                self._count("451")
                return "451 4.3.0 Temporary local problem, try later"
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
                    envelope.original_content if self.keep_data else b"",
                )
            )
        return "250 2.0.0 Ok: queued"

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.recipients]

    def receipts(self) -> dict[str, int]:
        """How many messages each recipient got."""
        counts: dict[str, int] = {}
        with self.lock:
            for message in self.messages:
                for address in message.recipients:
                    counts[address] = counts.get(address, 0) + 1
        return counts


class Sink:
    def __init__(self, faults: Faults | None = None, *, keep_data: bool = True) -> None:
        self.recorder = Recorder(faults=faults, keep_data=keep_data)
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
