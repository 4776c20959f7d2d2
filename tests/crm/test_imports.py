"""CSV import (upload, mapping, the batch engine, rejected rows) and CSV export."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from patron.activity.models import Event
from patron.core.models import AuditEntry
from patron.core.roles import Role
from patron.crm import importer, services
from patron.crm.exporter import safe_cell
from patron.crm.models import Company, Contact, ImportJob, ImportStatus, Tag
from tests.conftest import member
from tests.factories import PASSWORD, ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

CONTACTS_CSV = """Email,First name,Last name,Company,Tier,Seats,Owner,Tags
ana@example.com,Ana,Silva,Kopi Co,Gold,10,owner@acme.example,vip; newsletter
ben@example.com,Ben,Ho,kopi co,Bronze,2,,
not-an-email,Cy,,,,,,
dee@example.com,Dee,,,Platinum,,,
eve@example.com,Eve,,,,many,nobody@example.com,
ANA@example.com,,,,,12,,late
=HYPERLINK(""http://evil.example""),Mallory,,,,,,
"""


def upload(text: str, name: str = "contacts.csv", encoding: str = "utf-8") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(encoding), content_type="text/csv")


@pytest.fixture
def fields(workspace):
    services.create_custom_field(
        workspace=workspace,
        object_type="contact",
        label="Tier",
        field_type="single_select",
        options=["Bronze", "Silver", "Gold"],
    )
    services.create_custom_field(
        workspace=workspace, object_type="contact", label="Seats", field_type="number"
    )


def test_upload_reads_the_header_counts_rows_and_suggests_a_mapping(workspace, owner, fields):
    job = importer.store_upload(
        workspace=workspace, object_type="contact", upload=upload(CONTACTS_CSV), actor=owner
    )
    assert job.headers[:3] == ["Email", "First name", "Last name"]
    assert job.total_rows == 7 and job.delimiter == "," and job.status == ImportStatus.MAPPING
    assert job.mapping == {
        "0": "email",
        "1": "first_name",
        "2": "last_name",
        "3": "company",
        "4": "custom.tier",
        "5": "custom.seats",
        "6": "owner",
        "7": "tags",
    }


def test_semicolons_and_windows_encoding_are_recognised(workspace, owner):
    text = "E-Mail;Vorname;Stadt\njürgen@example.de;Jürgen;Köln\n"
    job = importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=upload(text, encoding="cp1252"),
        actor=owner,
    )
    assert (job.encoding, job.delimiter) == ("cp1252", ";")
    assert list(importer.read_rows(job)) == [["jürgen@example.de", "Jürgen", "Köln"]]


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ("", "a.csv", "empty"),
        ("Email,Name\n", "a.csv", "no data rows"),
        ("Email\nx@example.com\n", "a.ods", "Save the spreadsheet as CSV or Excel"),
        ("\x00\x01binary", "a.csv", "not a CSV"),
    ],
)
def test_unusable_files_are_refused_with_a_reason(workspace, owner, text, name, message):
    with pytest.raises(importer.ImportInvalid, match=message):
        importer.store_upload(
            workspace=workspace, object_type="contact", upload=upload(text, name), actor=owner
        )
    assert not ImportJob.objects.for_workspace(workspace).exists()


def test_mapping_is_checked(workspace, owner):
    job = importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=upload("A,B,C\n1,2,3\n"),
        actor=owner,
    )
    with pytest.raises(importer.ImportInvalid, match="both go to"):
        importer.check_mapping(job, {"0": "email", "1": "email"})
    with pytest.raises(importer.ImportInvalid, match="Map a column to Email"):
        importer.check_mapping(job, {"0": "city"})
    with pytest.raises(importer.ImportInvalid, match="unknown field"):
        importer.check_mapping(job, {"0": "password"})


def run(job, **options):
    importer.start_import(
        job=job,
        mapping=options.pop("mapping", job.mapping),
        tags=options.pop("tags", []),
        update_existing=options.pop("update_existing", True),
    )
    return importer.run_import(job.pk)


def test_an_import_creates_updates_and_reports_every_rejected_row(
    workspace, owner, fields, django_capture_on_commit_callbacks
):
    existing = ContactFactory(workspace=workspace, email="ben@example.com", first_name="Benny")
    job = importer.store_upload(
        workspace=workspace, object_type="contact", upload=upload(CONTACTS_CSV), actor=owner
    )
    with django_capture_on_commit_callbacks(execute=False):
        job = run(job, tags=["spring-fair"])
    assert job.status == ImportStatus.DONE
    assert (job.processed_rows, job.created_count, job.updated_count, job.rejected_count) == (
        7,
        1,
        1,
        4,
    )
    ana = Contact.objects.for_workspace(workspace).get(email="ana@example.com")
    # The second "ANA@" row of the file was merged into the first: later values win.
    assert ana.custom == {"tier": "Gold", "seats": 12}
    assert ana.owner == owner and ana.company.name == "Kopi Co" and ana.source == "import"
    assert sorted(ana.tags.values_list("name", flat=True)) == [
        "late",
        "newsletter",
        "spring-fair",
        "vip",
    ]
    existing.refresh_from_db()
    assert existing.first_name == "Ben"  # updated by email
    assert existing.company == ana.company  # "kopi co" is the same company
    assert Company.objects.for_workspace(workspace).count() == 1
    reasons = {r.row_number: r.reason for r in job.rejections.all()}  # row numbers as in the file
    assert set(reasons) == {4, 5, 6, 8}
    assert "Email" in reasons[4] and "valid email" in reasons[4]
    assert "Choose one of" in reasons[5]
    assert "Seats: Enter a number" in reasons[6] and "No member" in reasons[6]
    assert Event.objects.for_workspace(workspace).filter(kind="contact.created").count() == 1
    changed = Event.objects.for_workspace(workspace).get(kind="contact.field_changed")
    assert changed.contact_id == existing.pk and "first_name" in changed.properties["fields"]

    report = list(csv.reader(io.StringIO("".join(importer_report(job)))))
    assert report[0][:3] == ["Row", "Problem", "Email"]
    assert [line[0] for line in report[1:]] == ["4", "5", "6", "8"]
    # A formula in a rejected cell is neutralised before it reaches a spreadsheet.
    assert report[4][2].startswith("'=HYPERLINK")


def importer_report(job):
    from patron.crm.exporter import csv_lines

    return csv_lines(importer.rejection_rows(job))


def test_an_import_stopped_midway_resumes_without_duplicates(
    workspace, owner, monkeypatch, django_capture_on_commit_callbacks
):
    rows = "".join(f"p{i}@example.com,P{i}\n" for i in range(7))
    job = importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=upload("Email,First name\n" + rows),
        actor=owner,
    )
    monkeypatch.setattr(importer, "BATCH_ROWS", 3)
    real_apply = importer._apply_contacts
    calls = {"n": 0}

    def crash_on_second_batch(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker lost")
        return real_apply(*args)

    monkeypatch.setattr(importer, "_apply_contacts", crash_on_second_batch)
    with django_capture_on_commit_callbacks(execute=False), pytest.raises(RuntimeError):
        run(job)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and job.processed_rows == 3
    assert "worker lost" in job.error
    # The worker comes back (a retry, or the stalled-import sweep).
    job.status = ImportStatus.RUNNING
    job.save()
    job = importer.run_import(job.pk)
    assert job.status == ImportStatus.DONE and job.processed_rows == 7
    assert Contact.objects.for_workspace(workspace).count() == 7
    assert Event.objects.for_workspace(workspace).filter(kind="contact.created").count() == 7


def test_stalled_imports_are_handed_to_a_new_worker(workspace, owner):
    from datetime import timedelta

    from django.utils import timezone

    job = importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=upload("Email\na@example.com\n"),
        actor=owner,
    )
    ImportJob.objects.for_workspace(workspace).filter(pk=job.pk).update(
        status=ImportStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=10)
    )
    assert importer.resume_stalled_imports() == 1  # the immediate backend runs it here
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert Contact.objects.for_workspace(workspace).filter(email="a@example.com").exists()


def test_existing_records_are_left_alone_when_updating_is_off(
    workspace, owner, django_capture_on_commit_callbacks
):
    ContactFactory(workspace=workspace, email="a@example.com", first_name="Old")
    job = importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=upload("Email,First name\na@example.com,New\nb@example.com,B\n"),
        actor=owner,
    )
    with django_capture_on_commit_callbacks(execute=False):
        job = run(job, update_existing=False)
    assert (job.created_count, job.updated_count, job.rejected_count) == (1, 0, 1)
    assert "updating is off" in job.rejections.get().reason
    assert Contact.objects.for_workspace(workspace).get(email="a@example.com").first_name == "Old"


def test_companies_are_upserted_by_domain(workspace, owner, django_capture_on_commit_callbacks):
    Company.objects.create(workspace=workspace, name="Old name", domain="kopi.example")
    text = (
        "Name,Website,Employees,Tags\n"
        "Kopi,https://www.kopi.example/about,12,coffee\n"
        "Teh,teh.example,-3,\n"
        ",bare.example,,\n"
    )
    job = importer.store_upload(
        workspace=workspace, object_type="company", upload=upload(text), actor=owner
    )
    assert job.mapping == {"0": "name", "1": "domain", "2": "size", "3": "tags"}
    with django_capture_on_commit_callbacks(execute=False):
        job = run(job)
    assert (job.created_count, job.updated_count, job.rejected_count) == (1, 1, 1)
    kopi = Company.objects.for_workspace(workspace).get(domain="kopi.example")
    assert kopi.name == "Kopi" and kopi.size == 12
    assert list(kopi.tags.values_list("name", flat=True)) == ["coffee"]
    assert (
        Company.objects.for_workspace(workspace).get(domain="bare.example").name == "bare.example"
    )


def test_the_column_mapping_is_remembered(workspace, owner, django_capture_on_commit_callbacks):
    first = importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=upload("Mail,Given,Stuff\na@example.com,A,x\n"),
        actor=owner,
    )
    with django_capture_on_commit_callbacks(execute=False):
        run(first, mapping={"0": "email", "1": "first_name", "2": "source"})
    second = importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=upload("Stuff,Mail\ny,b@example.com\n"),
        actor=owner,
    )
    assert second.mapping == {"0": "source", "1": "email"}


# --- Pages ------------------------------------------------------------------------


def test_import_pages_walk_from_upload_to_the_result(
    logged_in, workspace, fields, django_capture_on_commit_callbacks
):
    response = logged_in.post(
        "/imports/new/", {"object_type": "contact", "file": upload(CONTACTS_CSV)}
    )
    job = ImportJob.objects.for_workspace(workspace).get()
    assert response.status_code == 302 and response.url == f"/imports/{job.pk}/"
    page = logged_in.get(f"/imports/{job.pk}/").content.decode()
    assert "Map the columns of contacts.csv" in page and "Row 2" in page
    assert "Row 4" in page and "valid email" in page  # the preview shows problems too
    clash = {f"column_{i}": target for i, target in job.mapping.items()}
    clash["column_1"] = "email"
    refused = logged_in.post(f"/imports/{job.pk}/", {**clash, "start": "1"})
    assert "both go to Email" in refused.content.decode()
    form = {f"column_{i}": target for i, target in job.mapping.items()}
    with django_capture_on_commit_callbacks(execute=True):
        logged_in.post(
            f"/imports/{job.pk}/",
            {**form, "tags": "fair, 2026", "update_existing": "on", "start": "1"},
        )
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.created_count == 2
    assert {"fair", "2026"} <= set(
        Tag.objects.for_workspace(workspace).values_list("name", flat=True)
    )
    result = logged_in.get(f"/imports/{job.pk}/").content.decode()
    assert "Download the rejected rows" in result and "Row 4" in result
    download = logged_in.get(f"/imports/{job.pk}/rejected.csv")
    assert download["Content-Disposition"].startswith("attachment")
    assert "not-an-email" in b"".join(download.streaming_content).decode()
    assert "contacts.csv" in logged_in.get("/imports/").content.decode()


def test_bad_uploads_say_what_is_wrong(logged_in):
    response = logged_in.post(
        "/imports/new/", {"object_type": "contact", "file": upload("", "empty.csv")}
    )
    assert response.status_code == 200 and "file is empty" in response.content.decode()


def test_imports_of_another_workspace_are_out_of_reach(logged_in, owner):
    other = WorkspaceFactory()
    job = importer.store_upload(
        workspace=other, object_type="contact", upload=upload("Email\na@example.com\n"), actor=None
    )
    assert logged_in.get(f"/imports/{job.pk}/").status_code == 404
    assert logged_in.get(f"/imports/{job.pk}/rejected.csv").status_code == 404


# --- Export -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+49 30 1234", "'+49 30 1234"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-x", "'-x"),
        ("plain", "plain"),
        (-5, "-5"),
        (None, ""),
        (["a", "b"], "a; b"),
    ],
)
def test_spreadsheet_formulas_are_neutralised(value, cell):
    assert safe_cell(value) == cell


def test_export_follows_the_list_filters_and_is_audited(logged_in, workspace, fields):
    services.create_contact(
        workspace=workspace,
        first_name="=cmd|' /C calc'!A0",
        email="a@example.com",
        lifecycle_stage="customer",
        custom={"tier": "Gold"},
    )
    services.create_contact(workspace=workspace, first_name="Lead", email="b@example.com")
    response = logged_in.get("/contacts/export/", {"stage": "customer"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header, *data = rows
    assert "custom.tier" in header and len(data) == 1
    assert data[0][header.index("first_name")] == "'=cmd|' /C calc'!A0"
    assert data[0][header.index("custom.tier")] == "Gold"
    entry = AuditEntry.objects.get(action="data.exported")
    assert entry.target == "contacts" and entry.data["rows"] == 1
    companies = logged_in.get("/companies/export/")
    assert b"".join(companies.streaming_content).decode().startswith("id,name,domain")


def test_export_needs_the_export_permission(client, workspace):
    user = member(workspace, Role.SUPPORT)
    client.login(email=user.email, password=PASSWORD)
    assert client.get("/contacts/export/").status_code == 403


def test_excel_files_are_read_from_their_first_sheet(
    workspace, owner, django_capture_on_commit_callbacks
):
    from datetime import date

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Email", "First name", "Birthday", "Seats"])
    sheet.append(["ana@example.com", "Ana", date(1990, 5, 17), 12])
    sheet.append(["ben@example.com", "Ben", None, 3.0])
    buffer = io.BytesIO()
    workbook.save(buffer)
    job = importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=SimpleUploadedFile("people.xlsx", buffer.getvalue()),
        actor=owner,
    )
    assert job.headers == ["Email", "First name", "Birthday", "Seats"]
    assert list(importer.read_rows(job)) == [
        ["ana@example.com", "Ana", "1990-05-17", "12"],
        ["ben@example.com", "Ben", "", "3"],
    ]
    with django_capture_on_commit_callbacks(execute=False):
        job = run(job, mapping={"0": "email", "1": "first_name", "2": "birthday", "3": ""})
    assert job.created_count == 2
    assert Contact.objects.for_workspace(workspace).get(first_name="Ana").birthday == date(
        1990, 5, 17
    )
    with pytest.raises(importer.ImportInvalid, match="not an Excel"):
        importer.store_upload(
            workspace=workspace,
            object_type="contact",
            upload=SimpleUploadedFile("fake.xlsx", b"Email\\nx@example.com\\n"),
            actor=owner,
        )


# --- The batch engine: staging table, database stage, writer thread -------------------


def test_a_required_custom_field_is_checked_against_what_the_contact_has(
    workspace, owner, django_capture_on_commit_callbacks
):
    services.create_custom_field(
        workspace=workspace,
        object_type="contact",
        label="Region code",
        field_type="text",
        required=True,
    )
    ContactFactory(workspace=workspace, email="kept@example.com", custom={"region_code": "JK"})
    job = importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=upload(
            "Email,Region code\nnew@example.com,BD\nkept@example.com,\nbare@example.com,\n"
        ),
        actor=owner,
    )
    with django_capture_on_commit_callbacks(execute=False):
        job = run(job)
    # The existing contact keeps its region code; a new one without it is refused.
    assert (job.created_count, job.updated_count, job.rejected_count) == (1, 1, 1)
    rejection = job.rejections.get()
    assert rejection.row_number == 4 and rejection.reason == "Region code is required."
    assert rejection.values == ["bare@example.com", ""]
    assert not Contact.objects.for_workspace(workspace).filter(email="bare@example.com").exists()


def test_a_row_the_database_refuses_is_rejected_and_the_rest_of_its_batch_applied(
    workspace, owner, settings, django_capture_on_commit_callbacks
):
    if not settings.IS_POSTGRES:
        pytest.skip("the staging table and its database stage are PostgreSQL's")
    # PostgreSQL text cannot hold a NUL character: only the database finds out (the
    # upload looks for one at the start of the file only, so the filler rows).
    filler = "".join(f"filler{i}@example.com,F{i},Town\n" for i in range(200))
    text = "Email,First name,City\n" + filler
    text += "a@example.com,A,Jakarta\nb@example.com,B,Ba\x00d\nc@example.com,C,Hanoi\n"
    job = importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=upload(text),
        actor=owner,
    )
    with django_capture_on_commit_callbacks(execute=False):
        job = run(job, tags=["fair"])
    assert job.status == ImportStatus.DONE
    assert (job.created_count, job.updated_count, job.rejected_count) == (202, 0, 1)
    rejection = job.rejections.get()
    assert rejection.row_number == 203 and rejection.values == ["b@example.com", "B", "Ba\ufffdd"]
    assert rejection.reason.startswith("The database refused this row:")
    contacts = Contact.objects.for_workspace(workspace)
    assert contacts.count() == 202 and not contacts.filter(email="b@example.com").exists()
    assert Event.objects.for_workspace(workspace).filter(kind="contact.created").count() == 202
    assert Tag.objects.for_workspace(workspace).get(name="fair").contacts.count() == 202


def test_duplicate_emails_merge_within_a_batch_and_update_across_batches(
    workspace, owner, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(importer, "BATCH_ROWS", 3)
    text = (
        "Email,First name,Last name,Tags\n"
        "dup@example.com,Dee,,a\n"
        "other@example.com,Oz,,\n"
        "DUP@example.com,,Upp,b\n"  # same batch: merged into row 2
        "dup@example.com,Dora,,c\n"  # next batch: updates the contact
    )
    job = importer.store_upload(
        workspace=workspace, object_type="contact", upload=upload(text), actor=owner
    )
    with django_capture_on_commit_callbacks(execute=False):
        job = run(job)
    assert (job.created_count, job.updated_count, job.rejected_count) == (2, 1, 0)
    dup = Contact.objects.for_workspace(workspace).get(email="dup@example.com")
    assert (dup.first_name, dup.last_name) == ("Dora", "Upp")
    assert sorted(dup.tags.values_list("name", flat=True)) == ["a", "b", "c"]
    events = Event.objects.for_workspace(workspace)
    assert events.filter(kind="contact.created").count() == 2
    changed = events.get(kind="contact.field_changed")
    assert changed.contact_id == dup.pk and changed.properties["fields"] == ["first_name"]


def test_a_tag_an_existing_contact_has_already_is_kept_once(
    workspace, owner, django_capture_on_commit_callbacks
):
    vip = Tag.objects.create(workspace=workspace, name="vip")
    known = ContactFactory(workspace=workspace, email="known@example.com")
    known.tags.add(vip)
    job = importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=upload("Email,Tags\nknown@example.com,VIP; later\nnew@example.com,vip\n"),
        actor=owner,
    )
    with django_capture_on_commit_callbacks(execute=False):
        job = run(job, tags=["vip"])
    assert (job.created_count, job.updated_count, job.rejected_count) == (1, 1, 0)
    assert sorted(known.tags.values_list("name", flat=True)) == ["later", "vip"]
    fresh = Contact.objects.for_workspace(workspace).get(email="new@example.com")
    assert list(fresh.tags.values_list("name", flat=True)) == ["vip"]


def test_contacts_the_planner_knows_nothing_of_are_analyzed_first(settings):
    """Without statistics the planner takes the contacts for one row and scans for each match."""
    if not settings.IS_POSTGRES:
        pytest.skip("the staged import and its statistics are PostgreSQL's")
    from django.db import connection

    ContactFactory()  # a table with rows in it, counted or not

    def pages():
        with connection.cursor() as cursor:
            cursor.execute("SELECT relpages FROM pg_class WHERE oid = 'crm_contact'::regclass")
            return cursor.fetchone()[0]

    importer._give_the_planner_statistics()
    assert pages() > 0


@pytest.mark.postgres_only
def test_contacts_counted_while_none_was_committed_are_analyzed_again(settings):
    """ANALYZE that ran while every row was uncommitted (or dead) left the planner 0 rows."""
    if not settings.IS_POSTGRES:
        pytest.skip("the staged import and its statistics are PostgreSQL's")
    from django.db import connection

    def counted():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relpages, reltuples FROM pg_class WHERE oid = 'crm_contact'::regclass"
            )
            return cursor.fetchone()

    ContactFactory().delete()  # a page holding no live row
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_contact")
    pages, rows = counted()
    assert pages > 0 and rows == 0
    ContactFactory.create_batch(3)
    importer._give_the_planner_statistics()
    assert counted()[1] == 3


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_batches_written_by_threads_of_their_own_resume_after_a_crash(settings, monkeypatch):
    """Outside a transaction, PostgreSQL batches are applied by two writer threads.

    The second batch fails while the third is applied; the third waited for its
    turn to commit, so it rolls back with it and the progress stops after the first.
    """
    if not settings.IS_POSTGRES:
        pytest.skip("only PostgreSQL imports overlap reading and writing")
    workspace = WorkspaceFactory()
    assert importer._can_overlap()
    rows = "".join(f"t{i}@example.com,T{i}\n" for i in range(7))
    job = importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=upload("Email,First name\n" + rows + "t0@example.com,Again\n"),
        actor=None,
    )
    monkeypatch.setattr(importer, "BATCH_ROWS", 3)
    real_apply = importer._apply_contacts
    threads: set[str] = set()
    fail = {"start": 3}

    def crash_on_second_batch(job, batch, *args):
        import threading

        threads.add(threading.current_thread().name)
        if batch.start == fail["start"]:
            raise RuntimeError("worker lost")
        return real_apply(job, batch, *args)

    monkeypatch.setattr(importer, "_apply_contacts", crash_on_second_batch)
    # Queued as start_import() queues it, without handing it to a worker here.
    job.tags, job.update_existing, job.status = ["t"], True, ImportStatus.QUEUED
    job.save()
    with pytest.raises(RuntimeError, match="worker lost"):
        importer.run_import(job.pk)
    assert threads <= {f"import-{job.pk}-0", f"import-{job.pk}-1"}
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and job.processed_rows == 3
    assert Contact.objects.for_workspace(workspace).count() == 3
    fail["start"] = None
    job.status = ImportStatus.RUNNING
    job.save()
    job = importer.run_import(job.pk)
    assert job.status == ImportStatus.DONE and job.processed_rows == 8
    assert (job.created_count, job.updated_count) == (7, 1)
    contacts = Contact.objects.for_workspace(workspace)
    assert contacts.count() == 7 and contacts.get(email="t0@example.com").first_name == "Again"
    events = Event.objects.for_workspace(workspace)
    assert events.filter(kind="contact.created").count() == 7
    assert events.filter(kind="contact.field_changed").count() == 1
    assert Tag.objects.for_workspace(workspace).get(name="t").contacts.count() == 7


@pytest.fixture
def in_threes(settings, monkeypatch):
    """A workspace whose imports go in batches of three, to two writer threads (PostgreSQL)."""
    if not settings.IS_POSTGRES:
        pytest.skip("only PostgreSQL imports overlap reading and writing")
    monkeypatch.setattr(importer, "BATCH_ROWS", 3)
    return WorkspaceFactory()


def _queued_job(workspace, rows: str):
    job = importer.store_upload(
        workspace=workspace, object_type="contact", upload=upload(rows), actor=None
    )
    # Queued as start_import() queues it, without handing it to a worker here.
    job.update_existing, job.status = True, ImportStatus.QUEUED
    job.save()
    return job


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_batches_are_applied_at_once_and_commit_in_file_order(in_threes, monkeypatch):
    """The second batch is applied while the first waits, then waits itself for its turn."""
    import threading

    workspace = in_threes
    rows = "".join(f"o{i}@example.com,O{i}\n" for i in range(6))
    job = _queued_job(workspace, "Email,First name\n" + rows)
    real_apply, real_wait = importer._apply_contacts, importer._ThreadWriter._wait_for_turn
    second_applied = threading.Event()
    turns: list[tuple[str, int]] = []

    def apply(job, batch, *args):
        if batch.start == 0:
            # Only a second writer applying the next batch meanwhile lets this one go on.
            assert second_applied.wait(10), "the second batch was not applied alongside"
        real_apply(job, batch, *args)
        if batch.start == 3:
            second_applied.set()

    def wait_for_turn(writer, number, holding_locks):
        turns.append(("waits", number))
        real_wait(writer, number, holding_locks)
        committed = ImportJob.objects.unscoped().get(pk=job.pk).processed_rows
        turns.append(("goes", number, committed))

    monkeypatch.setattr(importer, "_apply_contacts", apply)
    monkeypatch.setattr(importer._ThreadWriter, "_wait_for_turn", wait_for_turn)
    job = importer.run_import(job.pk)
    assert job.status == ImportStatus.DONE and job.created_count == 6
    # Batch 1 waited first, went on only once batch 0 had committed its 3 rows.
    assert turns == [("waits", 1), ("waits", 0), ("goes", 0, 0), ("goes", 1, 3)]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_batch_waiting_for_its_turn_gives_way_to_the_one_it_blocks(in_threes, monkeypatch):
    """Batch 1 holds a lock batch 0 needs: it rolls back and is applied again after it."""
    import threading

    from django.db import connection

    from patron.core.models import Workspace

    workspace = in_threes
    rows = "".join(f"w{i}@example.com,W{i}\n" for i in range(6))
    job = _queued_job(workspace, "Email,First name\n" + rows)
    real_apply = importer._apply_contacts
    locked = threading.Event()
    calls = {0: 0, 3: 0}

    def apply(job, batch, *args):
        calls[batch.start] += 1
        if batch.start == 0:
            assert locked.wait(10)
            # Waits for batch 1's lock: without giving way neither would ever finish
            # (the lock timeout turns that into a failed import instead of a hang).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '20s'")
            Workspace.objects.select_for_update().get(pk=job.workspace_id)
        real_apply(job, batch, *args)
        if batch.start == 3 and calls[3] == 1:
            Workspace.objects.select_for_update().get(pk=job.workspace_id)
            locked.set()

    monkeypatch.setattr(importer, "_apply_contacts", apply)
    job = importer.run_import(job.pk)
    assert job.status == ImportStatus.DONE and job.processed_rows == 6
    assert (job.created_count, job.updated_count) == (6, 0)
    assert calls == {0: 1, 3: 2}
    assert Event.objects.for_workspace(workspace).filter(kind="contact.created").count() == 6


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_batches_sharing_an_email_are_applied_one_after_the_other(in_threes, monkeypatch):
    """The later row wins, as one by one; the same new company is created once."""
    import threading

    workspace = in_threes
    rows = [f"s{i}@example.com,S{i},Umbrella" for i in range(5)] + ["s0@example.com,Later,Umbrella"]
    job = _queued_job(workspace, "Email,First name,Company\n" + "\n".join(rows) + "\n")
    real_apply = importer._apply_contacts
    running, most = [0], [0]
    guard = threading.Lock()

    def apply(*args):
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return real_apply(*args)
        finally:
            with guard:
                running[0] -= 1

    monkeypatch.setattr(importer, "_apply_contacts", apply)
    job = importer.run_import(job.pk)
    assert job.status == ImportStatus.DONE and (job.created_count, job.updated_count) == (5, 1)
    assert most[0] == 1
    contacts = Contact.objects.for_workspace(workspace)
    assert contacts.get(email="s0@example.com").first_name == "Later"
    assert Company.objects.for_workspace(workspace).filter(name="Umbrella").count() == 1
