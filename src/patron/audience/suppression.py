"""The workspace's suppression list: addresses that bulk and automated mail never reaches.

Suppression is keyed by **address**, not by contact: the address is trimmed,
lower-cased and validated before it is stored, so ``Ann@Example.com`` and
``ann@example.com`` are one row. Writes are set-based and idempotent: suppressing
an address that is suppressed already keeps its original reason, note and date
(the first reason is the one worth knowing: a complaint stays a complaint when
someone later adds the address by hand).

Adding and removing addresses is audited and recorded as ``contact.suppressed``
/ ``contact.unsuppressed`` on the timeline of every contact carrying the
address, as its primary email or one of its other emails.

**Role addresses.** With the workspace setting ``suppress_role_addresses`` on,
an address whose local part is one of ``ROLE_LOCAL_PARTS`` counts as suppressed
(reason "role address") without a row of its own. The list is short on
purpose: mailboxes of a function rather than a person (RFC 2142's ``abuse``,
``postmaster``, ``hostmaster``, ``webmaster``), bounce and no-reply senders
that no person reads, and ``admin``. Sales-type mailboxes such as ``info@`` or
``sales@`` are left out: small businesses are often reached only there.

Who may be mailed is decided in one place, ``patron.audience.sending``; this
module only keeps the list.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Lower, StrIndex, Substr
from django.db.models.lookups import In
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from patron.activity.services import NewEvent, record_many
from patron.audience.models import Suppression, SuppressionReason
from patron.core.models import User, Workspace
from patron.core.services import RequestInfo, record_audit
from patron.crm.models import Contact, ContactEmail

# Local parts (before the @) of role addresses; compared case-insensitively.
ROLE_LOCAL_PARTS = frozenset(
    {
        "abuse",
        "admin",
        "hostmaster",
        "postmaster",
        "webmaster",
        "mailer-daemon",
        "noreply",
        "no-reply",
        "donotreply",
        "do-not-reply",
    }
)
REASON_CODES = frozenset(SuppressionReason.values)
NOTE_LIMIT = 300
# Addresses pasted into the form or posted to the API at once.
MAX_ADDRESSES = 1000
# A CSV import: read into memory and applied in one transaction.
MAX_IMPORT_BYTES = 5 << 20
MAX_IMPORT_ROWS = 50_000
# Rows per ``IN (...)`` list, far below SQLite's limit of 32,766 parameters.
CHUNK = 500
# Up to this many addresses, their contacts are found by index lookups (see _contacts_carrying).
FEW_ADDRESSES = 50
EVENT_SOURCE = "audience.suppression"
REPORT_SALT = "patron.audience.suppression-import-report"


class SuppressionInvalid(ValueError):
    """An address, reason or note that cannot be stored."""


class ImportInvalid(ValueError):
    """A file that cannot be imported at all (too big, no email column, ...)."""


@dataclass(frozen=True)
class Entry:
    """One address to suppress, with why."""

    email: str
    reason: str = SuppressionReason.MANUAL
    note: str = ""


@dataclass
class SuppressResult:
    added: list[str] = field(default_factory=list)
    # Suppressed before: left as they were, with their first reason and date.
    already: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Status:
    """Why an address is suppressed: a row of the list, or the role-address rule."""

    email: str
    reason: str
    label: str
    suppression: Suppression | None = None


# --- Addresses ----------------------------------------------------------------------------


def normalise_email(value: str) -> str:
    """The stored form of an address: trimmed, lower-cased, valid; or SuppressionInvalid."""
    address = (value or "").strip().lower()
    if not address:
        raise SuppressionInvalid(_("Enter an email address."))
    if len(address) > 254:
        raise SuppressionInvalid(_("An email address has at most 254 characters."))
    try:
        validate_email(address)
    except ValidationError:
        raise SuppressionInvalid(
            _("“%(value)s” is not a valid email address.") % {"value": value.strip()[:100]}
        ) from None
    return address


def is_role_address(email: str) -> bool:
    local, at, _domain = (email or "").strip().lower().partition("@")
    return bool(at) and local in ROLE_LOCAL_PARTS


def is_role_address_sql(field_name: str = "email") -> In:
    """The same test as ``is_role_address`` as one SQL condition on ``field_name``.

    ``LOWER(SUBSTR(email, 1, INSTR(email, '@') - 1)) IN (...)``: one function
    chain and a set lookup per row, where ten ``ILIKE 'abuse@%'`` patterns
    would upper-case the address ten times.
    """
    local_part = Lower(Substr(field_name, 1, StrIndex(field_name, Value("@")) - 1))
    return In(local_part, sorted(ROLE_LOCAL_PARTS))


_SEPARATORS = re.compile(r"[\s,;]+")


def split_addresses(text: str) -> list[str]:
    """The addresses in pasted text: one a line, or separated by commas, semicolons, spaces."""
    return [part.strip("<>\"'") for part in _SEPARATORS.split(text or "") if part.strip("<>\"'")]


def parse_addresses(values: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Valid addresses (normalised, each once) and the invalid ones with what is wrong."""
    valid: dict[str, None] = {}
    invalid: list[tuple[str, str]] = []
    for value in values:
        try:
            valid.setdefault(normalise_email(value), None)
        except SuppressionInvalid as exc:
            invalid.append((value, str(exc)))
    return list(valid), invalid


