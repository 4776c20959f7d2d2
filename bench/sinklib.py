"""The SMTP sink of the send benchmarks, and the naive sender they compare against.

``Sink`` builds ``bench/sink/sink.c`` with the system's C compiler (into
``var/bench/bin/``, rebuilt when the source changes; binaries are never
committed), starts it on a free loopback port, and reads its counters::

    with Sink(log=path, tempfail=1, drop=0.5) as sink:
        send_everything_to(sink.url)          # smtp://127.0.0.1:PORT
        sink.stats()["messages"]              # accepted so far
        sink.log_lines()                      # [(message_id, recipient), ...]

Fault injection for reliability tests: ``tempfail`` (percent of transactions
answered 451 after their content), ``close421`` (percent answered 421, then
the connection is closed) and ``drop`` (percent of DATA in whose middle the
connection is closed without a reply). ``seed`` makes the dice repeatable.

``blast()`` runs ``bench/sink/blast.c``, a C client (many pipelined
connections from one thread) fast enough to measure the sink's capacity.

``naive_send_campaign()`` is the baseline of the send benchmarks: per
recipient the standard library's ``EmailMessage`` (``naive_message``), signed
by dkimpy when a key is given (``naive_sign``), sent by ``smtplib`` one message
at a time (``naive_send``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import smtplib
import socket
import subprocess
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "bench" / "sink"
BIN = Path(os.environ.get("PATRON_BENCH_VAR", ROOT / "var" / "bench")) / "bin"


def build(name: str) -> Path:
    """Compile ``bench/sink/<name>.c`` unless the binary is newer; return its path."""
    source = SOURCES / f"{name}.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    binary = BIN / f"{name}-{digest}"
    if binary.exists():
        return binary
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not compiler:
        raise SystemExit("a C compiler (cc or gcc) is needed to build the SMTP sink")
    BIN.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".partial")
    subprocess.run(  # noqa: S603
        [compiler, "-O2", "-Wall", "-o", str(partial), str(source)], check=True
    )
    partial.rename(binary)
    return binary


class Sink:
    """The C sink as a context manager (see the module docstring)."""

    def __init__(
        self,
        *,
        log: Path | None = None,
        tempfail: float = 0,
        close421: float = 0,
        drop: float = 0,
        seed: int = 1,
        port: int = 0,
    ) -> None:
        self.log = log
        self.arguments = ["-p", str(port), "-s", str(seed)]
        if log:
            self.arguments += ["-l", str(log)]
        for flag, percent in (("-t", tempfail), ("-c", close421), ("-d", drop)):
            if not 0 <= percent <= 100:
                raise ValueError(f"fault percentages are between 0 and 100, got {percent}")
            if percent:
                self.arguments += [flag, str(percent)]
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self.final: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> Sink:
        binary = build("sink")
        self.process = subprocess.Popen(  # noqa: S603
            [str(binary), *self.arguments], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline().split()
        if len(first) != 2 or first[0] != "port":
            self.process.kill()
            raise RuntimeError(f"the sink did not start: {first!r}")
        self.port = int(first[1])
        return self

    def stats(self) -> dict[str, int]:
        """The sink's counters (messages, recipients, connections, tempfail,
        closed421, dropped, bytes); the log is written out first."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            stream = sock.makefile("rwb")
            stream.readline()
            stream.write(b"XSTATS\r\n")
            stream.flush()
            line = stream.readline().decode()
            stream.write(b"QUIT\r\n")
            stream.flush()
        return _parse_stats(line[4:])

    def cpu_seconds(self) -> float:
        """User + system CPU time the sink has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_lines(self) -> list[tuple[str, str]]:
        """(message id, recipient) per accepted recipient, in the order accepted."""
        if not self.log:
            raise RuntimeError("the sink was started without a log")
        self.stats()  # flushes the log
        lines = self.log.read_text().splitlines()
        return [(line.split(" ", 1)[0], line.split(" ", 1)[1]) for line in lines if line]

    def stop(self) -> dict[str, int]:
        if self.process is None:
            return self.final
        self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=10)
        self.process = None
        lines = [line for line in output.splitlines() if "messages=" in line]
        self.final = _parse_stats(lines[-1]) if lines else {}
        return self.final

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _parse_stats(text: str) -> dict[str, int]:
    pairs = (item.split("=", 1) for item in text.split() if "=" in item)
    return {key: int(value) for key, value in pairs}


def blast(port: int, *, messages: int, connections: int, size: int) -> dict[str, float]:
    """Send ``messages`` of ``size`` bytes over ``connections`` with the C client."""
    binary = build("blast")
    output = subprocess.run(  # noqa: S603
        [
            str(binary),
            "-p",
            str(port),
            "-n",
            str(messages),
            "-c",
            str(connections),
            "-s",
            str(size),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    values = dict(item.split("=", 1) for item in output.split())
    return {key: float(value) for key, value in values.items()}


def children_cpu_seconds() -> float:
    """CPU time of the finished child processes of this process (the C client)."""
    usage = os.times()
    return usage.children_user + usage.children_system


# --- The naive baseline -------------------------------------------------------------------


def naive_message(
    *,
    from_name: str,
    from_email: str,
    to_email: str,
    subject: str,
    html: str,
    text: str,
    message_id: str,
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """The message as most Python code builds it: ``email.message.EmailMessage``."""
    message = EmailMessage()
    message["From"] = formataddr((from_name, from_email))
    message["To"] = to_email
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id
    for name, value in headers:
        message[name] = value
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


def naive_sign(message: bytes, *, domain: str, selector: str, private_key_pem: bytes) -> bytes:
    """DKIM with dkimpy, as its documentation shows (RSA in pure Python; an
    Ed25519 key is handed over as its base64 seed, as dkimpy wants it)."""
    import base64

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = serialization.load_pem_private_key(private_key_pem, password=None)
    algorithm = b"rsa-sha256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm = b"ed25519-sha256"
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        private_key_pem = base64.b64encode(seed)
    header_names = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version"]
    signature = dkim.sign(
        message,
        selector.encode(),
        domain.encode(),
        private_key_pem,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=header_names,
        signature_algorithm=algorithm,
    )
    return bytes(signature) + message


def naive_send(messages: Iterable[tuple[str, list[str], bytes]], host: str, port: int) -> int:
    """Send (envelope sender, recipients, data) one at a time over one smtplib
    connection, as Django's SMTP backend does; returns how many were accepted."""
    accepted = 0
    with smtplib.SMTP(host, port, timeout=30) as client:
        for sender, recipients, data in messages:
            refused = client.sendmail(sender, recipients, data)
            accepted += len(recipients) - len(refused)
    return accepted


def naive_send_campaign(
    messages: Iterable[dict[str, Any]],
    host: str,
    port: int,
    *,
    dkim: tuple[str, str, bytes] | None = None,
) -> int:
    """The whole naive way, per recipient: ``EmailMessage``, dkimpy when ``dkim``
    (domain, selector, private key PEM) is given, ``smtplib`` one at a time.

    Each item has the keyword arguments of ``naive_message`` plus
    ``envelope_from``; returns how many recipients the server accepted.
    """

    def prepared() -> Iterable[tuple[str, list[str], bytes]]:
        for item in messages:
            fields = dict(item)
            envelope_from = fields.pop("envelope_from")
            data = naive_message(**fields)
            if dkim:
                domain, selector, pem = dkim
                data = naive_sign(data, domain=domain, selector=selector, private_key_pem=pem)
            yield envelope_from, [fields["to_email"]], data

    return naive_send(prepared(), host, port)


def describe(stats: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in stats.items())
