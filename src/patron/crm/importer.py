"""CSV import of contacts and companies: upload, mapping, preview, and the batch engine.

The engine is a hot path (``bench/bench_import.py``): rows are read as a
stream from the stored file, converted and validated in Python once per cell,
and written set-based per batch: one query finds the existing records of the
batch, ``bulk_create``/``bulk_update`` write them, one statement records
their events. Each batch commits together with ``ImportJob.processed_rows``,
so a worker that dies is resumed from the last committed batch: no row is
applied twice or lost. Every row that is not applied is stored with its reason
(``ImportRejection``) for the downloadable report.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import queue
import re
import threading
import zipfile
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.conf.locale import LANG_INFO
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import validate_email
from django.db import DataError, IntegrityError, connection, connections, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from patron.activity.services import record_for_contacts, record_for_selected_contacts
from patron.core import bulk
from patron.core.models import User, Workspace
from patron.crm import custom_fields
from patron.crm.assignment import Assigner
from patron.crm.models import (
    AssignmentRule,
    Company,
    Contact,
    CustomField,
    CustomFieldObject,
    ImportFileChunk,
    ImportJob,
    ImportRejection,
    ImportStatus,
    LifecycleStage,
    Tag,
)

CHUNK_BYTES = 1 << 20
BATCH_ROWS = 5000
MAX_BYTES = int(getattr(settings, "IMPORT_MAX_MEGABYTES", 100)) << 20
STALLED_AFTER = timedelta(minutes=5)
TAGS = "tags"
CUSTOM_PREFIX = "custom."

CONTACT_TARGETS: dict[str, Any] = {
    "first_name": gettext_lazy("First name"),
    "last_name": gettext_lazy("Last name"),
    "email": gettext_lazy("Email"),
    "phone": gettext_lazy("Phone"),
    "mobile_phone": gettext_lazy("Mobile phone"),
    "job_title": gettext_lazy("Job title"),
    "company": gettext_lazy("Company name"),
    "lifecycle_stage": gettext_lazy("Lifecycle stage"),
    "owner": gettext_lazy("Owner (email of a member)"),
    "source": gettext_lazy("Source"),
    "street": gettext_lazy("Street address"),
    "postal_code": gettext_lazy("Postal code"),
    "city": gettext_lazy("City"),
    "region": gettext_lazy("State / region"),
    "country": gettext_lazy("Country"),
    "time_zone": gettext_lazy("Time zone"),
    "language": gettext_lazy("Language"),
    "birthday": gettext_lazy("Birthday"),
    TAGS: gettext_lazy("Tags (separated by ; or ,)"),
}
COMPANY_TARGETS: dict[str, Any] = {
    "name": gettext_lazy("Name"),
    "domain": gettext_lazy("Domain"),
    "industry": gettext_lazy("Industry"),
    "size": gettext_lazy("Employees"),
    "annual_revenue": gettext_lazy("Annual revenue"),
    "phone": gettext_lazy("Phone"),
    "street": gettext_lazy("Street address"),
    "postal_code": gettext_lazy("Postal code"),
    "city": gettext_lazy("City"),
    "region": gettext_lazy("State / region"),
    "country": gettext_lazy("Country"),
    "owner": gettext_lazy("Owner (email of a member)"),
    TAGS: gettext_lazy("Tags (separated by ; or ,)"),
}
# Header spellings people use for the standard fields, beyond the field names.
SYNONYMS = {
    "e-mail": "email",
    "email address": "email",
    "e-mail address": "email",
    "mail": "email",
    "first": "first_name",
    "given name": "first_name",
    "firstname": "first_name",
    "last": "last_name",
    "surname": "last_name",
    "family name": "last_name",
    "lastname": "last_name",
    "mobile": "mobile_phone",
    "cell": "mobile_phone",
    "telephone": "phone",
    "title": "job_title",
    "position": "job_title",
    "organisation": "company",
    "organization": "company",
    "company name": "company",
    "account": "company",
    "zip": "postal_code",
    "zip code": "postal_code",
    "postcode": "postal_code",
    "state": "region",
    "province": "region",
    "address": "street",
    "timezone": "time_zone",
    "lifecycle": "lifecycle_stage",
    "stage": "lifecycle_stage",
    "date of birth": "birthday",
    "website": "domain",
    "employees": "size",
    "revenue": "annual_revenue",
    "tag": TAGS,
    "labels": TAGS,
}
TEXT_LIMITS = {
    "first_name": 100,
    "last_name": 100,
    "phone": 50,
    "mobile_phone": 50,
    "job_title": 150,
    "source": 100,
    "street": 200,
    "postal_code": 20,
    "city": 100,
    "region": 100,
    "country": 100,
    "name": 200,
    "industry": 100,
    "company": 200,
}


class ImportInvalid(ValueError):
    """The file or the mapping cannot be imported; the message says why."""


class RowInvalid(ValueError):
    pass


# --- Reading the stored file -------------------------------------------------------


def _sniff(sample: bytes) -> tuple[str, str]:
    """(encoding, delimiter) of a file from its first bytes."""
    if sample.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    else:
        try:
            # The sample may end inside a multi-byte character: ignore the last 3 bytes.
            sample[:-3].decode("utf-8") if len(sample) > 3 else sample.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "cp1252"
    text = sample.decode(encoding, errors="ignore")
    first_lines = "\n".join(text.splitlines()[:20])
    try:
        delimiter = csv.Sniffer().sniff(first_lines, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    return encoding, delimiter


def _lines(chunks: Iterable[bytes], encoding: str) -> Iterator[str]:
    """Text lines (with their line ends) from raw chunks, decoded incrementally."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        lines = pending.splitlines(keepends=True)
        # The last piece may be an unfinished line: keep it for the next chunk.
        pending = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        yield from lines
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _stored_chunks(job: ImportJob) -> Iterator[bytes]:
    index = 0
    while True:
        chunk = (
            ImportFileChunk.objects.for_workspace(job.workspace_id)
            .filter(job=job, index=index)
            .values_list("data", flat=True)
            .first()
        )
        if chunk is None:
            return
        yield bytes(chunk)
        index += 1


def read_rows(job: ImportJob) -> Iterator[list[str]]:
    """The data rows of the job's file (the header row left out), as a stream."""
    reader = csv.reader(_lines(_stored_chunks(job), job.encoding), delimiter=job.delimiter)
    next(reader, None)
    for row in reader:
        if "".join(row).strip():  # a row of blank cells is no row
            yield row


@transaction.atomic
def store_upload(
    *, workspace: Workspace, object_type: str, upload: UploadedFile, actor: User | None
) -> ImportJob:
    """Keep the uploaded CSV with the job, count its rows and read its header."""
    if object_type not in {CustomFieldObject.CONTACT, CustomFieldObject.COMPANY}:
        raise ImportInvalid(_("Contacts and companies can be imported."))
    if upload.size and upload.size > MAX_BYTES:
        raise ImportInvalid(_("The file is larger than %(limit)d MB.") % {"limit": MAX_BYTES >> 20})
    name = upload.name or "import.csv"
    if name.lower().endswith((".xls", ".numbers", ".ods")):
        raise ImportInvalid(_("Save the spreadsheet as CSV or Excel (.xlsx) and upload that file."))
    chunks: Iterator[bytes] = iter(upload.chunks(CHUNK_BYTES))
    if name.lower().endswith(".xlsx"):
        chunks = _xlsx_as_csv(upload)
    first = next(chunks, b"")
    if not first.strip():
        raise ImportInvalid(_("The file is empty."))
    if b"\x00" in first[:4096]:
        raise ImportInvalid(_("This is not a CSV text file."))
    encoding, delimiter = _sniff(first[:65536])
    job = ImportJob.objects.create(
        workspace=workspace,
        object_type=object_type,
        file_name=name[:255],
        encoding=encoding,
        delimiter=delimiter,
        created_by=actor,
    )
    size = 0

    def stored() -> Iterator[bytes]:
        nonlocal size
        for index, chunk in enumerate(_chain(first, chunks)):
            size += len(chunk)
            if size > MAX_BYTES:
                raise ImportInvalid(
                    _("The file is larger than %(limit)d MB.") % {"limit": MAX_BYTES >> 20}
                )
            ImportFileChunk.objects.create(workspace=workspace, job=job, index=index, data=chunk)
            yield chunk

    reader = csv.reader(_lines(stored(), encoding), delimiter=delimiter)
    try:
        headers = [cell.strip() for cell in next(reader, [])]
        total = sum(1 for row in reader if "".join(row).strip())
    except csv.Error as exc:
        raise ImportInvalid(_("The file is not valid CSV: %(error)s") % {"error": exc}) from None
    if not any(headers):
        raise ImportInvalid(_("The first row must name the columns."))
    if total == 0:
        raise ImportInvalid(_("The file has a header row but no data rows."))
    job.headers = headers
    job.total_rows = total
    job.file_size = size
    job.mapping = suggest_mapping(job)
    job.save()
    return job


