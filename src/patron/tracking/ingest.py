"""The open pixel and the click redirect: the hottest path of the system.

Both adapters, the Django views (``views.py``) and the lean ASGI app that
production runs for ``/t/`` (``asgi.py``), call ``open_hit()`` and
``click_hit()`` and hand the result to a writer. Nothing else happens in the
request: no session, no template, no lookup but the campaign's links (kept
per process, they never change). Judging machines from people and writing
timeline events happen later, in ``services.process_hits()``.

Nothing answered is lost. The response goes out after the hit is committed;
when the database cannot take it, the hit is written to a spool file
(``TRACKING_SPOOL_DIR``, fsynced) that ``services.process_hits()`` replays.
``HitBatcher`` commits the hits of concurrent requests together (one COPY per
batch), which is what lets one process record thousands per second.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction

from patron.tracking.links import (
    TokenValues,
    campaign_links,
    read_click_token,
    read_open_token,
)
from patron.tracking.models import Hit, HitKind

logger = logging.getLogger(__name__)
Row = TypeVar("Row")
T = TypeVar("T")

# A transparent 1x1 GIF.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
USER_AGENT_LIMIT = 500
LINK_CACHE_LIMIT = 10_000


def _client_ip(remote: str | None, forwarded_for: str | None) -> str | None:
    if settings.TRACKING_FORWARDED_FOR and forwarded_for:
        # The proxy appends the address it saw: the last entry is the one it vouches for.
        # A header is text anyone can write: only an address the column takes is kept.
        try:
            return str(ipaddress.ip_address(forwarded_for.rsplit(",", 1)[-1].strip()))
        except ValueError:
            return None
    return remote or None  # the server's own peer address


class HitRow(NamedTuple):
    """A hit as it is written: the ``tracking_hit`` columns the endpoints fill."""

    workspace_id: int
    kind: str
    campaign_id: int
    delivery_id: int
    contact_id: int
    link: int | None
    occurred_at: datetime
    sent_at: datetime
    method: str
    ip: str | None
    user_agent: str


COLUMNS = HitRow._fields


def make_hit(
    kind: str,
    values: TokenValues,
    *,
    method: str,
    remote: str | None,
    forwarded_for: str | None,
    user_agent: str,
) -> HitRow:
    return HitRow(
        values.workspace_id,
        kind,
        values.campaign_id,
        values.delivery_id,
        values.contact_id,
        values.link,
        datetime.now(UTC),
        datetime.fromtimestamp(values.made_at, UTC),
        method[:7],
        _client_ip(remote, forwarded_for),
        user_agent[:USER_AGENT_LIMIT].replace("\x00", ""),
    )


def open_hit(
    token: str, *, method: str, remote: str | None, forwarded_for: str | None, user_agent: str
) -> HitRow | None:
    """The hit an open-pixel request makes, or None for a token that is not ours."""
    values = read_open_token(token)
    if values is None:
        return None
    return make_hit(
        HitKind.OPEN,
        values,
        method=method,
        remote=remote,
        forwarded_for=forwarded_for,
        user_agent=user_agent,
    )


@dataclass(frozen=True, slots=True)
class Click:
    hit: HitRow
    url: str


class LinkCache:
    """The campaigns' tracked links, read once per campaign and process."""

    def __init__(self) -> None:
        self._links: dict[int, dict[int, str]] = {}
        self._lock = threading.Lock()

    def cached(self, campaign_id: int, index: int) -> str | None:
        """The link if this process knows it already (no database read)."""
        links = self._links.get(campaign_id)
        return None if links is None else links.get(index)

    def url(self, workspace_id: int, campaign_id: int, index: int) -> str | None:
        links = self._links.get(campaign_id)
        if links is None or index not in links:
            # Unknown here yet (or a link numbered after an edit): read the campaign again.
            links = campaign_links(workspace_id, campaign_id)
            with self._lock:
                if len(self._links) >= LINK_CACHE_LIMIT:
                    self._links.clear()
                self._links[campaign_id] = links
        return links.get(index)

    def clear(self) -> None:
        with self._lock:
            self._links.clear()


links = LinkCache()


def click_hit(
    token: str, *, method: str, remote: str | None, forwarded_for: str | None, user_agent: str
) -> Click | None:
    """The hit and destination of a click, or None: no redirect for a token that is not ours."""
    values = read_click_token(token)
    if values is None or values.link is None:
        return None
    url = links.url(values.workspace_id, values.campaign_id, values.link)
    if url is None:
        return None
    hit = make_hit(
        HitKind.CLICK,
        values,
        method=method,
        remote=remote,
        forwarded_for=forwarded_for,
        user_agent=user_agent,
    )
    return Click(hit=hit, url=url)