@functools.lru_cache(maxsize=16)
def _reason_names(language: str | None) -> dict[str, str]:
    """Every way of writing a reason (code, label, code with spaces), folded -> code."""
    names: dict[str, str] = {}
    for code, label in SuppressionReason.choices:
        for name in (code, str(label), code.replace("_", " ")):
            names[name.casefold()] = code
    return names


def clean_reason(value: str, default: str = SuppressionReason.MANUAL) -> str:
    """A reason given as its code or its label (any case); empty means ``default``."""
    text = (value or "").strip()
    if not text:
        return default
    if text in REASON_CODES:
        return text
    code = _reason_names(translation.get_language()).get(text.casefold())
    if code is None:
        raise SuppressionInvalid(
            _("Unknown reason “%(value)s”: use one of %(codes)s.")
            % {"value": text[:60], "codes": ", ".join(SuppressionReason.values)}
        )
    return code


def clean_note(value: str) -> str:
    note = (value or "").strip()
    if len(note) > NOTE_LIMIT:
        raise SuppressionInvalid(
            _("Keep the note under %(limit)d characters.") % {"limit": NOTE_LIMIT}
        )
    return note


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# --- Reads --------------------------------------------------------------------------------


def suppressions(
    workspace: Workspace, *, search: str = "", reason: str = ""
) -> QuerySet[Suppression]:
    """The list, newest first, searched in addresses and notes and filtered by reason."""
    rows = Suppression.objects.for_workspace(workspace).select_related("created_by")
    search = (search or "").strip()
    if search:
        rows = rows.filter(Q(email__contains=search.lower()) | Q(note__icontains=search))
    if reason:
        rows = rows.filter(reason=reason)
    return rows


def statuses(workspace: Workspace, emails: Iterable[str]) -> dict[str, Status]:
    """For each suppressed address among ``emails`` (lower-cased): why. One query."""
    wanted = {(email or "").strip().lower() for email in emails} - {""}
    found: dict[str, Status] = {}
    if not wanted:
        return found
    labels = dict(SuppressionReason.choices)
    rows = Suppression.objects.for_workspace(workspace).filter(email__in=sorted(wanted))
    for row in rows:
        found[row.email] = Status(row.email, row.reason, str(labels[row.reason]), row)
    if workspace.suppress_role_addresses:
        for email in wanted - set(found):
            if is_role_address(email):
                found[email] = Status(
                    email, SuppressionReason.ROLE, str(labels[SuppressionReason.ROLE])
                )
    return found


def status(workspace: Workspace, email: str) -> Status | None:
    return statuses(workspace, [email]).get((email or "").strip().lower())


def _contacts_carrying(
    workspace: Workspace, emails: Sequence[str], rows: QuerySet[Suppression]
) -> dict[str, set[int]]:
    """The contacts whose primary or other email is one of ``emails``, the addresses of ``rows``.

    A few addresses are looked up through the ``LOWER(email)`` indexes. Many
    are matched against ``rows`` as a subquery in one statement per table, which
    the database joins at once: long ``IN`` lists would make PostgreSQL scan the
    contacts once per list (it keeps no statistics on the partial
    ``LOWER(email)`` index, so it takes every list for a large part of the table).
    """
    addresses: Any = list(emails) if len(emails) <= FEW_ADDRESSES else rows.values("email")
    primary = (
        Contact.objects.for_workspace(workspace)
        .exclude(email="")  # the unique index on LOWER(email) is partial
        .annotate(address=Lower("email"))
        .filter(address__in=addresses)
        .values_list("address", "pk")
    )
    others = (
        ContactEmail.objects.for_workspace(workspace)
        .annotate(address=Lower("email"))
        .filter(address__in=addresses)
        .values_list("address", "contact_id")
    )
    carriers: dict[str, set[int]] = defaultdict(set)
    for address, contact_id in [*primary, *others]:
        carriers[address].add(contact_id)
    return carriers