def _xlsx_as_csv(upload: UploadedFile) -> Iterator[bytes]:
    """The first sheet of an Excel workbook as UTF-8 CSV, in pieces, read as a stream."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(upload, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportInvalid(
            _("This is not an Excel (.xlsx) file: %(error)s") % {"error": exc}
        ) from None
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    try:
        for row in workbook.worksheets[0].iter_rows(values_only=True):
            writer.writerow(["" if cell is None else _cell_text(cell) for cell in row])
            if buffer.tell() >= CHUNK_BYTES:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
    finally:
        workbook.close()
    if buffer.tell():
        yield buffer.getvalue().encode()


def _cell_text(cell: Any) -> str:
    """A spreadsheet cell as the text a CSV export would hold (dates as ISO dates)."""
    if isinstance(cell, datetime):
        return cell.date().isoformat() if cell.time() == time.min else cell.isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def _chain(first: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    """The upload again in pieces of at most CHUNK_BYTES.

    An upload held in memory gives all its bytes as one chunk whatever the size
    asked for; stored like that, reading it back would hold the whole file.
    """
    yield from _pieces(first)
    for piece in rest:
        yield from _pieces(piece)


def _pieces(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK_BYTES):
        yield data[start : start + CHUNK_BYTES]


# --- Mapping ----------------------------------------------------------------------------


def targets(workspace: Workspace | int, object_type: str) -> dict[str, str]:
    """Field name -> label of everything a column can be imported into."""
    standard = CONTACT_TARGETS if object_type == CustomFieldObject.CONTACT else COMPANY_TARGETS
    result = {name: str(label) for name, label in standard.items()}
    for custom in _definitions(workspace, object_type):
        result[CUSTOM_PREFIX + custom.key] = custom.label
    return result


def _definitions(workspace: Workspace | int, object_type: str) -> list[CustomField]:
    return list(
        CustomField.objects.for_workspace(workspace)
        .filter(object_type=object_type)
        .order_by("position", "id")
    )


def _normal(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text.strip().lower())


def suggest_mapping(job: ImportJob) -> dict[str, str]:
    """A target for each column: as mapped in the last import, else by its name."""
    available = targets(job.workspace_id, job.object_type)
    by_name = {_normal(name): name for name in available}
    by_name.update({_normal(label): name for name, label in available.items()})
    by_name.update({k: v for k, v in SYNONYMS.items() if v in available})
    remembered: dict[str, str] = {}
    earlier = (
        ImportJob.objects.for_workspace(job.workspace_id)
        .filter(object_type=job.object_type)
        .exclude(pk=job.pk)
        .exclude(status=ImportStatus.MAPPING)
        .order_by("-created_at")
        .values_list("headers", "mapping")[:20]
    )
    for headers, mapping in reversed(list(earlier)):
        for index, header in enumerate(headers):
            target = mapping.get(str(index), "")
            if target in available or target == "":
                remembered[_normal(header)] = target
    suggestion: dict[str, str] = {}
    used: set[str] = set()
    for index, header in enumerate(job.headers):
        key = _normal(header)
        target = remembered.get(key, by_name.get(key, ""))
        if target in used:
            target = ""
        if target:
            used.add(target)
        suggestion[str(index)] = target
    return suggestion


def check_mapping(job: ImportJob, mapping: dict[str, str]) -> dict[str, str]:
    available = targets(job.workspace_id, job.object_type)
    cleaned: dict[str, str] = {}
    seen: dict[str, str] = {}
    for index in range(len(job.headers)):
        target = mapping.get(str(index), "")
        if target and target not in available:
            raise ImportInvalid(_("Column %(n)d goes to an unknown field.") % {"n": index + 1})
        if target and target in seen:
            raise ImportInvalid(
                _("“%(a)s” and “%(b)s” both go to %(field)s; choose one.")
                % {"a": seen[target], "b": job.headers[index], "field": available[target]}
            )
        if target:
            seen[target] = job.headers[index]
        cleaned[str(index)] = target
    chosen = set(seen)
    if job.object_type == CustomFieldObject.CONTACT:
        if not chosen & {"email", "first_name", "last_name"}:
            raise ImportInvalid(_("Map a column to Email, First name or Last name."))
    elif not chosen & {"name", "domain"}:
        raise ImportInvalid(_("Map a column to Name or Domain."))
    return cleaned


# --- Converting rows ------------------------------------------------------------------


@dataclass(slots=True)
class ParsedRow:
    number: int
    raw: list[str]
    values: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    company_name: str = ""


# Addresses that Django's EmailValidator accepts, written narrower: most rows of a file
# match this and skip the validator's three regular expressions. Anything else still
# goes through validate_email, so what is accepted does not change.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_+\-]+(?:\.[a-z0-9_+\-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z"
)
_TAG_SEPARATORS = re.compile(r"[;,]")
# Distinct cells remembered per custom field: a column of a few hundred distinct values
# (options, seats, dates) is validated once per value, not once per row.
NORMALISED_CACHE = 4096

Put = Callable[[ParsedRow, str], None]


class RowConverter:
    """Turns a CSV row into field values, raising RowInvalid with every problem named.

    Each mapped column gets its converter once, when the import starts; converting
    a row is then one call per non-empty cell.
    """

    def __init__(self, job: ImportJob, mapping: dict[str, str]) -> None:
        self.job = job
        self.columns = [(int(i), t) for i, t in mapping.items() if t]
        self.labels = targets(job.workspace_id, job.object_type)
        self.custom = {f.key: f for f in _definitions(job.workspace_id, job.object_type)}
        self.owners = {
            email.lower(): pk
            for pk, email in User.objects.filter(
                memberships__workspace_id=job.workspace_id, memberships__is_active=True
            ).values_list("pk", "email")
        }
        self.stages = {value: value for value in LifecycleStage.values}
        self.stages.update({str(label).lower(): value for value, label in LifecycleStage.choices})
        self.stages.update({"marketing qualified lead": "mql", "sales qualified lead": "sql"})
        self.zones = zoneinfo.available_timezones()
        self.is_contact = job.object_type == CustomFieldObject.CONTACT
        self.plan = [(index, self._converter(target), target) for index, target in self.columns]

    def convert(self, number: int, raw: list[str]) -> ParsedRow:
        row = ParsedRow(number, raw)
        problems: list[str] = []
        width = len(raw)
        for index, put, target in self.plan:
            if index >= width:
                continue
            cell = raw[index].strip()
            if not cell:
                continue
            try:
                put(row, cell)
            except (ValueError, ValidationError) as exc:
                message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
                problems.append(f"{self.labels[target]}: {message}")
        if not problems:
            values = row.values
            if self.is_contact:
                if not (values.get("email") or values.get("first_name") or values.get("last_name")):
                    problems.append(_("Give at least a name or an email address."))
            elif not (values.get("name") or values.get("domain")):
                problems.append(_("Give a name or a domain."))
        if problems:
            raise RowInvalid("; ".join(problems))
        return row

    def _converter(self, target: str) -> Put:
        """The function that puts one non-empty cell of ``target``'s column into a row."""
        if target.startswith(CUSTOM_PREFIX):
            return self._custom_converter(target.removeprefix(CUSTOM_PREFIX))
        if target == TAGS:

            def put_tags(row: ParsedRow, cell: str) -> None:
                row.tags = [t.strip()[:60] for t in _TAG_SEPARATORS.split(cell) if t.strip()]

            return put_tags
        put = self._standard_converter(target)
        limit = TEXT_LIMITS.get(target)
        if not limit:
            return put
        too_long = _("Keep it to %(limit)d characters.") % {"limit": limit}

        def put_limited(row: ParsedRow, cell: str) -> None:
            if len(cell) > limit:
                raise ValueError(too_long)
            put(row, cell)

        return put_limited

    def _custom_converter(self, key: str) -> Put:
        definition = self.custom[key]
        normalise = custom_fields.normalise
        known: dict[str, Any] = {}

        def put_custom(row: ParsedRow, cell: str) -> None:
            # normalise() depends on the definition and the cell alone: a value met
            # before is not validated again. Invalid cells are not remembered (they
            # raise each time), nor are lists, which a row could share and change.
            try:
                row.custom[key] = known[cell]
                return
            except KeyError:
                pass
            value = normalise(definition, cell)
            if len(known) < NORMALISED_CACHE and not isinstance(value, list):
                known[cell] = value
            row.custom[key] = value

        return put_custom

    def _standard_converter(self, target: str) -> Put:
        if target == "company":

            def put_company(row: ParsedRow, cell: str) -> None:
                row.company_name = cell

            return put_company
        if target == "email":
            plain = _PLAIN_EMAIL.match

            def put_email(row: ParsedRow, cell: str) -> None:
                email = cell.lower()
                if len(email) > 254:
                    raise ValueError(_("Keep it to %(limit)d characters.") % {"limit": 254})
                if not plain(email):
                    validate_email(email)
                row.values["email"] = email

            return put_email
        if target == "domain":

            def put_domain(row: ParsedRow, cell: str) -> None:
                domain = cell.lower().removeprefix("https://").removeprefix("http://")
                domain = domain.split("/")[0].removeprefix("www.")
                if "." not in domain or " " in domain:
                    raise ValueError(_("Enter a domain such as example.com."))
                row.values["domain"] = domain

            return put_domain
        if target == "lifecycle_stage":
            stages = self.stages

            def put_stage(row: ParsedRow, cell: str) -> None:
                stage = stages.get(cell.lower())
                if stage is None:
                    raise ValueError(
                        _("Use one of: %(stages)s.") % {"stages": ", ".join(LifecycleStage.values)}
                    )
                row.values["lifecycle_stage"] = stage

            return put_stage
        if target == "owner":
            owners = self.owners

            def put_owner(row: ParsedRow, cell: str) -> None:
                owner = owners.get(cell.lower())
                if owner is None:
                    raise ValueError(_("No member of the workspace has this email."))
                row.values["owner_id"] = owner

            return put_owner
        if target == "birthday":

            def put_birthday(row: ParsedRow, cell: str) -> None:
                birthday = parse_date(cell)
                if birthday is None:
                    raise ValueError(_("Enter a date as YYYY-MM-DD."))
                row.values["birthday"] = birthday

            return put_birthday
        if target == "time_zone":
            zones = self.zones

            def put_zone(row: ParsedRow, cell: str) -> None:
                if cell not in zones:
                    raise ValueError(_("Choose a time zone such as Europe/Berlin."))
                row.values["time_zone"] = cell

            return put_zone
        if target == "language":

            def put_language(row: ParsedRow, cell: str) -> None:
                if cell.lower() not in LANG_INFO:
                    raise ValueError(_("Use a language code such as en, de or pt-br."))
                row.values["language"] = cell.lower()

            return put_language
        if target == "size":

            def put_size(row: ParsedRow, cell: str) -> None:
                size = custom_fields._number(cell, 0)
                if size < 0:
                    raise ValueError(_("Enter a number of at least 0."))
                row.values["size"] = int(size)

            return put_size
        if target == "annual_revenue":

            def put_revenue(row: ParsedRow, cell: str) -> None:
                row.values["annual_revenue"] = custom_fields._number(cell, 2)

            return put_revenue

        def put_text(row: ParsedRow, cell: str) -> None:
            row.values[target] = cell

        return put_text


