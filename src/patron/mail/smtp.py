"""A pipelining SMTP client for bulk mail: servers, connections, and the send loop.

``smtplib`` waits for a reply after every command: four round trips per message
(MAIL, RCPT, DATA, the content) plus its own Python overhead. With PIPELINING
(RFC 2920), which every mail server of the last twenty years offers, a client
writes MAIL, RCPT and DATA together, and after the ``354`` the message content
together with the next message's MAIL, RCPT and DATA: one round trip per
message. A server that also offers CHUNKING (RFC 3030: Postfix, Exchange,
Gmail) takes the content as ``BDAT <size> LAST`` right behind RCPT, with no
354 to wait for: the client then keeps a window of transactions in flight
per connection and writes them in one go. ``deliver()`` drives several such
connections at once from one thread (``selectors``), so while one waits for
its server the others are writing. A server without PIPELINING gets one
command at a time, as smtplib does.

Outcomes per message: a ``2xx`` after the content is SENT; a ``4xx`` anywhere
is RETRY; a ``5xx`` is FAILED with the server's reply. A connection that breaks
(refused, reset, closed mid-DATA, ``421``, timeout) puts its messages back to
be tried on another connection (preferring other servers); a message that met
broken connections ``MAX_CONNECTION_ATTEMPTS`` times is RETRY.
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import socket
import ssl
import threading
import time
from base64 import b64encode
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

MAX_CONNECTION_ATTEMPTS = 3
# A pooled connection idle longer than this is closed rather than reused: servers
# drop idle clients (Postfix after 300 s, many relays sooner), and a message
# written into a connection the server has just closed would have to be resent.
MAX_IDLE_SECONDS = 20.0
# After a server refused a connection or broke one, it is left alone this long.
SERVER_COOLDOWN_SECONDS = 30.0

_TLS_MODES = {"none", "starttls", "tls"}


class SmtpUrlInvalid(ValueError):
    """A PATRON_SMTP_URLS entry that cannot be used, with the reason."""


class SmtpError(Exception):
    """A server reply or a connection problem that ends a connection."""

    def __init__(self, code: int | None, reply: str) -> None:
        super().__init__(f"{code} {reply}" if code else reply)
        self.code = code
        self.reply = reply


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """One mail server from ``PATRON_SMTP_URLS``.

    ``smtp://user:pass@host:port?tls=starttls&weight=3&connections=4&verify=1``
    (``chunking=0`` keeps to DATA even when the server offers BDAT);
    ``smtps://`` means ``tls=tls`` (TLS from the first byte) and
    ``smtp+starttls://`` means ``tls=starttls``. Port defaults: 465 with
    ``tls=tls``, 587 with ``starttls``, else 25.
    """

    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    tls: str = "none"
    weight: int = 1
    connections: int = 4
    verify: bool = True
    timeout: float = 30.0
    chunking: bool = True  # use BDAT when the server offers CHUNKING

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in {"smtp", "smtps", "smtp+starttls"}:
            raise SmtpUrlInvalid(f"{url!r}: the scheme must be smtp, smtps or smtp+starttls")
        if not parts.hostname:
            raise SmtpUrlInvalid(f"{url!r}: no host")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"tls", "weight", "connections", "verify", "timeout", "chunking"}
        if unknown:
            raise SmtpUrlInvalid(f"{url!r}: unknown option(s) {', '.join(sorted(unknown))}")
        tls = {"smtps": "tls", "smtp+starttls": "starttls"}.get(scheme, "none")
        tls = query.get("tls", tls).lower()
        if tls not in _TLS_MODES:
            raise SmtpUrlInvalid(f"{url!r}: tls must be none, starttls or tls")
        try:
            weight = int(query.get("weight", "1"))
            connections = int(query.get("connections", "4"))
            timeout = float(query.get("timeout", "30"))
            port = parts.port or {"tls": 465, "starttls": 587}.get(tls, 25)
        except ValueError as error:
            raise SmtpUrlInvalid(f"{url!r}: {error}") from error
        if weight < 1 or connections < 1 or timeout <= 0:
            raise SmtpUrlInvalid(f"{url!r}: weight and connections must be at least 1")
        verify = query.get("verify", "1").lower() not in {"0", "false", "no", "off"}
        chunking = query.get("chunking", "1").lower() not in {"0", "false", "no", "off"}
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            tls=tls,
            weight=weight,
            connections=connections,
            verify=verify,
            timeout=timeout,
            chunking=chunking,
        )


def parse_smtp_urls(urls: Sequence[str] | str) -> list[SmtpServer]:
    """The servers of a comma-separated list (or a list) of SMTP URLs."""
    if isinstance(urls, str):
        urls = [url for url in urls.split(",") if url.strip()]
    servers = [SmtpServer.from_url(url) for url in urls]
    if not servers:
        raise SmtpUrlInvalid("no SMTP server configured")
    return servers


# --- One connection ---------------------------------------------------------------------


def _reply_code(line: bytes) -> int:
    try:
        return int(line[:3])
    except ValueError:
        return 0


@functools.lru_cache(maxsize=1)
def _local_hostname() -> str:
    # getfqdn() may ask DNS and take seconds: once per process is enough.
    return socket.getfqdn() or "localhost"


class SmtpConnection:
    """An open, greeted (and if asked, encrypted and logged-in) SMTP connection."""

    def __init__(self, server: SmtpServer, *, local_hostname: str | None = None) -> None:
        self.server = server
        self.local_hostname = local_hostname or _local_hostname()
        self.sock: socket.socket | None = None
        self.extensions: dict[str, str] = {}
        self.buffer = b""
        self.last_used = time.monotonic()
        self.broken = False

    # Blocking helpers used while opening (one round trip at a time is fine there).
    def _read_reply(self) -> tuple[int, str]:
        assert self.sock is not None
        lines: list[bytes] = []
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise SmtpError(None, "the server closed the connection")
                self.buffer += chunk
                continue
            line, self.buffer = self.buffer[: end + 1].rstrip(b"\r\n"), self.buffer[end + 1 :]
            lines.append(line)
            if line[3:4] != b"-":
                code = _reply_code(line)
                text = "\n".join(item[4:].decode("utf-8", "replace") for item in lines)
                return code, text

    def _command(self, line: str) -> tuple[int, str]:
        assert self.sock is not None
        self.sock.sendall(line.encode("utf-8") + b"\r\n")
        return self._read_reply()

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.server.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _ehlo(self) -> None:
        code, text = self._command(f"EHLO {self.local_hostname}")
        if code != 250:
            code, text = self._command(f"HELO {self.local_hostname}")
            if code != 250:
                raise SmtpError(code, text)
            self.extensions = {}
            return
        self.extensions = {}
        for line in text.split("\n")[1:]:
            keyword, _, argument = line.strip().partition(" ")
            self.extensions[keyword.upper()] = argument

    def open(self) -> SmtpConnection:
        server = self.server
        sock = socket.create_connection((server.host, server.port), timeout=server.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if server.tls == "tls":
                sock = self._tls_context().wrap_socket(sock, server_hostname=server.host)
            self.sock = sock
            code, text = self._read_reply()
            if code != 220:
                raise SmtpError(code, text)
            self._ehlo()
            if server.tls == "starttls":
                if "STARTTLS" not in self.extensions:
                    raise SmtpError(None, f"{server.label} does not offer STARTTLS")
                code, text = self._command("STARTTLS")
                if code != 220:
                    raise SmtpError(code, text)
                self.sock = self._tls_context().wrap_socket(sock, server_hostname=server.host)
                self.buffer = b""
                self._ehlo()
            if server.username:
                self._login()
        except BaseException:
            self.sock = self.sock or sock
            self.close(quit=False)
            raise
        return self

    def _login(self) -> None:
        mechanisms = self.extensions.get("AUTH", "").upper().split()
        user, password = self.server.username, self.server.password
        if "PLAIN" in mechanisms or not mechanisms:
            token = b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
            code, text = self._command(f"AUTH PLAIN {token}")
        elif "LOGIN" in mechanisms:
            code, text = self._command("AUTH LOGIN")
            if code == 334:
                code, text = self._command(b64encode(user.encode()).decode("ascii"))
            if code == 334:
                code, text = self._command(b64encode(password.encode()).decode("ascii"))
        else:
            raise SmtpError(None, f"{self.server.label} offers no AUTH mechanism Patron speaks")
        if code != 235:
            raise SmtpError(code, text)

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.extensions

    @property
    def chunking(self) -> bool:
        """BDAT may be pipelined: the server offers CHUNKING and PIPELINING."""
        return (
            self.server.chunking
            and "CHUNKING" in self.extensions
            and "PIPELINING" in self.extensions
        )

    @property
    def smtputf8(self) -> bool:
        return "SMTPUTF8" in self.extensions

    def close(self, *, quit: bool = True) -> None:
        sock, self.sock = self.sock, None
        if sock is None:
            return
        if quit and not self.broken:
            try:
                sock.settimeout(2)
                sock.sendall(b"QUIT\r\n")
            except OSError:
                pass
        with contextlib.suppress(OSError):
            sock.close()


# --- The pool ---------------------------------------------------------------------------


class ConnectionPool:
    """Open connections kept between sends, per server, and which servers are down.

    Thread-safe; one per process (connections never cross a fork: the pool
    notices a new process id and starts empty).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[SmtpServer, list[SmtpConnection]] = {}
        self._down_until: dict[SmtpServer, float] = {}
        self._current: dict[SmtpServer, int] = {}
        self._pid = os.getpid()

    def _check_process(self) -> None:
        if self._pid != os.getpid():
            self._idle, self._down_until, self._current = {}, {}, {}
            self._pid = os.getpid()

    def acquire(self, server: SmtpServer) -> SmtpConnection:
        """An idle connection to ``server``, or a new one (raises OSError / SmtpError)."""
        with self._lock:
            self._check_process()
            idle = self._idle.get(server, [])
            now = time.monotonic()
            stale: list[SmtpConnection] = []
            connection = None
            while idle:
                candidate = idle.pop()
                if now - candidate.last_used < MAX_IDLE_SECONDS:
                    connection = candidate
                    break
                stale.append(candidate)
        for old in stale:
            old.close()
        if connection is not None:
            return connection
        try:
            return SmtpConnection(server).open()
        except (OSError, SmtpError):
            self.mark_down(server)
            raise

    def release(self, connection: SmtpConnection) -> None:
        if connection.broken or connection.sock is None:
            connection.close(quit=False)
            return
        connection.last_used = time.monotonic()
        with self._lock:
            self._check_process()
            self._idle.setdefault(connection.server, []).append(connection)

    def mark_down(self, server: SmtpServer) -> None:
        with self._lock:
            self._down_until[server] = time.monotonic() + SERVER_COOLDOWN_SECONDS

    def is_up(self, server: SmtpServer) -> bool:
        with self._lock:
            return self._down_until.get(server, 0.0) <= time.monotonic()

    def choose(self, servers: Sequence[SmtpServer], count: int) -> list[int]:
        """Which of ``servers`` (by index) each of ``count`` messages goes to.

        Smooth weighted round robin (as nginx balances upstreams): over any run
        of messages each server gets its weight's share, interleaved, and the
        state carries over between sends so small batches add up right. Servers
        marked down are left out while others are up.
        """
        with self._lock:
            now = time.monotonic()
            live = [s for s in servers if self._down_until.get(s, 0.0) <= now] or list(servers)
            total = sum(s.weight for s in live)
            current = self._current
            picks: list[int] = []
            positions = {s: servers.index(s) for s in live}
            for _ in range(count):
                best = None
                for server in live:
                    weight = current.get(server, 0) + server.weight
                    current[server] = weight
                    if best is None or weight > current[best]:
                        best = server
                assert best is not None
                current[best] -= total
                picks.append(positions[best])
            return picks

    def close_all(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()


POOL = ConnectionPool()


# --- Sending ----------------------------------------------------------------------------

# What a queued reply answers.
_MAIL, _RCPT, _DATA, _CONTENT, _RSET, _BDAT = range(6)
# Transactions in flight per connection with BDAT. A connection that breaks with
# replies unread leaves their messages in doubt: they are sent again (at least
# once, never lost), so the window also bounds how many may arrive twice.
CHUNKING_WINDOW = 16


@dataclass(slots=True)
class Envelope:
    """One message as the client sends it (index: its place in the caller's list)."""

    index: int
    sender: str
    recipients: list[str]
    data: bytes


@dataclass(slots=True)
class Delivered:
    """What became of one envelope: (code, reply) and SENT/RETRY/FAILED as a word."""

    index: int
    outcome: str
    code: int | None
    reply: str


class _Transaction:
    __slots__ = ("accepted", "envelope", "error", "rejected")

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self.accepted = 0
        self.rejected: list[str] = []
        self.error: tuple[int, str] | None = None


def crlf(data: bytes) -> bytes:
    """``data`` with CRLF line ends only, ending with CRLF.

    A bare LF or CR becomes CRLF: servers refuse them since SMTP smuggling
    (Postfix, Exchange), and they would end up inside DKIM-signed bodies.
    """
    crlfs = data.count(b"\r\n")
    if data.count(b"\n") != crlfs or data.count(b"\r") != crlfs:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def dot_stuff(data: bytes) -> bytes:
    """``data`` ready to follow DATA: CRLF line ends, leading dots doubled, final CRLF."""
    data = crlf(data)
    if b"\r\n." in data:
        data = data.replace(b"\r\n.", b"\r\n..")
    if data[:1] == b".":
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


class _Session:
    """One connection's part of a ``deliver()`` call: a queue and the replies it awaits."""

    def __init__(self, connection: SmtpConnection, queue: deque[Envelope]) -> None:
        self.connection = connection
        self.queue = queue
        self.expect: deque[tuple[int, _Transaction]] = deque()
        self.commands: deque[tuple[bytes, int, _Transaction]] = deque()
        self.buffer = b""
        self.reply_lines: list[bytes] = []
        self.dirty = False  # a transaction is open on the server (needs RSET)
        self.open = 0  # BDAT transactions written whose last reply has not come

    def in_flight(self) -> list[Envelope]:
        seen: dict[int, Envelope] = {}
        for _, transaction in self.expect:
            seen.setdefault(transaction.envelope.index, transaction.envelope)
        for _, _, transaction in self.commands:
            seen.setdefault(transaction.envelope.index, transaction.envelope)
        return list(seen.values())


def _mailbox(address: str) -> bytes:
    return address.encode("utf-8")


class Sender:
    """Runs one ``deliver`` call: sessions over connections, results per envelope."""

    def __init__(
        self,
        servers: Sequence[SmtpServer],
        pool: ConnectionPool,
        done: Callable[[Delivered], None],
    ) -> None:
        self.servers = list(servers)
        self.pool = pool
        self.done = done
        self.attempts: dict[int, int] = {}
        self.selector = selectors.DefaultSelector()
        self.sessions: list[_Session] = []
        self.last_error: dict[int, str] = {}

    # -- results
    def _finish(self, envelope: Envelope, outcome: str, code: int | None, reply: str) -> None:
        self.done(Delivered(envelope.index, outcome, code, reply))

    def _finish_reply(self, transaction: _Transaction, code: int, reply: str) -> None:
        envelope = transaction.envelope
        if 200 <= code < 300:
            if transaction.rejected:
                reply = f"{reply} (refused: {'; '.join(transaction.rejected)})"
            self._finish(envelope, "sent", code, reply)
        elif 400 <= code < 500:
            self._finish(envelope, "retry", code, reply)
        else:
            self._finish(envelope, "failed", code or None, reply)

    # -- writing
    def _envelope_commands(self, session: _Session, envelope: Envelope) -> None:
        transaction = _Transaction(envelope)
        connection = session.connection
        needs_utf8 = not envelope.sender.isascii() or not all(
            r.isascii() for r in envelope.recipients
        )
        if needs_utf8 and not connection.smtputf8:
            self._finish(
                envelope,
                "failed",
                None,
                f"{connection.server.label} does not offer SMTPUTF8, which this address needs",
            )
            return
        options = b" SMTPUTF8" if needs_utf8 else b""
        commands = session.commands
        if connection.chunking:
            # Every transaction starts from a clean state whatever became of the
            # one before (a refused BDAT leaves servers in different states).
            commands.append((b"RSET\r\n", _RSET, transaction))
            commands.append(
                (
                    b"MAIL FROM:<" + _mailbox(envelope.sender) + b">" + options + b"\r\n",
                    _MAIL,
                    transaction,
                )
            )
            for recipient in envelope.recipients:
                commands.append((b"RCPT TO:<" + _mailbox(recipient) + b">\r\n", _RCPT, transaction))
            data = crlf(envelope.data)
            commands.append((b"BDAT %d LAST\r\n" % len(data) + data, _BDAT, transaction))
            session.open += 1
            return
        if session.dirty:
            commands.append((b"RSET\r\n", _RSET, transaction))
            session.dirty = False
        commands.append(
            (
                b"MAIL FROM:<" + _mailbox(envelope.sender) + b">" + options + b"\r\n",
                _MAIL,
                transaction,
            )
        )
        for recipient in envelope.recipients:
            commands.append((b"RCPT TO:<" + _mailbox(recipient) + b">\r\n", _RCPT, transaction))
        commands.append((b"DATA\r\n", _DATA, transaction))

    def _next(self, session: _Session, out: list[bytes], *, after_content: bool = False) -> None:
        """Write what may be written now, starting the next envelope when no
        transaction is open: nothing awaits a reply, or (pipelining) the content
        of the last one has just been written."""
        if session.connection.chunking:
            while session.queue and session.open < CHUNKING_WINDOW:
                self._envelope_commands(session, session.queue.popleft())
        elif after_content or not session.expect:
            while not session.commands and session.queue:
                self._envelope_commands(session, session.queue.popleft())
        commands, expect = session.commands, session.expect
        if session.connection.pipelining:
            while commands:
                line, kind, transaction = commands.popleft()
                out.append(line)
                expect.append((kind, transaction))
        elif commands and not expect:
            line, kind, transaction = commands.popleft()
            out.append(line)
            expect.append((kind, transaction))

    def _write(self, session: _Session, out: list[bytes]) -> None:
        if out:
            sock = session.connection.sock
            assert sock is not None
            sock.sendall(b"".join(out))

    # -- reading
    def _on_reply(self, session: _Session, code: int, text: str, out: list[bytes]) -> None:
        kind, transaction = session.expect.popleft()
        if code == 421:
            # The server is closing the connection: this message is to retry, the
            # others in flight go to another connection.
            self._finish(transaction.envelope, "retry", code, text)
            session.expect = deque(item for item in session.expect if item[1] is not transaction)
            session.commands = deque(
                item for item in session.commands if item[2] is not transaction
            )
            raise SmtpError(code, text)
        after_content = False
        if kind == _MAIL:
            if 200 <= code < 300:
                session.dirty = True
            elif transaction.error is None:
                transaction.error = (code, text)
        elif kind == _RCPT:
            if 200 <= code < 300:
                transaction.accepted += 1
            else:
                recipient = transaction.envelope.recipients[
                    transaction.accepted + len(transaction.rejected)
                ]
                transaction.rejected.append(f"{recipient}: {code} {text}")
                if transaction.error is None or (transaction.error[0] < 500 <= code):
                    transaction.error = (code, text)
        elif kind == _DATA:
            if code == 354:
                if transaction.accepted == 0:
                    # A server that says 354 with no recipient: end the empty
                    # message; it goes nowhere.
                    out.append(b".\r\n")
                    session.expect.appendleft((_CONTENT, _Transaction(transaction.envelope)))
                    error = transaction.error or (554, "no valid recipients")
                    self._finish_reply(transaction, *error)
                else:
                    out.append(dot_stuff(transaction.envelope.data) + b".\r\n")
                    session.expect.appendleft((_CONTENT, transaction))
                session.dirty = False
                after_content = session.connection.pipelining
            else:
                self._finish_reply(transaction, *(transaction.error or (code, text)))
        elif kind == _CONTENT:
            session.dirty = False
            if transaction.accepted:
                self._finish_reply(transaction, code, text)
        elif kind == _BDAT:
            session.open -= 1
            session.dirty = False
            if transaction.accepted and 200 <= code < 300:
                self._finish_reply(transaction, code, text)
            else:
                self._finish_reply(transaction, *(transaction.error or (code, text)))
        # _RSET: nothing to record.
        self._next(session, out, after_content=after_content)

    def _read(self, session: _Session) -> None:
        connection = session.connection
        sock = connection.sock
        assert sock is not None
        chunk = sock.recv(262144)
        if not chunk:
            raise SmtpError(None, "the server closed the connection")
        if isinstance(sock, ssl.SSLSocket):
            while sock.pending():
                chunk += sock.recv(sock.pending())
        buffer = session.buffer + chunk if session.buffer else chunk
        out: list[bytes] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            if line[3:4] == b"-":
                session.reply_lines.append(line)
                continue
            if not session.expect:
                raise SmtpError(None, f"unexpected reply from {connection.server.label}: {line!r}")
            if session.reply_lines:
                lines = [*session.reply_lines, line]
                session.reply_lines = []
                text = "\n".join(
                    item[4:].rstrip(b"\r").decode("utf-8", "replace") for item in lines
                )
            else:
                text = line[4:].rstrip(b"\r").decode("utf-8", "replace")
            self._on_reply(session, _reply_code(line), text, out)
        session.buffer = buffer[start:]
        self._write(session, out)

    # -- connections
    def _open_session(self, queue: deque[Envelope], avoid: SmtpServer | None) -> bool:
        """Start a session for ``queue`` on some server (other than ``avoid`` if possible)."""
        preferred = self.servers[self.pool.choose(self.servers, 1)[0]]
        order = list(dict.fromkeys([preferred, *self.servers]))
        # Servers that are up first, the one that just failed last; down ones are
        # still tried as a last resort.
        order.sort(key=lambda s: (s == avoid, not self.pool.is_up(s)))
        for server in order:
            try:
                connection = self.pool.acquire(server)
            except (OSError, SmtpError) as error:
                for envelope in queue:
                    self.last_error[envelope.index] = f"{server.label}: {error}"
                continue
            self._start(connection, queue)
            return True
        return False

    def _start(self, connection: SmtpConnection, queue: deque[Envelope]) -> None:
        session = _Session(connection, queue)
        self.sessions.append(session)
        assert connection.sock is not None
        connection.sock.settimeout(connection.server.timeout)
        self.selector.register(connection.sock, selectors.EVENT_READ, session)
        out: list[bytes] = []
        self._next(session, out)
        if not session.expect:
            self._end_session(session)
            return
        try:
            self._write(session, out)
        except OSError as error:
            self._break(session, SmtpError(None, str(error)))

    def _end_session(self, session: _Session) -> None:
        if session in self.sessions:
            self.sessions.remove(session)
            if session.connection.sock is not None:
                self.selector.unregister(session.connection.sock)
            if session.dirty and session.connection.sock is not None:
                try:
                    session.connection.sock.sendall(b"RSET\r\n")
                    session.connection._read_reply()
                except (OSError, SmtpError):
                    session.connection.broken = True
            self.pool.release(session.connection)

    def _break(self, session: _Session, error: SmtpError) -> None:
        """The connection failed: its messages go elsewhere or become RETRY."""
        if session in self.sessions:
            self.sessions.remove(session)
            if session.connection.sock is not None:
                self.selector.unregister(session.connection.sock)
        connection = session.connection
        connection.broken = True
        connection.close(quit=False)
        # The oldest message awaiting a reply is the one the connection broke on;
        # it counts an attempt. Those pipelined behind it and those not yet
        # written simply move to another connection.
        culprit = session.expect[0][1].envelope.index if session.expect else None
        reason = f"{connection.server.label}: {error}"
        again: deque[Envelope] = deque()
        for envelope in [*session.in_flight(), *session.queue]:
            self.last_error[envelope.index] = reason
            if culprit is None or envelope.index == culprit:
                attempts = self.attempts.get(envelope.index, 0) + 1
                self.attempts[envelope.index] = attempts
                if attempts >= MAX_CONNECTION_ATTEMPTS:
                    self._finish(envelope, "retry", error.code, reason)
                    continue
            again.append(envelope)
        if again:
            self._requeue(again, avoid=connection.server)

    def _requeue(self, queue: deque[Envelope], avoid: SmtpServer | None) -> None:
        if not self._open_session(queue, avoid):
            for envelope in queue:
                self._finish(
                    envelope,
                    "retry",
                    None,
                    self.last_error.get(envelope.index, "no mail server reachable"),
                )

    def run(self, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        picks = self.pool.choose(self.servers, len(envelopes))
        per_server: dict[int, list[Envelope]] = {}
        for envelope, pick in zip(envelopes, picks, strict=True):
            per_server.setdefault(pick, []).append(envelope)
        for pick, items in per_server.items():
            server = self.servers[pick]
            # Enough messages per connection that opening one is worth it.
            count = max(1, min(server.connections, len(items) // 8 or 1))
            for number in range(count):
                queue = deque(items[number::count])
                try:
                    connection = self.pool.acquire(server)
                except (OSError, SmtpError) as error:
                    for envelope in queue:
                        self.attempts[envelope.index] = 1
                        self.last_error[envelope.index] = f"{server.label}: {error}"
                    self._requeue(queue, avoid=server)
                    continue
                self._start(connection, queue)
        self._loop()

    def _loop(self) -> None:
        while self.sessions:
            timeout = min(s.connection.server.timeout for s in self.sessions)
            events = self.selector.select(timeout)
            if not events:
                for session in list(self.sessions):
                    self.pool.mark_down(session.connection.server)
                    self._break(session, SmtpError(None, "timed out waiting for the server"))
                continue
            for key, _ in events:
                session = key.data
                if session not in self.sessions:
                    continue
                try:
                    self._read(session)
                except SmtpError as error:
                    self._break(session, error)
                    continue
                except OSError as error:
                    self._break(session, SmtpError(None, str(error) or type(error).__name__))
                    continue
                if not session.expect and not session.commands and not session.queue:
                    self._end_session(session)
        self.selector.close()


def deliver(
    envelopes: Sequence[Envelope],
    servers: Sequence[SmtpServer],
    *,
    pool: ConnectionPool | None = None,
) -> list[Delivered]:
    """Send ``envelopes`` over pooled, pipelined connections; one result each, in order."""
    results: list[Delivered | None] = [None] * len(envelopes)
    position = {envelope.index: number for number, envelope in enumerate(envelopes)}

    def done(delivered: Delivered) -> None:
        number = position[delivered.index]
        if results[number] is None:
            results[number] = delivered

    Sender(servers, pool or POOL, done).run(envelopes)
    return [
        result
        if result is not None
        else Delivered(envelope.index, "retry", None, "not sent: the connection ended")
        for envelope, result in zip(envelopes, results, strict=True)
    ]