def _record_events(
    workspace: Workspace,
    kind: str,
    rows: Iterable[tuple[str, str, int]],
    carriers: dict[str, set[int]],
) -> int:
    """One event per contact carrying each (email, reason, suppression id).

    Who did it is in the audit log; bulk events carry no actor.
    """
    labels = dict(SuppressionReason.choices)
    events = []
    for email, reason, pk in rows:
        properties = {
            "email": email,
            "reason": reason,
            "title": f"{email} ({labels.get(reason, reason)})",
        }
        for contact_id in sorted(carriers.get(email, ())):
            events.append(
                NewEvent(
                    workspace_id=workspace.pk,
                    kind=kind,
                    contact_id=contact_id,
                    properties=properties,
                    source_type=EVENT_SOURCE,
                    source_id=str(pk),
                )
            )
    return record_many(events)


# --- Writes -------------------------------------------------------------------------------


@transaction.atomic
def suppress_entries(
    *,
    workspace: Workspace,
    entries: Iterable[Entry],
    actor: User | None = None,
    details: dict[str, Any] | None = None,
    request_info: RequestInfo | None = None,
) -> SuppressResult:
    """Suppress many addresses at once; the first entry of an address wins.

    Raises SuppressionInvalid (writing nothing) when an address, reason or note
    is not valid. Addresses suppressed already keep their reason, note and date.
    """
    clean: dict[str, Entry] = {}
    for entry in entries:
        email = normalise_email(entry.email)
        if email not in clean:
            clean[email] = Entry(email, clean_reason(entry.reason), clean_note(entry.note))
    return _write(
        workspace=workspace,
        clean=clean,
        actor=actor,
        details=details,
        request_info=request_info,
    )


def _write(
    *,
    workspace: Workspace,
    clean: dict[str, Entry],
    actor: User | None,
    details: dict[str, Any] | None,
    request_info: RequestInfo | None,
) -> SuppressResult:
    """Write validated entries (address -> entry, addresses normalised)."""
    result = SuppressResult()
    if not clean:
        return result
    existing: set[str] = set()
    for chunk in _chunks(list(clean)):
        existing.update(
            Suppression.objects.for_workspace(workspace)
            .filter(email__in=chunk)
            .values_list("email", flat=True)
        )
    now = timezone.now()
    fresh = [email for email in clean if email not in existing]
    Suppression.objects.bulk_create(
        [
            Suppression(
                workspace=workspace,
                email=email,
                reason=clean[email].reason,
                note=clean[email].note,
                created_by=actor,
                details=details or {},
                created_at=now,
            )
            for email in fresh
        ],
        batch_size=CHUNK,
        ignore_conflicts=True,  # one written by a concurrent request in the meantime stays
    )
    created: dict[str, int] = {}
    for chunk in _chunks(fresh):
        created.update(
            Suppression.objects.for_workspace(workspace)
            .filter(email__in=chunk, created_at=now)
            .values_list("email", "pk")
        )
    result.added = [email for email in fresh if email in created]
    result.already = [email for email in clean if email not in created]
    if result.added:
        _record_events(
            workspace,
            "contact.suppressed",
            [(email, clean[email].reason, created[email]) for email in result.added],
            _contacts_carrying(
                workspace,
                result.added,
                # The rows this call wrote: created at this very moment.
                Suppression.objects.for_workspace(workspace).filter(created_at=now),
            ),
        )
        reasons = Counter(clean[email].reason for email in result.added)
        record_audit(
            action="suppression.added",
            workspace=workspace,
            actor=actor,
            target=_target(result.added),
            request_info=request_info,
            data={
                "count": len(result.added),
                "reasons": dict(reasons),
                "emails": result.added[:50],
                **({"source": details["source"]} if details and "source" in details else {}),
            },
        )
    return result