def preview(job: ImportJob, mapping: dict[str, str], limit: int = 5) -> list[dict[str, Any]]:
    """The first rows as they would be imported, each with its problem if any."""
    converter = RowConverter(job, mapping)
    result: list[dict[str, Any]] = []
    for number, raw in enumerate(read_rows(job), start=2):
        if len(result) >= limit:
            break
        try:
            row = converter.convert(number, raw)
            shown = {converter.labels[t]: raw[i] for i, t in converter.columns if i < len(raw)}
            result.append({"number": number, "values": shown, "error": ""})
        except RowInvalid as exc:
            result.append({"number": number, "values": {}, "error": str(exc), "raw": raw})
        else:
            del row
    return result


# --- Starting and running ----------------------------------------------------------------


@transaction.atomic
def start_import(
    *,
    job: ImportJob,
    mapping: dict[str, str],
    tags: list[str],
    update_existing: bool,
    actor: User | None = None,
    subscribe_list: Any = None,
    subscribe_confirmed: bool = False,
    consent_text: str = "",
) -> ImportJob:
    """Start the import; ``subscribe_list`` subscribes every imported contact (consent "import").

    On a double opt-in list the contacts are pending and get the confirmation
    email, unless ``subscribe_confirmed`` says they confirmed elsewhere, which
    needs the ``consent_text`` they agreed to.
    """
    if job.status != ImportStatus.MAPPING:
        raise ImportInvalid(_("This import has already started."))
    job.mapping = check_mapping(job, mapping)
    job.tags = [t.strip()[:60] for t in tags if t.strip()]
    job.update_existing = update_existing
    if subscribe_list is not None:
        if job.object_type != CustomFieldObject.CONTACT:
            raise ImportInvalid(_("Only contacts can be subscribed to a list."))
        if subscribe_list.workspace_id != job.workspace_id:
            raise ImportInvalid(_("Choose a list of this workspace."))
        consent_text = consent_text.strip()
        if subscribe_confirmed and subscribe_list.double_opt_in and not consent_text:
            raise ImportInvalid(
                _("Say what the contacts agreed to (the consent text) to skip confirmation.")
            )
    job.subscribe_list = subscribe_list
    job.subscribe_confirmed = subscribe_confirmed and subscribe_list is not None
    job.consent_text = consent_text if subscribe_list is not None else ""
    job.status = ImportStatus.QUEUED
    job.save()
    from patron.crm.tasks import run_import_job

    transaction.on_commit(lambda: run_import_job.enqueue(job.pk))
    return job


