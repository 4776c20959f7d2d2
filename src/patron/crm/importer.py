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
import re
import zipfile
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.conf.locale import LANG_INFO
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from patron.activity.services import record_for_contacts
from patron.core import bulk
from patron.core.models import User, Workspace
from patron.crm import custom_fields
from patron.crm.assignment import Assigner
from patron.crm.models import (
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
BATCH_ROWS = 2000
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
        if any(cell.strip() for cell in row):
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
        total = sum(1 for row in reader if any(cell.strip() for cell in row))
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


@dataclass
class ParsedRow:
    number: int
    raw: list[str]
    values: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    company_name: str = ""


class RowConverter:
    """Turns a CSV row into field values, raising RowInvalid with every problem named."""

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

    def convert(self, number: int, raw: list[str]) -> ParsedRow:
        row = ParsedRow(number=number, raw=raw)
        problems: list[str] = []
        for index, target in self.columns:
            cell = raw[index].strip() if index < len(raw) else ""
            if not cell:
                continue
            try:
                self._put(row, target, cell)
            except (ValueError, ValidationError) as exc:
                message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
                problems.append(f"{self.labels[target]}: {message}")
        if not problems:
            if self.job.object_type == CustomFieldObject.CONTACT:
                if not (
                    row.values.get("email")
                    or row.values.get("first_name")
                    or row.values.get("last_name")
                ):
                    problems.append(_("Give at least a name or an email address."))
            elif not (row.values.get("name") or row.values.get("domain")):
                problems.append(_("Give a name or a domain."))
        if problems:
            raise RowInvalid("; ".join(problems))
        return row

    def _put(self, row: ParsedRow, target: str, cell: str) -> None:
        if target.startswith(CUSTOM_PREFIX):
            key = target.removeprefix(CUSTOM_PREFIX)
            row.custom[key] = custom_fields.normalise(self.custom[key], cell)
            return
        if target == TAGS:
            row.tags = [t.strip()[:60] for t in re.split(r"[;,]", cell) if t.strip()]
            return
        limit = TEXT_LIMITS.get(target)
        if limit and len(cell) > limit:
            raise ValueError(_("Keep it to %(limit)d characters.") % {"limit": limit})
        if target == "company":
            row.company_name = cell
        elif target == "email":
            email = cell.lower()
            validate_email(email)
            row.values["email"] = email
        elif target == "domain":
            domain = cell.lower().removeprefix("https://").removeprefix("http://")
            domain = domain.split("/")[0].removeprefix("www.")
            if "." not in domain or " " in domain:
                raise ValueError(_("Enter a domain such as example.com."))
            row.values["domain"] = domain
        elif target == "lifecycle_stage":
            stage = self.stages.get(cell.lower())
            if stage is None:
                raise ValueError(
                    _("Use one of: %(stages)s.") % {"stages": ", ".join(LifecycleStage.values)}
                )
            row.values["lifecycle_stage"] = stage
        elif target == "owner":
            owner = self.owners.get(cell.lower())
            if owner is None:
                raise ValueError(_("No member of the workspace has this email."))
            row.values["owner_id"] = owner
        elif target == "birthday":
            birthday = parse_date(cell)
            if birthday is None:
                raise ValueError(_("Enter a date as YYYY-MM-DD."))
            row.values["birthday"] = birthday
        elif target == "time_zone":
            if cell not in self.zones:
                raise ValueError(_("Choose a time zone such as Europe/Berlin."))
            row.values["time_zone"] = cell
        elif target == "language":
            if cell.lower() not in LANG_INFO:
                raise ValueError(_("Use a language code such as en, de or pt-br."))
            row.values["language"] = cell.lower()
        elif target == "size":
            size = custom_fields._number(cell, 0)
            if size < 0:
                raise ValueError(_("Enter a number of at least 0."))
            row.values["size"] = int(size)
        elif target == "annual_revenue":
            row.values["annual_revenue"] = custom_fields._number(cell, 2)
        else:
            row.values[target] = cell


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
    """Apply the job's rows in batches from where it stands; safe to call again."""
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
    apply = _apply_contacts if job.object_type == CustomFieldObject.CONTACT else _apply_companies
    try:
        batch: list[tuple[int, list[str]]] = []
        start = 0
        for position, raw in enumerate(read_rows(job)):
            if position < job.processed_rows:
                continue  # applied before a restart
            if not batch:
                start = position
            batch.append((position + 2, raw))  # row 1 is the header
            if len(batch) >= BATCH_ROWS:
                _run_batch(job, converter, apply, start, batch)
                batch = []
        if batch:
            _run_batch(job, converter, apply, start, batch)
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
class BatchResult:
    created: int = 0
    updated: int = 0
    rejections: list[ImportRejection] = field(default_factory=list)


def _run_batch(
    job: ImportJob,
    converter: RowConverter,
    apply: Any,
    start: int,
    batch: list[tuple[int, list[str]]],
) -> None:
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                _relax_commit()
                locked = ImportJob.objects.unscoped().select_for_update().get(pk=job.pk)
                if locked.processed_rows >= start + len(batch):
                    return  # another worker applied this batch
                result = BatchResult()
                rows: list[ParsedRow] = []
                for number, raw in batch:
                    try:
                        rows.append(converter.convert(number, raw))
                    except RowInvalid as exc:
                        result.rejections.append(_rejection(job, number, str(exc), raw))
                apply(job, rows, result)
                ImportRejection.objects.bulk_create(result.rejections)
                locked.processed_rows = start + len(batch)
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
        except IntegrityError:
            # A record with the same email/domain appeared meanwhile: look again.
            if attempt == 2:
                raise


def _relax_commit() -> None:
    """Do not wait for the disk at each batch's commit (PostgreSQL).

    Safe for the resume rule: should the server crash, the last batches are
    lost together with the progress that records them, and a resumed import
    applies them again. Nothing is half-applied.
    """
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _rejection(job: ImportJob, number: int, reason: str, raw: list[str]) -> ImportRejection:
    return ImportRejection(
        workspace_id=job.workspace_id, job=job, row_number=number, reason=reason, values=raw
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


def _apply_contacts(job: ImportJob, rows: list[ParsedRow], result: BatchResult) -> None:
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


def _apply_companies(job: ImportJob, rows: list[ParsedRow], result: BatchResult) -> None:
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