def suppress_addresses(
    *,
    workspace: Workspace,
    emails: Iterable[str],
    reason: str = SuppressionReason.MANUAL,
    note: str = "",
    actor: User | None = None,
    details: dict[str, Any] | None = None,
    request_info: RequestInfo | None = None,
) -> SuppressResult:
    """Suppress addresses for one reason (what the form and the API do)."""
    return suppress_entries(
        workspace=workspace,
        entries=[Entry(email, reason, note) for email in emails],
        actor=actor,
        details=details,
        request_info=request_info,
    )


def suppress_address(
    *,
    workspace: Workspace,
    email: str,
    reason: str = SuppressionReason.MANUAL,
    note: str = "",
    actor: User | None = None,
    details: dict[str, Any] | None = None,
) -> Suppression:
    """Suppress one address; returns its row, new or as it was."""
    suppress_addresses(
        workspace=workspace,
        emails=[email],
        reason=reason,
        note=note,
        actor=actor,
        details=details,
    )
    return Suppression.objects.for_workspace(workspace).get(email=normalise_email(email))


@transaction.atomic
def unsuppress(
    *,
    workspace: Workspace,
    emails: Iterable[str] = (),
    ids: Iterable[int] = (),
    actor: User | None = None,
    request_info: RequestInfo | None = None,
) -> list[str]:
    """Take addresses (given by address or by row id) off the list; returns those removed.

    Addresses that are not on the list are ignored. A role address stays
    suppressed while the workspace's role-address setting is on: it has no row.
    """
    addresses = sorted({(email or "").strip().lower() for email in emails} - {""})
    row_ids = sorted({int(pk) for pk in ids})
    rows: list[tuple[str, str, int]] = []
    for chunk in _chunks(addresses):
        rows.extend(
            Suppression.objects.for_workspace(workspace)
            .filter(email__in=chunk)
            .values_list("email", "reason", "pk")
        )
    for chunk in _chunks(row_ids):
        rows.extend(
            Suppression.objects.for_workspace(workspace)
            .filter(pk__in=chunk)
            .values_list("email", "reason", "pk")
        )
    unique = {pk: (email, reason, pk) for email, reason, pk in rows}
    if not unique:
        return []
    removed_ids = sorted(unique)
    carriers: dict[str, set[int]] = defaultdict(set)
    for chunk in _chunks(removed_ids):
        rows_of_chunk = Suppression.objects.for_workspace(workspace).filter(pk__in=chunk)
        emails_of_chunk = [unique[pk][0] for pk in chunk]
        for address, contact_ids in _contacts_carrying(
            workspace, emails_of_chunk, rows_of_chunk
        ).items():
            carriers[address] |= contact_ids
        rows_of_chunk.delete()
    removed = sorted(unique.values())
    _record_events(workspace, "contact.unsuppressed", removed, carriers)
    emails_removed = [email for email, _reason, _pk in removed]
    record_audit(
        action="suppression.removed",
        workspace=workspace,
        actor=actor,
        target=_target(emails_removed),
        request_info=request_info,
        data={"count": len(removed), "emails": emails_removed[:50]},
    )
    return emails_removed


def _target(emails: Sequence[str]) -> str:
    if len(emails) == 1:
        return emails[0]
    return _("%(count)d addresses") % {"count": len(emails)}


# --- CSV import ---------------------------------------------------------------------------

EMAIL_HEADERS = {"email", "e-mail", "email address", "e-mail address", "mail", "address"}
REASON_HEADERS = {"reason", "suppression reason"}
NOTE_HEADERS = {"note", "notes", "comment", "comments"}


@dataclass(frozen=True)
class Rejection:
    row: int  # the line of the file, the header being line 1
    reason: str
    values: list[str]


@dataclass
class ImportReport:
    headers: list[str]
    rows: int = 0
    added: int = 0
    already: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _read_csv(data: bytes) -> list[list[str]]:
    text = _decode(data)
    sample = text[:8192]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise ImportInvalid(
            _("The file is not a readable CSV file (%(error)s).") % {"error": exc}
        ) from None