def run_import(job_id: int) -> ImportJob:
    """Apply the job's rows in batches from where it stands; safe to call again.

    Reading and converting the rows (Python) and applying them (the database)
    overlap on PostgreSQL: writer threads with connections of their own apply
    batches while the next one is converted (see ``_ThreadWriter``). Each batch
    still commits alone together with the progress, in file order, so a resumed
    import starts from the last committed batch either way.
    """
    job = ImportJob.objects.unscoped().get(pk=job_id)
    if job.is_finished or job.status == ImportStatus.MAPPING:
        return job
    ImportJob.objects.unscoped().filter(pk=job_id).update(
        status=ImportStatus.RUNNING,
        started_at=job.started_at or timezone.now(),
        heartbeat_at=timezone.now(),
    )
    job.refresh_from_db()
    converter = RowConverter(job, job.mapping)
    stager = _Stager(job, converter) if _uses_staging(job) else None
    apply = _apply_contacts if job.object_type == CustomFieldObject.CONTACT else _apply_companies
    writer: _Writer = (
        _ThreadWriter(job, apply, _writing_threads(job, stager))
        if _can_overlap()
        else _Writer(job, apply)
    )
    try:
        with writer:
            for batch in _batches(job, converter, stager):
                writer.write(batch)
    except Exception as exc:
        ImportJob.objects.unscoped().filter(pk=job_id).update(
            status=ImportStatus.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
    ImportJob.objects.unscoped().filter(pk=job_id).update(
        status=ImportStatus.DONE, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


@dataclass
class Batch:
    """Rows of the file read and converted, ready to be applied in one transaction."""

    start: int  # position of its first row among the data rows
    size: int  # rows of the file it covers, rejected ones included
    rows: list[ParsedRow]
    rejections: list[ImportRejection]
    staged: Staged | None = None


@dataclass
class BatchResult:
    created: int = 0
    updated: int = 0
    rejections: list[ImportRejection] = field(default_factory=list)


def _batches(job: ImportJob, converter: RowConverter, stager: _Stager | None) -> Iterator[Batch]:
    """The batches still to apply, each converted (and staged) as the file is read."""
    raws: list[tuple[int, list[str]]] = []
    start = 0
    for position, raw in enumerate(read_rows(job)):
        if position < job.processed_rows:
            continue  # applied before a restart
        if not raws:
            start = position
        raws.append((position + 2, raw))  # row 1 is the header
        if len(raws) >= BATCH_ROWS:
            yield _prepare(job, converter, stager, start, raws)
            raws = []
    if raws:
        yield _prepare(job, converter, stager, start, raws)


def _prepare(
    job: ImportJob,
    converter: RowConverter,
    stager: _Stager | None,
    start: int,
    raws: list[tuple[int, list[str]]],
) -> Batch:
    rows: list[ParsedRow] = []
    rejections: list[ImportRejection] = []
    convert = converter.convert
    for number, raw in raws:
        try:
            rows.append(convert(number, raw))
        except RowInvalid as exc:
            rejections.append(_rejection(job, number, str(exc), raw))
    batch = Batch(start=start, size=len(raws), rows=rows, rejections=rejections)
    if stager is not None:
        batch.staged = stager.stage(rows)
    return batch


class _Writer:
    """Applies batches one after the other, here and now."""

    def __init__(self, job: ImportJob, apply: Any) -> None:
        self.job = job
        self.apply = apply

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None

    def write(self, batch: Batch) -> None:
        _run_batch(self.job, self.apply, batch)


class _ThreadWriter(_Writer):
    """Applies batches in threads of their own while the caller reads on.

    With one thread, batches are applied one after the other while the next is
    read. With two (a staged contact import), two batches are applied at once,
    each on a connection of its own, so that the database works on two cores:

    - they still commit in file order: a batch that is ready waits for the one
      before it to commit, so the progress keeps meaning "every row before
      ``processed_rows`` is applied" and the resume rule holds;
    - two batches that share an email are never applied together (the later
      waits, without a transaction), so the later row wins as it would one by one;
    - the companies and tags a batch names are created here, in the reading
      thread, before it is handed over, so two batches never create the same one;
    - a batch waiting for its turn while holding a lock that another
      transaction waits for (the batch before it, say) rolls back and is applied
      again once its turn has come, so waiting never deadlocks.

    At most one batch waits in the queue, so memory stays that of a few
    batches. The first error stops the writing; the caller gets it at its next
    ``write`` or when leaving the ``with`` block.
    """

    def __init__(self, job: ImportJob, apply: Any, threads: int = 1) -> None:
        super().__init__(job, apply)
        self.queue: queue.Queue[tuple[int, Batch] | None] = queue.Queue(maxsize=1)
        self.turn = threading.Condition()
        self.handed = 0  # batches handed to the threads
        self.committed = 0  # batches committed, in order
        self.in_flight: dict[int, frozenset[str]] = {}  # emails of the batches in flight
        self.error: BaseException | None = None
        self.failed: int | None = None  # the batch that failed: those after it stop
        self.threads = [
            threading.Thread(target=self._work, name=f"import-{job.pk}-{i}", daemon=True)
            for i in range(threads)
        ]

    def __enter__(self) -> _ThreadWriter:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        for _thread in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join()
        if exc_type is None and self.error is not None:
            raise self.error

    def write(self, batch: Batch) -> None:
        if self.error is not None:
            raise self.error
        parallel = len(self.threads) > 1
        emails = _emails(batch) if parallel else frozenset()
        with self.turn:
            number = self.handed
            self.handed += 1
            self.in_flight[number] = emails
        if parallel:
            _create_companies_and_tags(self.job, batch)
        self.queue.put((number, batch))

    def _work(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                number, batch = item
                try:
                    self._wait_for_no_shared_email(number)
                    self._apply(number, batch)
                except _Stopped:
                    pass
                except BaseException as exc:  # handed to the reading thread
                    with self.turn:
                        if self.failed is None or number < self.failed:
                            self.error, self.failed = exc, number
                finally:
                    with self.turn:
                        self.in_flight.pop(number, None)
                        self.turn.notify_all()
        finally:
            connections.close_all()  # this thread's own connections

    def _apply(self, number: int, batch: Batch) -> None:
        try:
            _run_batch(self.job, self.apply, batch, lambda: self._wait_for_turn(number, True))
        except _GiveWay:
            self._wait_for_turn(number, False)
            _run_batch(self.job, self.apply, batch)
        with self.turn:
            self.committed = number + 1
            self.turn.notify_all()

    def _wait_for_turn(self, number: int, holding_locks: bool) -> None:
        """Return once the batches before ``number`` have committed."""
        while True:
            with self.turn:
                if self.turn.wait_for(
                    lambda: self.committed == number or self._stopped(number),
                    TURN_CHECK_SECONDS if holding_locks else None,
                ):
                    break
            if _blocking_others():  # asked outside the condition's lock
                raise _GiveWay
        if self._stopped(number):
            raise _Stopped

    def _wait_for_no_shared_email(self, number: int) -> None:
        """Return once no earlier batch in flight shares an email with batch ``number``."""
        with self.turn:
            emails = self.in_flight[number]
            self.turn.wait_for(
                lambda: (
                    self._stopped(number)
                    or all(
                        emails.isdisjoint(other)
                        for earlier, other in self.in_flight.items()
                        if earlier < number
                    )
                )
            )
        if self._stopped(number):
            raise _Stopped

    def _stopped(self, number: int) -> bool:
        """Whether a batch before ``number`` failed (earlier ones still commit)."""
        return self.failed is not None and self.failed < number


TURN_CHECK_SECONDS = 0.2


class _GiveWay(Exception):
    """A batch waiting for its turn holds a lock someone waits for: it rolls back."""


class _Stopped(Exception):
    """An earlier batch failed: a later one rolls back (the earlier's error is reported)."""


def _emails(batch: Batch) -> frozenset[str]:
    return frozenset(email.lower() for row in batch.rows if (email := row.values.get("email")))


def _create_companies_and_tags(job: ImportJob, batch: Batch) -> None:
    """Create the companies and tags a batch names before it is applied (committed at once).

    Applying finds them again by name (and creates one deleted meanwhile).
    """
    companies = [row.company_name for row in batch.rows if row.company_name]
    if companies:
        _company_ids(job.workspace_id, companies)
    tags = {tag for row in batch.rows for tag in row.tags} | set(job.tags)
    if tags:
        _tag_ids(job, tags)


def _blocking_others() -> bool:
    """Whether another PostgreSQL backend waits for a lock this connection holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND pg_backend_pid() = ANY(pg_blocking_pids(pid)))"
        )
        return bool(cursor.fetchone()[0])


def _writing_threads(job: ImportJob, stager: _Stager | None) -> int:
    """Two for a staged contact import, unless assignment rules give owners.

    The rules hand out owners in turn (round robin), which two batches at once
    would share out of order.
    """
    if stager is None:
        return 1
    rules = AssignmentRule.objects.for_workspace(job.workspace_id)
    return 1 if rules.filter(object_type=job.object_type, is_active=True).exists() else 2


def _can_overlap() -> bool:
    """Whether batches may be written by a thread of their own.

    PostgreSQL only (SQLite has one writer and little to overlap), and never inside
    a transaction of the caller: the thread's connection would not see its data.
    """
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _run_batch(
    job: ImportJob, apply: Any, batch: Batch, before_commit: Callable[[], None] | None = None
) -> None:
    """Apply one batch and record the progress, in one transaction.

    ``before_commit`` runs once the rows are written, before the progress is
    locked and recorded (a writer waits there for the batches before this one).
    """
    end = batch.start + batch.size
    jobs = ImportJob.objects.unscoped()
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                _relax_commit()
                if jobs.filter(pk=job.pk, processed_rows__gte=end).exists():
                    return  # another worker applied this batch
                result = BatchResult(rejections=list(batch.rejections))
                # A second attempt isolates the rows the database refuses, if any.
                apply(job, batch, result, attempt == 2)
                result.rejections.sort(key=lambda rejection: rejection.row_number)
                ImportRejection.objects.bulk_create(result.rejections)
                if before_commit is not None:
                    before_commit()
                locked = jobs.select_for_update().get(pk=job.pk)
                if locked.processed_rows >= end:
                    transaction.set_rollback(True)  # another worker applied it meanwhile
                    return
                locked.processed_rows = end
                locked.created_count += result.created
                locked.updated_count += result.updated
                locked.rejected_count += len(result.rejections)
                locked.heartbeat_at = timezone.now()
                locked.save(
                    update_fields=[
                        "processed_rows",
                        "created_count",
                        "updated_count",
                        "rejected_count",
                        "heartbeat_at",
                    ]
                )
                job.processed_rows = locked.processed_rows
                return
        except (IntegrityError, DataError):
            # A record with the same email/domain appeared meanwhile (look again), or
            # the database refused a value (the second attempt finds which row).
            if attempt == 2:
                raise


def _relax_commit() -> None:
    """Do not wait for the disk at each batch's commit (PostgreSQL).

    Safe for the resume rule: a commit stays atomic, only its durability is
    delayed (by at most three times wal_writer_delay). Should the server crash,
    the last batches are lost together with the progress that records them,
    and a resumed import applies them again: nothing is half-applied or applied
    twice. Whatever acts on a batch's rows (a consumer of its events) commits
    synchronously itself, which flushes the WAL up to and including the batch
    first, since the WAL is written in order.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _rejection(job: ImportJob, number: int, reason: str, raw: list[str]) -> ImportRejection:
    # A NUL character cannot be stored (PostgreSQL): it is shown as U+FFFD in the report.
    values = [cell.replace("\x00", "\ufffd") for cell in raw] if "\x00" in "".join(raw) else raw
    return ImportRejection(
        workspace_id=job.workspace_id, job=job, row_number=number, reason=reason, values=values
    )


def _merge(target: ParsedRow, later: ParsedRow) -> None:
    """Two rows for one record in a batch: the later non-empty values win."""
    target.values.update(later.values)
    target.custom.update(later.custom)
    target.tags = list(dict.fromkeys(target.tags + later.tags))
    target.company_name = later.company_name or target.company_name


def _custom_after(converter_fields: dict[str, CustomField], current: dict, new: dict) -> dict:
    merged = {**current, **new}
    missing = [f.label for key, f in converter_fields.items() if f.required and key not in merged]
    if missing:
        raise RowInvalid(_("%(fields)s is required.") % {"fields": ", ".join(missing)})
    return merged


def _apply_contacts(
    job: ImportJob, batch: Batch, result: BatchResult, isolate: bool = False
) -> None:
    """Apply a batch of contact rows: set-based from a staging table, or in Python (SQLite)."""
    if batch.staged is not None:
        _write_staged(job, batch.staged, result, isolate)
    else:
        _apply_contacts_in_python(job, batch.rows, result)


def _apply_contacts_in_python(job: ImportJob, rows: list[ParsedRow], result: BatchResult) -> None:
    workspace_id = job.workspace_id
    fields = {f.key: f for f in _definitions(workspace_id, CustomFieldObject.CONTACT)}
    by_email: dict[str, ParsedRow] = {}
    unique_rows: list[ParsedRow] = []
    for row in rows:
        email = row.values.get("email")
        if email and email in by_email:
            _merge(by_email[email], row)
            continue
        if email:
            by_email[email] = row
        unique_rows.append(row)
    existing = {
        contact.email: contact
        for contact in Contact.objects.for_workspace(workspace_id).filter(email__in=list(by_email))
    }
    company_ids = _company_ids(
        workspace_id, [r.company_name for r in unique_rows if r.company_name]
    )
    now = timezone.now()
    assigner = Assigner(workspace_id, CustomFieldObject.CONTACT)
    new: list[tuple[ParsedRow, dict[str, Any]]] = []
    changed: list[tuple[ParsedRow, Contact]] = []
    update_fields: set[str] = set()
    for row in unique_rows:
        contact = existing.get(row.values.get("email", ""))
        values = dict(row.values)
        if row.company_name:
            values["company_id"] = company_ids[row.company_name.lower()]
        try:
            if contact is None:
                custom = _custom_after(fields, {}, row.custom)
                if not values.get("owner_id") and assigner.rules:
                    owner = assigner.owner_for(
                        {
                            "lifecycle_stage": "subscriber",
                            "source": "import",
                            **values,
                            "custom": custom,
                        },
                        [*job.tags, *row.tags],
                    )
                    values["owner_id"] = owner.pk if owner else None
                new.append(
                    (
                        row,
                        {
                            "source": "import",
                            **values,
                            "workspace_id": workspace_id,
                            "custom": custom,
                            "created_at": now,
                            "updated_at": now,
                        },
                    )
                )
                continue
            if not job.update_existing:
                raise RowInvalid(_("A contact with this email exists (updating is off)."))
            custom = _custom_after(fields, contact.custom, row.custom)
        except RowInvalid as exc:
            result.rejections.append(_rejection(job, row.number, str(exc), row.raw))
            continue
        _set_changed(contact, {**values, "custom": custom}, update_fields, now)
        changed.append((row, contact))
    assigner.finish()
    created = _write(job, Contact, new, changed, update_fields, "contact_id")
    source = ("crm.import", job.pk)
    properties = {"source": "import", "import": job.file_name}
    record_for_contacts(
        workspace=workspace_id,
        kind="contact.created",
        contact_ids=created,
        actor=job.created_by,
        source=source,
        properties=properties,
    )
    if update_fields:
        record_for_contacts(
            workspace=workspace_id,
            kind="contact.field_changed",
            contact_ids=[contact.pk for _row, contact in changed],
            actor=job.created_by,
            source=source,
            properties={**properties, "fields": sorted(update_fields)},
        )
    result.created += len(created)
    result.updated += len(changed)
    if job.subscribe_list_id:
        _subscribe_to_list(job, [*created, *(contact.pk for _row, contact in changed)])


def _subscribe_to_list(job: ImportJob, contact_ids: list[int]) -> None:
    """Subscribe the batch's contacts to the job's list, set-based, as consent "import"."""
    from patron.audience import lists
    from patron.audience.models import ConsentSource, MailingList

    mailing_list = (
        MailingList.objects.for_workspace(job.workspace_id)
        .select_related("workspace")
        .filter(pk=job.subscribe_list_id)
        .first()
    )
    if mailing_list is None or not contact_ids:
        return  # the list was deleted meanwhile
    lists.subscribe_contacts(
        mailing_list=mailing_list,
        contacts=contact_ids,
        consent=lists.Consent(
            source=ConsentSource.IMPORT,
            consent_text=job.consent_text,
            actor=job.created_by,
            details={"import": job.pk, "file": job.file_name},
        ),
        confirmed=job.subscribe_confirmed and mailing_list.double_opt_in,
    )


def _set_changed(record_: Any, values: dict[str, Any], update_fields: set[str], now: Any) -> None:
    """Set the values that differ on an existing record, noting which fields changed."""
    for name, value in values.items():
        if getattr(record_, name) != value:
            setattr(record_, name, value)
            update_fields.add(name)
    record_.updated_at = now


def _write(
    job: ImportJob,
    model: Any,
    new: list[tuple[ParsedRow, dict[str, Any]]],
    changed: list[tuple[ParsedRow, Any]],
    update_fields: set[str],
    tag_column: str,
) -> list[int]:
    """Insert the new records, update the changed ones, tag both; returns the new ids.

    Set-based (``patron.core.bulk``): the ORM's bulk_create/bulk_update compile
    an expression per value, and building model instances costs more than the
    database's work here. New records are given as {attname: value}; columns
    they leave out get the field's default.
    """
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    defaults = {f.attname: f.get_default() for f in fields}
    ids = bulk.allocate_ids(model, len(new))
    bulk.insert_rows(
        model,
        ["id", *[f.attname for f in fields]],
        [
            [pk, *[values.get(name, defaults[name]) for name in defaults]]
            for pk, (_row, values) in zip(ids, new, strict=True)
        ],
    )
    if changed and update_fields:
        names = [*sorted(update_fields), "updated_at"]
        bulk.update_rows(
            model,
            names,
            [[record_.pk, *[getattr(record_, n) for n in names]] for _row, record_ in changed],
        )
    through = model.tags.through
    _tag(
        job, through, tag_column, [(row, pk) for (row, _v), pk in zip(new, ids, strict=True)], True
    )
    _tag(job, through, tag_column, [(row, record_.pk) for row, record_ in changed], False)
    return ids


def _company_ids(workspace_id: int, names: list[str]) -> dict[str, int]:
    """Company id by lower-cased name, creating the companies that do not exist yet.

    A new company takes the spelling of its first row.
    """
    if not names:
        return {}
    wanted: dict[str, str] = {}
    for name in names:
        wanted.setdefault(name.lower(), name)
    found = dict(
        Company.objects.for_workspace(workspace_id)
        .annotate(lower_name=Lower("name"))
        .filter(lower_name__in=list(wanted))
        .order_by("id")
        .values_list("lower_name", "id")
        .distinct()
    )
    missing = [name for lower, name in wanted.items() if lower not in found]
    if missing:
        now = timezone.now()
        for company in Company.objects.bulk_create(
            Company(workspace_id=workspace_id, name=name, created_at=now, updated_at=now)
            for name in missing
        ):
            found[company.name.lower()] = company.pk
    return found


def _tag(
    job: ImportJob, through: Any, column: str, targets_: list[tuple[ParsedRow, int]], fresh: bool
) -> None:
    """Apply the job's tags and each row's own tags, creating tags as needed.

    ``fresh`` records were just inserted and cannot carry a tag yet: their rows
    are copied in without the conflict check the others need.
    """
    wanted = {(pk, name) for row, pk in targets_ for name in [*job.tags, *row.tags]}
    if not wanted:
        return
    names = {name for _pk, name in wanted}
    Tag.objects.bulk_create(
        [Tag(workspace_id=job.workspace_id, name=name) for name in names], ignore_conflicts=True
    )
    tag_ids = {
        lower: pk
        for lower, pk in Tag.objects.for_workspace(job.workspace_id)
        .annotate(lower_name=Lower("name"))
        .filter(lower_name__in=[n.lower() for n in names])
        .values_list("lower_name", "id")
    }
    bulk.insert_rows(
        through,
        [column, "tag_id"],
        [[pk, tag_ids[name.lower()]] for pk, name in sorted(wanted)],
        ignore_conflicts=not fresh,
    )


def _apply_companies(
    job: ImportJob, batch: Batch, result: BatchResult, isolate: bool = False
) -> None:
    rows = batch.rows
    workspace_id = job.workspace_id
    fields = {f.key: f for f in _definitions(workspace_id, CustomFieldObject.COMPANY)}
    by_domain: dict[str, ParsedRow] = {}
    unique_rows: list[ParsedRow] = []
    for row in rows:
        domain = row.values.get("domain")
        if domain and domain in by_domain:
            _merge(by_domain[domain], row)
            continue
        if domain:
            by_domain[domain] = row
        unique_rows.append(row)
    existing: dict[str, Company] = {}
    for company in (
        Company.objects.for_workspace(workspace_id)
        .filter(domain__in=list(by_domain))
        .order_by("id")
    ):
        existing.setdefault(company.domain, company)
    now = timezone.now()
    new: list[tuple[ParsedRow, dict[str, Any]]] = []
    changed: list[tuple[ParsedRow, Company]] = []
    update_fields: set[str] = set()
    for row in unique_rows:
        company = existing.get(row.values.get("domain", ""))
        values = dict(row.values)
        try:
            if company is None:
                if not values.get("name"):
                    values["name"] = values["domain"]
                custom = _custom_after(fields, {}, row.custom)
                new.append(
                    (
                        row,
                        {
                            **values,
                            "workspace_id": workspace_id,
                            "custom": custom,
                            "created_at": now,
                            "updated_at": now,
                        },
                    )
                )
                continue
            if not job.update_existing:
                raise RowInvalid(_("A company with this domain exists (updating is off)."))
            custom = _custom_after(fields, company.custom, row.custom)
        except RowInvalid as exc:
            result.rejections.append(_rejection(job, row.number, str(exc), row.raw))
            continue
        _set_changed(company, {**values, "custom": custom}, update_fields, now)
        changed.append((row, company))
    created = _write(job, Company, new, changed, update_fields, "company_id")
    result.created += len(created)
    result.updated += len(changed)


# --- The set-based contact writer (PostgreSQL) ----------------------------------------------
#
# A batch's rows are converted and merged in Python, then copied (COPY, text
# format) into a temporary table, and everything else is done by statements over
# that table: matching existing contacts by email, the rows the database stage
# rejects, companies, owners, the new contacts, the updates, their events and
# their tags. No contact is loaded into Python.

# Contact columns an import can set, with their type in the staging table.
STAGED_VALUES = {
    "email": "text",
    "first_name": "text",
    "last_name": "text",
    "phone": "text",
    "mobile_phone": "text",
    "job_title": "text",
    "lifecycle_stage": "text",
    "source": "text",
    "street": "text",
    "postal_code": "text",
    "city": "text",
    "region": "text",
    "country": "text",
    "time_zone": "text",
    "language": "text",
    "birthday": "date",
    "owner_id": "bigint",
}
STAGE_TABLE = "patron_import_stage"
# COPY's text format: backslash, tab, newline and carriage return are escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _uses_staging(job: ImportJob) -> bool:
    return connection.vendor == "postgresql" and job.object_type == CustomFieldObject.CONTACT


@dataclass
class Staged:
    """A batch's contacts, one per email (duplicates merged), as lines for COPY."""

    entries: list[ParsedRow]
    lines: list[str]
    payload: bytes
    columns: list[str]  # the staged value columns, in the order of the lines


class _Stager:
    """Merges a batch's rows by email and writes them as COPY lines (in the reading thread)."""

    def __init__(self, job: ImportJob, converter: RowConverter) -> None:
        mapped = {"owner_id" if t == "owner" else t for _i, t in converter.columns}
        self.columns = [name for name in STAGED_VALUES if name in mapped or name == "owner_id"]

    def stage(self, rows: list[ParsedRow]) -> Staged:
        by_email: dict[str, ParsedRow] = {}
        entries: list[ParsedRow] = []
        for row in rows:
            email = row.values.get("email")
            if email:
                first = by_email.get(email)
                if first is not None:
                    _merge(first, row)
                    continue
                by_email[email] = row
            entries.append(row)
        lines = [self._line(index, row) for index, row in enumerate(entries)]
        return Staged(entries, lines, "".join(lines).encode(), self.columns)

    def _line(self, index: int, row: ParsedRow) -> str:
        values = row.values
        cells = [str(index)]
        for name in self.columns:
            value = values.get(name)
            if value is None:
                cells.append("\\N")
            else:
                cells.append(_copy_text(value) if type(value) is str else str(value))
        company = row.company_name
        cells.append(_copy_text(company.lower()) if company else "\\N")
        custom = row.custom
        cells.append(_copy_text(json.dumps(custom, ensure_ascii=False)) if custom else "{}")
        tags = row.tags
        # Tags never hold ";" or "," (the separators they were split on).
        cells.append(_copy_text(";".join(tags).lower()) if tags else "\\N")
        return "\t".join(cells) + "\n"


def _copy_text(text: str) -> str:
    """``text`` as a field of COPY's text format (most need no escaping)."""
    return text.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(text) else text


def _write_staged(
    job: ImportJob, staged: Staged, result: BatchResult, isolate: bool = False
) -> None:
    """Apply a staged batch; with ``isolate``, reject the rows the database refuses.

    Isolating halves the batch in savepoints until the refused rows are alone:
    they are reported with the database's reason and everything else is applied.
    """
    everything = list(range(len(staged.entries)))
    if not isolate:
        _write_stage(job, staged, everything, staged.payload, result)
        return
    _write_isolating(job, staged, everything, result)


def _write_isolating(
    job: ImportJob, staged: Staged, indexes: list[int], result: BatchResult
) -> None:
    part = BatchResult()
    payload = "".join(staged.lines[i] for i in indexes).encode()
    try:
        with transaction.atomic():
            _write_stage(job, staged, indexes, payload, part)
    except (DataError, IntegrityError) as exc:
        if len(indexes) > 1:
            half = len(indexes) // 2
            _write_isolating(job, staged, indexes[:half], result)
            _write_isolating(job, staged, indexes[half:], result)
            return
        row = staged.entries[indexes[0]]
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        result.rejections.append(
            _rejection(
                job,
                row.number,
                _("The database refused this row: %(error)s") % {"error": reason},
                row.raw,
            )
        )
        return
    result.created += part.created
    result.updated += part.updated
    result.rejections.extend(part.rejections)


def _write_stage(
    job: ImportJob, staged: Staged, indexes: list[int], payload: bytes, result: BatchResult
) -> None:
    if not indexes:
        return
    workspace_id = job.workspace_id
    entries = staged.entries
    columns = staged.columns
    table = connection.ops.quote_name(Contact._meta.db_table)
    stage = STAGE_TABLE
    copied_table = f"{STAGE_TABLE}_copied"
    staged_columns = ", ".join(f"{name} {STAGED_VALUES[name]}" for name in columns)
    copied = ", ".join(["idx", *columns, "company_key", "custom", "tag_keys"])
    now = timezone.now()
    # Companies by name, created when missing (before the rows are matched, as the
    # company of a row is part of what it sets).
    company_ids = _company_ids(
        workspace_id, [entries[i].company_name for i in indexes if entries[i].company_name]
    )
    _give_the_planner_statistics()
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE {copied_table} (idx integer NOT NULL, {staged_columns}, "
            "company_key text, custom jsonb NOT NULL, tag_keys text) ON COMMIT DROP"
        )
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(f"COPY {copied_table} ({copied}) FROM STDIN") as copy,
        ):
            copy.write(payload)
        # One pass gives each row its contact: the existing one with this email, looked
        # up row by row in the unique index on lower(email) (a join could hash the whole
        # table for each batch), else a new id from the sequence. The existing
        # contact's values come along, for the checks and the comparison below.
        compared = [*columns, "company_id"]
        old_values = ", ".join(f"c.{name} AS old_{name}" for name in [*compared, "custom"])
        if "email" in columns:
            match = (
                f"LEFT JOIN LATERAL (SELECT * FROM {table} AS c WHERE c.workspace_id = %s "  # noqa: S608
                "AND NOT c.email = '' AND lower(c.email) = lower(r.email) LIMIT 1) AS c ON true"
            )
            match_params: list[Any] = [workspace_id]
        else:
            match = f"LEFT JOIN {table} AS c ON false"
            match_params = []
        cursor.execute(
            f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS "  # noqa: S608
            "SELECT r.*, m.id AS company_id, c.id IS NULL AS is_new, "
            f"COALESCE(c.id, nextval(%s::regclass)) AS contact_id, {old_values} "
            f"FROM {copied_table} AS r {match} "
            "LEFT JOIN unnest(%s::text[], %s::bigint[]) AS m(key, id) ON m.key = r.company_key",
            [
                _contact_sequence(),
                *match_params,
                list(company_ids),
                list(company_ids.values()),
            ],
        )

        # Rows the database stage rejects: updating is off, or a required field is missing.
        rejected: dict[int, str] = {}
        if not job.update_existing:
            cursor.execute(
                f"DELETE FROM {stage} WHERE NOT is_new RETURNING idx"  # noqa: S608
            )
            message = _("A contact with this email exists (updating is off).")
            rejected.update((index, message) for (index,) in cursor.fetchall())
        definitions = _definitions(workspace_id, CustomFieldObject.CONTACT)
        required = [f for f in definitions if f.required]
        if required:
            cursor.execute(
                f"WITH checked AS (SELECT s.idx, ARRAY("  # noqa: S608
                "SELECT r.key FROM unnest(%s::text[]) WITH ORDINALITY AS r(key, position) "
                "WHERE NOT ((COALESCE(s.old_custom, '{}'::jsonb) || s.custom) ? r.key) "
                "ORDER BY r.position) AS missing "
                f"FROM {stage} AS s) "
                f"DELETE FROM {stage} AS s USING checked "
                "WHERE s.idx = checked.idx AND cardinality(checked.missing) > 0 "
                "RETURNING s.idx, checked.missing",
                [[f.key for f in required]],
            )
            labels = {f.key: f.label for f in required}
            for index, missing in cursor.fetchall():
                rejected[index] = _("%(fields)s is required.") % {
                    "fields": ", ".join(labels[key] for key in missing)
                }
        for index, reason in rejected.items():
            row = entries[index]
            result.rejections.append(_rejection(job, row.number, reason, row.raw))
        kept = [i for i in indexes if i not in rejected] if rejected else indexes

        # Owners of new contacts from the assignment rules, in row order.
        assigner = Assigner(workspace_id, CustomFieldObject.CONTACT)
        if assigner.rules:
            cursor.execute(
                f"SELECT idx FROM {stage} "  # noqa: S608
                "WHERE is_new AND owner_id IS NULL ORDER BY idx"
            )
            owners: list[tuple[int, int]] = []
            for (index,) in cursor.fetchall():
                row = entries[index]
                values = dict(row.values)
                if row.company_name:
                    values["company_id"] = company_ids[row.company_name.lower()]
                owner = assigner.owner_for(
                    {
                        "lifecycle_stage": "subscriber",
                        "source": "import",
                        **values,
                        "custom": dict(row.custom),
                    },
                    [*job.tags, *row.tags],
                )
                if owner is not None:
                    owners.append((index, owner.pk))
            if owners:
                cursor.execute(
                    f"UPDATE {stage} AS s SET owner_id = m.owner "  # noqa: S608
                    "FROM unnest(%s::integer[], %s::bigint[]) AS m(idx, owner) "
                    "WHERE s.idx = m.idx",
                    [[i for i, _o in owners], [o for _i, o in owners]],
                )
        assigner.finish()

        # New contacts: one INSERT … SELECT, in the order of their email (their ids keep
        # the file's order): the two email indexes, the largest, then take the batch's
        # entries one leaf page after the other instead of at random places.
        cursor.execute(f"SELECT count(*) FROM {stage} WHERE is_new")  # noqa: S608
        created = cursor.fetchone()[0]
        if created:
            names, expressions, params = _insert_columns(columns, workspace_id, now)
            order = "lower(s.email)" if "email" in columns else "s.idx"
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(names)}) "  # noqa: S608
                f"SELECT {', '.join(expressions)} FROM {stage} AS s "
                f"WHERE s.is_new ORDER BY {order}",
                params,
            )

        # Existing contacts: the fields that differ (for the batch's event), then one UPDATE
        # (its contacts found by id in the primary key, whatever the planner knows).
        checks = [
            f"coalesce(bool_or(s.{name} IS NOT NULL AND s.{name} IS DISTINCT FROM s.old_{name}), "
            "false)"
            for name in compared
        ]
        checks.append(
            "coalesce(bool_or(s.old_custom || s.custom IS DISTINCT FROM s.old_custom), false)"
        )
        cursor.execute(
            f"SELECT count(*), {', '.join(checks)} FROM {stage} AS s WHERE NOT s.is_new"  # noqa: S608
        )
        count, *differs = cursor.fetchone()
        update_fields = sorted(
            name for name, differ in zip([*compared, "custom"], differs, strict=True) if differ
        )
        if update_fields:
            assignments = [
                "custom = c.custom || s.custom"
                if name == "custom"
                else f"{name} = COALESCE(s.{name}, c.{name})"
                for name in update_fields
            ]
            cursor.execute(
                f"UPDATE {table} AS c SET {', '.join(assignments)}, updated_at = %s "  # noqa: S608
                f"FROM {stage} AS s WHERE c.id = s.contact_id AND NOT s.is_new AND c.id = ANY("
                f"ARRAY(SELECT contact_id FROM {stage} WHERE NOT is_new))",
                [now],
            )

        # Tags: the job's and each row's own, created as needed.
        names_wanted = list(job.tags)
        for i in kept:
            names_wanted.extend(entries[i].tags)
        if names_wanted:
            tag_ids = _tag_ids(job, set(names_wanted))
            links = (
                "INSERT INTO crm_contact_tags (contact_id, tag_id) "  # noqa: S608
                "SELECT DISTINCT s.contact_id, m.id "
                f"FROM {stage} AS s CROSS JOIN LATERAL unnest("
                "COALESCE(string_to_array(s.tag_keys, ';'), '{}'::text[]) || %s::text[]) AS t(key) "
                "JOIN unnest(%s::text[], %s::bigint[]) AS m(key, id) ON m.key = t.key "
                "WHERE s.is_new = %s"
            )
            params = [[t.lower() for t in job.tags], list(tag_ids), list(tag_ids.values())]
            # A new contact has no tag yet: its links go in without the conflict check
            # (a speculative insertion per link) that an existing contact's need.
            if created:
                cursor.execute(links, [*params, True])
            if count:
                cursor.execute(f"{links} ON CONFLICT DO NOTHING", [*params, False])

        # One event per created contact, one per updated contact when anything changed.
        source = ("crm.import", job.pk)
        properties = {"source": "import", "import": job.file_name}
        if created:
            record_for_selected_contacts(
                workspace=workspace_id,
                kind="contact.created",
                contacts_sql=f"SELECT contact_id FROM {stage} WHERE is_new ORDER BY idx",  # noqa: S608
                actor=job.created_by,
                source=source,
                properties=properties,
            )
        if update_fields:
            record_for_selected_contacts(
                workspace=workspace_id,
                kind="contact.field_changed",
                contacts_sql=f"SELECT contact_id FROM {stage} WHERE NOT is_new ORDER BY idx",  # noqa: S608
                actor=job.created_by,
                source=source,
                properties={**properties, "fields": update_fields},
            )
        if job.subscribe_list_id:
            cursor.execute(f"SELECT contact_id FROM {stage} ORDER BY idx")  # noqa: S608
            _subscribe_to_list(job, [contact_id for (contact_id,) in cursor.fetchall()])
        cursor.execute(f"DROP TABLE {stage}, {copied_table}")
    result.created += created
    result.updated += count


