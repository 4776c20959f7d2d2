"""The suppression list: normalised, idempotent, audited, recorded on contacts' timelines."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from patron.activity.models import Event
from patron.audience import suppression
from patron.audience.models import Suppression
from patron.core.models import AuditEntry
from patron.core.services import set_suppress_role_addresses
from patron.crm.exporter import csv_lines
from patron.crm.models import ContactEmail
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def rows(workspace):
    return dict(
        Suppression.objects.for_workspace(workspace)
        .values_list("email", "reason")
        .order_by("email")
    )


def events(workspace, kind):
    return sorted(
        Event.objects.for_workspace(workspace)
        .filter(kind=kind)
        .values_list("contact_id", "properties__email")
    )


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Ann@Example.COM", "ann@example.com"),
        ("  bob@x.test \n", "bob@x.test"),
        ("no-reply@Shop.Example", "no-reply@shop.example"),
    ],
)
def test_addresses_are_trimmed_and_lower_cased(given, stored):
    assert suppression.normalise_email(given) == stored


@pytest.mark.parametrize("given", ["", "   ", "ann", "ann@", "@x.test", "a b@x.test", "a@@x.test"])
def test_invalid_addresses_are_refused(given):
    with pytest.raises(suppression.SuppressionInvalid):
        suppression.normalise_email(given)


def test_pasted_text_splits_on_lines_commas_semicolons_and_spaces():
    text = "ann@x.test, Bob@X.test;\n<cy@x.test>\n  not-an-address  ann@x.test"
    parts = suppression.split_addresses(text)
    assert parts == ["ann@x.test", "Bob@X.test", "cy@x.test", "not-an-address", "ann@x.test"]
    valid, invalid = suppression.parse_addresses(parts)
    assert valid == ["ann@x.test", "bob@x.test", "cy@x.test"]
    assert [value for value, _message in invalid] == ["not-an-address"]


def test_suppress_is_idempotent_and_keeps_the_first_reason_and_date(workspace, owner):
    first = suppression.suppress_address(
        workspace=workspace, email="Ann@X.test", reason="complaint", note="spam button", actor=owner
    )
    Suppression.objects.for_workspace(workspace).filter(pk=first.pk).update(
        created_at=timezone.now() - timedelta(days=30)
    )
    result = suppression.suppress_addresses(
        workspace=workspace, emails=["ann@x.test", "ANN@x.TEST", "bob@x.test"], reason="manual"
    )
    assert result.added == ["bob@x.test"]
    assert result.already == ["ann@x.test"]
    again = Suppression.objects.for_workspace(workspace).get(email="ann@x.test")
    assert again.pk == first.pk
    assert again.reason == "complaint" and again.note == "spam button"
    assert again.created_at < timezone.now() - timedelta(days=29)
    assert again.created_by == owner
    assert rows(workspace) == {"ann@x.test": "complaint", "bob@x.test": "manual"}


def test_nothing_is_written_when_one_entry_is_invalid(workspace):
    with pytest.raises(suppression.SuppressionInvalid):
        suppression.suppress_addresses(workspace=workspace, emails=["ann@x.test", "nope"])
    with pytest.raises(suppression.SuppressionInvalid, match="Unknown reason"):
        suppression.suppress_addresses(workspace=workspace, emails=["ann@x.test"], reason="x")
    with pytest.raises(suppression.SuppressionInvalid, match="note"):
        suppression.suppress_addresses(workspace=workspace, emails=["a@x.test"], note="n" * 301)
    assert rows(workspace) == {}


def test_reasons_are_read_from_codes_and_labels():
    assert suppression.clean_reason("Hard bounce") == "hard_bounce"
    assert suppression.clean_reason("HARD_BOUNCE") == "hard_bounce"
    assert suppression.clean_reason("spam complaint") == "complaint"
    assert suppression.clean_reason("") == "manual"
    assert suppression.clean_reason("", default="unsubscribed") == "unsubscribed"


def test_suppressing_records_events_on_every_contact_carrying_the_address(workspace, owner):
    ann = ContactFactory(workspace=workspace, email="Ann@X.test")
    bob = ContactFactory(workspace=workspace, email="bob@x.test")
    ContactEmail.objects.create(workspace=workspace, contact=bob, email="ANN.old@x.test")
    ContactFactory(workspace=workspace, email="cy@x.test")
    other_workspace = WorkspaceFactory()
    stranger = ContactFactory(workspace=other_workspace, email="ann@x.test")

    suppression.suppress_addresses(
        workspace=workspace,
        emails=["ann@x.test", "ann.old@x.test", "nobody@x.test"],
        reason="hard_bounce",
        actor=owner,
    )
    assert events(workspace, "contact.suppressed") == sorted(
        [(ann.pk, "ann@x.test"), (bob.pk, "ann.old@x.test")]
    )
    event = Event.objects.for_workspace(workspace).get(contact_id=ann.pk, kind="contact.suppressed")
    assert event.properties["reason"] == "hard_bounce"
    assert event.properties["title"] == "ann@x.test (Hard bounce)"
    assert event.source_type == "audience.suppression"
    assert not Event.objects.for_workspace(other_workspace).filter(contact_id=stranger.pk).exists()
    entry = AuditEntry.objects.get(workspace=workspace, action="suppression.added")
    assert entry.actor == owner and entry.target == "3 addresses"
    assert entry.data["count"] == 3 and entry.data["reasons"] == {"hard_bounce": 3}

    # Suppressing again changes nothing and records nothing.
    suppression.suppress_address(workspace=workspace, email="ANN@x.test", actor=owner)
    assert len(events(workspace, "contact.suppressed")) == 2
    assert AuditEntry.objects.filter(workspace=workspace, action="suppression.added").count() == 1


def test_unsuppress_by_address_or_id(workspace, owner):
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    suppression.suppress_addresses(
        workspace=workspace, emails=["ann@x.test", "bob@x.test", "cy@x.test"]
    )
    bob = Suppression.objects.for_workspace(workspace).get(email="bob@x.test")
    removed = suppression.unsuppress(
        workspace=workspace, emails=[" Ann@X.test", "never@x.test"], ids=[bob.pk], actor=owner
    )
    assert removed == ["ann@x.test", "bob@x.test"]
    assert rows(workspace) == {"cy@x.test": "manual"}
    assert events(workspace, "contact.unsuppressed") == [(ann.pk, "ann@x.test")]
    entry = AuditEntry.objects.get(workspace=workspace, action="suppression.removed")
    assert entry.data["emails"] == ["ann@x.test", "bob@x.test"] and entry.actor == owner
    # Nothing to remove: no audit entry, no event.
    assert suppression.unsuppress(workspace=workspace, emails=["ann@x.test"]) == []
    assert AuditEntry.objects.filter(workspace=workspace, action="suppression.removed").count() == 1


def test_unsuppress_never_touches_another_workspace(workspace):
    other = WorkspaceFactory()
    row = suppression.suppress_address(workspace=other, email="ann@x.test")
    assert suppression.unsuppress(workspace=workspace, emails=["ann@x.test"], ids=[row.pk]) == []
    assert rows(other) == {"ann@x.test": "manual"}


def test_role_addresses_count_as_suppressed_only_with_the_setting(workspace, owner):
    assert suppression.is_role_address("Postmaster@x.test")
    assert suppression.is_role_address("no-reply@x.test")
    assert not suppression.is_role_address("ann.admin@x.test")
    assert not suppression.is_role_address("info@x.test")
    assert suppression.status(workspace, "abuse@x.test") is None
    set_suppress_role_addresses(workspace=workspace, enabled=True, actor=owner)
    status = suppression.status(workspace, "ABUSE@x.test")
    assert status is not None and status.reason == "role" and status.suppression is None
    assert status.label == "Role address"
    entry = AuditEntry.objects.get(workspace=workspace, action="workspace.settings_changed")
    assert entry.data == {"changed": {"suppress_role_addresses": [False, True]}}
    # A row wins over the rule: its reason is the one shown.
    suppression.suppress_address(workspace=workspace, email="abuse@x.test", reason="complaint")
    status = suppression.status(workspace, "abuse@x.test")
    assert status is not None and status.reason == "complaint"


def test_search_and_filter_the_list(workspace):
    suppression.suppress_addresses(
        workspace=workspace, emails=["ann@x.test"], note="Asked by phone"
    )
    suppression.suppress_addresses(workspace=workspace, emails=["bob@y.test"], reason="hard_bounce")
    assert [r.email for r in suppression.suppressions(workspace, search="ANN")] == ["ann@x.test"]
    assert [r.email for r in suppression.suppressions(workspace, search="phone")] == ["ann@x.test"]
    assert [r.email for r in suppression.suppressions(workspace, reason="hard_bounce")] == [
        "bob@y.test"
    ]


# --- Import and export ----------------------------------------------------------------


def test_import_reports_every_rejected_row(workspace, owner):
    ContactFactory(workspace=workspace, email="kept@x.test")
    suppression.suppress_address(workspace=workspace, email="kept@x.test", reason="complaint")
    data = (
        b"Email;Reason;Note\n"
        b"ann@x.test;hard bounce;bounced twice\n"
        b"not-an-address;;\n"
        b";manual;no address here\n"
        b"bob@x.test;holiday;\n"
        b"ANN@x.test;manual;again\n"
        b"KEPT@x.test;manual;\n"
        b"\n"
        b"cy@x.test;;\n"
    )
    report = suppression.import_csv(
        workspace=workspace,
        data=data,
        default_reason="unsubscribed",
        actor=owner,
        file_name="a.csv",
    )
    assert report.rows == 7
    assert report.added == 2 and report.already == 1
    assert [(r.row, r.values[0]) for r in report.rejected] == [
        (3, "not-an-address"),
        (4, ""),
        (5, "bob@x.test"),
        (6, "ANN@x.test"),
    ]
    problems = [r.reason for r in report.rejected]
    assert "not a valid email address" in problems[0]
    assert problems[1] == "No email address."
    assert "Unknown reason “holiday”" in problems[2]
    assert "row 2" in problems[3]
    assert rows(workspace) == {
        "ann@x.test": "hard_bounce",
        "cy@x.test": "unsubscribed",
        "kept@x.test": "complaint",
    }
    entry = AuditEntry.objects.get(workspace=workspace, action="suppression.added", actor=owner)
    assert entry.data["source"] == "import"

    token = suppression.report_token(workspace, report)
    lines = list(
        csv.reader(io.StringIO("".join(csv_lines(suppression.report_rows(workspace, token)))))
    )
    assert lines[0] == ["row", "problem", "Email", "Reason", "Note"]
    assert [line[0] for line in lines[1:]] == ["3", "4", "5", "6"]
    assert lines[3][2:] == ["bob@x.test", "holiday", ""]
    # The token is this workspace's and cannot be altered.
    assert suppression.report_rows(WorkspaceFactory(), token) is None
    assert suppression.report_rows(workspace, token[:-2] + "xx") is None


def test_import_without_a_header_takes_email_reason_note(workspace):
    report = suppression.import_csv(
        workspace=workspace, data=b"ann@x.test,complaint,from the ESP\nbob@x.test\n"
    )
    assert report.added == 2 and report.rejected == []
    assert rows(workspace) == {"ann@x.test": "complaint", "bob@x.test": "manual"}


def test_import_reads_windows_encoded_files(workspace):
    data = "email,note\nrene@x.test,Café\n".encode("cp1252")
    report = suppression.import_csv(workspace=workspace, data=data)
    assert report.added == 1
    assert Suppression.objects.for_workspace(workspace).get().note == "Café"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"name,company\nAnn,Acme\n", "must name an “email” column"),
    ],
)
def test_import_refuses_files_it_cannot_read(workspace, data, message):
    with pytest.raises(suppression.ImportInvalid, match=message):
        suppression.import_csv(workspace=workspace, data=data)


def test_import_has_size_limits(workspace, monkeypatch):
    monkeypatch.setattr(suppression, "MAX_IMPORT_ROWS", 2)
    with pytest.raises(suppression.ImportInvalid, match="at most 2"):
        suppression.import_csv(workspace=workspace, data=b"email\na@x.test\nb@x.test\nc@x.test\n")
    monkeypatch.setattr(suppression, "MAX_IMPORT_BYTES", 10)
    with pytest.raises(suppression.ImportInvalid, match="larger than"):
        suppression.import_csv(workspace=workspace, data=b"email\na@x.test\n")
    assert rows(workspace) == {}


def test_export_neutralises_formulas(workspace, owner):
    suppression.suppress_address(
        workspace=workspace, email="ann@x.test", note='=HYPERLINK("http://evil")', actor=owner
    )
    text = "".join(csv_lines(suppression.export_rows(suppression.suppressions(workspace))))
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["email", "reason", "note", "created_at", "created_by"]
    assert lines[1][:3] == ["ann@x.test", "manual", '\'=HYPERLINK("http://evil")']
    assert lines[1][4] == owner.email


def test_the_demo_has_suppressed_addresses(owner):
    from patron.demo import seed_demo_workspace

    workspace = seed_demo_workspace(owner=owner)
    reasons = set(rows(workspace).values())
    assert reasons == {"hard_bounce", "complaint", "unsubscribed", "manual", "role"}
    assert Event.objects.for_workspace(workspace).filter(kind="contact.suppressed").count() == 3


def test_many_addresses_find_their_contacts_in_one_statement(workspace, monkeypatch):
    """Past a few addresses, contacts are matched against the rows as a subquery."""
    monkeypatch.setattr(suppression, "FEW_ADDRESSES", 2)
    ann = ContactFactory(workspace=workspace, email="Ann@X.test")
    bob = ContactFactory(workspace=workspace, email="bob@x.test")
    ContactEmail.objects.create(workspace=workspace, contact=bob, email="BOB.old@x.test")
    stranger = ContactFactory(workspace=WorkspaceFactory(), email="cy@x.test")
    emails = ["ann@x.test", "bob.old@x.test", "cy@x.test", *[f"n{n}@x.test" for n in range(5)]]
    suppression.suppress_addresses(workspace=workspace, emails=emails)
    assert events(workspace, "contact.suppressed") == sorted(
        [(ann.pk, "ann@x.test"), (bob.pk, "bob.old@x.test")]
    )
    assert not Event.objects.unscoped().filter(contact_id=stranger.pk).exists()
    suppression.unsuppress(workspace=workspace, emails=emails)
    assert events(workspace, "contact.unsuppressed") == sorted(
        [(ann.pk, "ann@x.test"), (bob.pk, "bob.old@x.test")]
    )