def _columns(first: list[str]) -> tuple[bool, int, int | None, int | None]:
    """Whether the first row is a header, and the email, reason and note columns."""
    names = [cell.strip().casefold() for cell in first]

    def find(options: set[str]) -> int | None:
        return next((index for index, name in enumerate(names) if name in options), None)

    email = find(EMAIL_HEADERS)
    if email is not None:
        return True, email, find(REASON_HEADERS), find(NOTE_HEADERS)
    if names and "@" in names[0]:
        # No header: the columns are email, reason, note in that order.
        return False, 0, 1, 2
    raise ImportInvalid(
        _("The first row must name an “email” column (and may name “reason” and “note”).")
    )


def import_csv(
    *,
    workspace: Workspace,
    data: bytes,
    default_reason: str = SuppressionReason.MANUAL,
    actor: User | None = None,
    file_name: str = "",
    request_info: RequestInfo | None = None,
) -> ImportReport:
    """Suppress the addresses of a CSV file (email, optional reason, optional note).

    Every row that is not applied is in the report with its reason; a file that
    cannot be read at all raises ImportInvalid and writes nothing.
    """
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportInvalid(
            _("The file is larger than %(size)d MB; split it into smaller files.")
            % {"size": MAX_IMPORT_BYTES >> 20}
        )
    default_reason = clean_reason(default_reason)
    rows = [row for row in _read_csv(data)]
    numbered = [
        (number, row) for number, row in enumerate(rows, start=1) if any(c.strip() for c in row)
    ]
    if not numbered:
        raise ImportInvalid(_("The file is empty."))
    has_header, email_at, reason_at, note_at = _columns(numbered[0][1])
    headers = numbered[0][1] if has_header else ["email", "reason", "note"][: len(numbered[0][1])]
    body = numbered[1:] if has_header else numbered
    if len(body) > MAX_IMPORT_ROWS:
        raise ImportInvalid(
            _("The file has %(rows)d rows; import at most %(limit)d at a time.")
            % {"rows": len(body), "limit": MAX_IMPORT_ROWS}
        )
    report = ImportReport(headers=[h.strip() for h in headers], rows=len(body))
    entries: dict[str, Entry] = {}
    first_row: dict[str, int] = {}

    def cell(row: list[str], index: int | None) -> str:
        return row[index] if index is not None and index < len(row) else ""

    for number, row in body:
        try:
            raw_email = cell(row, email_at)
            if not raw_email.strip():
                raise SuppressionInvalid(_("No email address."))
            email = normalise_email(raw_email)
            reason = clean_reason(cell(row, reason_at), default_reason)
            note = clean_note(cell(row, note_at))
        except SuppressionInvalid as exc:
            report.rejected.append(Rejection(number, str(exc), row))
            continue
        if email in first_row:
            report.rejected.append(
                Rejection(
                    number,
                    _("Repeats the address of row %(row)d, whose reason and note were kept.")
                    % {"row": first_row[email]},
                    row,
                )
            )
            continue
        first_row[email] = number
        entries[email] = Entry(email, reason, note)
    with transaction.atomic():
        result = _write(
            workspace=workspace,
            clean=entries,
            actor=actor,
            details={"source": "import", "file": file_name[:200]},
            request_info=request_info,
        )
    report.added, report.already = len(result.added), len(result.already)
    return report


def report_token(workspace: Workspace, report: ImportReport) -> str:
    """The rejected rows, signed and compressed, for the report download (no table needed)."""
    return signing.dumps(
        {
            "w": workspace.pk,
            "h": report.headers,
            "r": [[r.row, r.reason, [v[:500] for v in r.values]] for r in report.rejected],
        },
        salt=REPORT_SALT,
        compress=True,
    )


def report_rows(workspace: Workspace, token: str) -> Iterator[list[Any]] | None:
    """The CSV rows of a report token of this workspace, or None when it is not one."""
    try:
        data = signing.loads(token, salt=REPORT_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("w") != workspace.pk:
        return None

    def rows() -> Iterator[list[Any]]:
        yield ["row", "problem", *data["h"]]
        for number, reason, values in data["r"]:
            yield [number, reason, *values]

    return rows()


def export_rows(rows: QuerySet[Suppression]) -> Iterator[list[Any]]:
    """The list as CSV rows (pass them through ``patron.crm.exporter.csv_lines``)."""
    yield ["email", "reason", "note", "created_at", "created_by"]
    for row in rows.select_related("created_by").iterator(chunk_size=2000):
        yield [
            row.email,
            row.reason,
            row.note,
            row.created_at.isoformat(),
            row.created_by.email if row.created_by else "",
        ]