# --- Writing --------------------------------------------------------------------------------


def insert_rows(rows: list[HitRow]) -> None:
    """Commit ``rows`` in one statement: COPY on PostgreSQL, one executemany on SQLite."""
    table = Hit._meta.db_table
    names = ", ".join([*COLUMNS, "machine"])
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The driver's own cursor: Django's wrapper has no COPY (nor its error mapping).
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row((*row, ""))
        else:
            marks = ", ".join(["%s"] * (len(COLUMNS) + 1))
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks})",  # noqa: S608 - fixed names
                [(*row, "") for row in rows],
            )


def write_hits(rows: list[HitRow]) -> bool:
    """Commit hits, or keep them in the spool when the database refuses them (then False)."""
    try:
        insert_rows(rows)
    except DatabaseError:
        logger.exception("Could not record %d tracking hits; spooling them", len(rows))
        spool(rows)
        return False
    return True


def spool(rows: list[HitRow]) -> Path:
    """Keep hits the database refused in a file of their own, on disk before returning."""
    folder = settings.TRACKING_SPOOL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
    partial = path.with_suffix(".partial")
    with open(partial, "w", encoding="utf-8") as file:
        for row in rows:
            values = row._asdict()
            values["occurred_at"] = row.occurred_at.isoformat()
            values["sent_at"] = row.sent_at.isoformat()
            file.write(json.dumps(values) + "\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)  # whole or not at all: a reader never sees half a file
    return path


def read_spool_file(path: Path) -> list[HitRow]:
    rows = []
    with open(path, encoding="utf-8") as file:
        for line in file:
            values = json.loads(line)
            values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
            values["sent_at"] = datetime.fromisoformat(values["sent_at"])
            rows.append(HitRow(**values))
    return rows


class Batcher(Generic[Row]):
    """Commits the rows of concurrent requests of an asyncio server together.

    ``await record(row)`` returns once the row is durable (``write`` returned);
    the request is answered then. Up to ``writers`` batches are written at once,
    each from a thread with its own database connection, so one batch is sent
    while another waits for its commit to reach the disk; the rows arriving
    meanwhile make the next batch, so a busy process writes bigger batches
    rather than falling behind.

    ``write(rows)`` commits a batch: it returns False when it kept the rows
    somewhere else (the hits' spool) because the database refused them, and
    raises when the rows are lost: every request of that batch then fails.
    """

    def __init__(
        self,
        write: Callable[[list[Row]], bool],
        *,
        writers: int | None = None,
        name: str = "tracking-writer",
    ) -> None:
        if writers is None:
            # SQLite takes one writer at a time: a second thread would only wait for the lock.
            writers = 1 if connection.vendor == "sqlite" else 2
        self._write_rows = write
        self._rows: list[Row] = []
        self._written: asyncio.Future[None] | None = None
        self._writers = writers
        # Writes under way. Counted by the writes themselves, not by their tasks' done
        # callbacks, which run a turn of the loop later: a row arriving in between would
        # find every writer "busy" and wait for a write that never comes.
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(writers, thread_name_prefix=name)

    async def record(self, row: Row) -> None:
        loop = asyncio.get_running_loop()
        if self._written is None:
            self._written = loop.create_future()
        written = self._written
        self._rows.append(row)
        if self._running < self._writers:
            self._running += 1
            task = loop.create_task(self._write())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await written

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function`` in one of the writer threads (their database connections)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._rows:
                rows, written = self._rows, self._written
                self._rows, self._written = [], None
                assert written is not None
                try:
                    stored = await loop.run_in_executor(self._executor, self._write_rows, rows)
                    if not stored:
                        await loop.run_in_executor(self._executor, close_old_connections)
                except Exception as error:  # not written, not kept: the requests fail
                    logger.exception("Could not record %d tracking rows", len(rows))
                    await loop.run_in_executor(self._executor, close_old_connections)
                    written.set_exception(error)
                else:
                    written.set_result(None)
        finally:
            # No await between finding nothing left and this: the next row starts a write.
            self._running -= 1

    async def close(self) -> None:
        """Write what is pending, then let the writer threads go."""
        while self._tasks:
            await asyncio.gather(*self._tasks)
        self._executor.shutdown(wait=True)


class HitBatcher(Batcher[HitRow]):
    """The open and click hits' batcher: a batch the database refuses goes to the spool."""

    def __init__(self, *, writers: int | None = None) -> None:
        super().__init__(write_hits, writers=writers)