def _contact_sequence() -> str:
    """The contact ids' sequence, named once per batch rather than looked up per row."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Contact._meta.db_table])
        return cursor.fetchone()[0]


def _give_the_planner_statistics() -> None:
    """ANALYZE the contacts if the planner knows nothing of them yet (PostgreSQL).

    A table that has pages but no rows counted, because neither ANALYZE nor
    autovacuum has been through, or because they went through while its only
    rows were still uncommitted (another batch of this import, say), is taken
    for one of a single row: the planner then finds the existing contacts
    through any index on the workspace instead of the one on email, a scan of
    the workspace's contacts for each row. Once rows are counted, the planner
    scales the statistics with the table's size, so this runs once or twice.
    """
    table = Contact._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples <= 0 AND pg_relation_size(oid) > 0 FROM pg_class "
            "WHERE oid = %s::regclass",
            [table],
        )
        if cursor.fetchone()[0]:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def _insert_columns(
    staged: list[str], workspace_id: int, now: datetime
) -> tuple[list[str], list[str], list[Any]]:
    """Columns of a new contact and the expression giving each from the staging table.

    A staged value left empty, and every column the import does not set, gets
    the field's default, as a contact created any other way would.
    """
    names: list[str] = ["id"]
    expressions: list[str] = ["s.contact_id"]
    params: list[Any] = []
    for model_field in Contact._meta.concrete_fields:
        if model_field.primary_key:
            continue
        attname = model_field.attname
        names.append(connection.ops.quote_name(model_field.column or attname))
        db_type = model_field.db_type(connection)
        if attname == "workspace_id":
            expressions.append("%s")
            params.append(workspace_id)
        elif attname in {"created_at", "updated_at"}:
            expressions.append("%s")
            params.append(now)
        elif attname == "custom":
            expressions.append("s.custom")
        elif attname == "company_id":
            expressions.append("s.company_id")
        else:
            default = "import" if attname == "source" else model_field.get_default()
            prepared = model_field.get_db_prep_save(default, connection)
            if attname in staged:
                expressions.append(f"COALESCE(s.{attname}, %s::{db_type})")
            else:
                expressions.append(f"%s::{db_type}")
            params.append(prepared)
    return names, expressions, params


def _tag_ids(job: ImportJob, names: set[str]) -> dict[str, int]:
    """Tag id by lower-cased name, creating the tags that do not exist yet."""
    Tag.objects.bulk_create(
        [Tag(workspace_id=job.workspace_id, name=name) for name in names], ignore_conflicts=True
    )
    return {
        lower: pk
        for lower, pk in Tag.objects.for_workspace(job.workspace_id)
        .annotate(lower_name=Lower("name"))
        .filter(lower_name__in=[n.lower() for n in names])
        .values_list("lower_name", "id")
    }


def resume_stalled_imports(now: Any = None) -> int:
    """Hand imports whose worker stopped answering to a new worker."""
    now = now or timezone.now()
    stalled = list(
        ImportJob.objects.unscoped()
        .filter(status=ImportStatus.RUNNING, heartbeat_at__lt=now - STALLED_AFTER)
        .values_list("pk", flat=True)
    )
    from patron.crm.tasks import run_import_job

    for job_id in stalled:
        ImportJob.objects.unscoped().filter(pk=job_id).update(heartbeat_at=now)
        run_import_job.enqueue(job_id)
    return len(stalled)


def rejection_rows(job: ImportJob) -> Iterator[list[str]]:
    """The rejected rows as they were in the file, with the row number and the reason."""
    yield [_("Row"), _("Problem"), *job.headers]
    rejections = (
        ImportRejection.objects.for_workspace(job.workspace_id)
        .filter(job=job)
        .order_by("row_number")
        .values_list("row_number", "reason", "values")
    )
    for number, reason, values in rejections.iterator(chunk_size=2000):
        yield [str(number), reason, *values]
