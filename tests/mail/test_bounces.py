"""Reading bounce messages and feedback reports (``patron.mail.bounces``): the samples of
real receivers' wording, the hard/soft classification, and which delivery a report names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patron.mail import bounces, mime, tokens
from tests.mail.bounce_helpers import sample, sample_names

# sample -> (kind, format, recipient, action, status, hard or soft)
EXPECTED = {
    "postfix_user_unknown.eml": (
        "bounce",
        "rfc3464",
        "ann.lee@globex.example",
        "failed",
        "5.1.1",
        "hard",
    ),
    "gmail_address_not_found.eml": (
        "bounce",
        "rfc3464",
        "bob.nobody@gmail.com",
        "failed",
        "5.1.1",
        "hard",
    ),
    "gmail_over_quota.eml": ("bounce", "rfc3464", "cara.full@gmail.com", "failed", "5.2.2", "soft"),
    "outlook_recipient_not_found.eml": (
        "bounce",
        "rfc3464",
        "dan.gone@contoso.com",
        "failed",
        "5.1.10",
        "hard",
    ),
    "outlook_blocked_policy.eml": (
        "bounce",
        "rfc3464",
        "eve.reader@outlook.com",
        "failed",
        "5.7.1",
        "soft",
    ),
    "exchange_legacy_ndr.eml": (
        "bounce",
        "exchange",
        "frank.old@fabrikam.example",
        "failed",
        "5.1.1",
        "hard",
    ),
    "exim_user_unknown.eml": (
        "bounce",
        "exim",
        "gina@example-hosting.net",
        "failed",
        "5.1.1",
        "hard",
    ),
    "exim_mailbox_full.eml": ("bounce", "exim", "hugo@example-hosting.net", "failed", "", "soft"),
    "exim_delay_warning.eml": (
        "delay",
        "exim",
        "ivy@example-hosting.net",
        "delayed",
        "4.7.1",
        "soft",
    ),
    "qmail_failure.eml": ("bounce", "qmail", "jack@example-isp.net", "failed", "5.1.1", "hard"),
    "yahoo_no_account.eml": ("bounce", "qmail", "kim.closed@yahoo.com", "failed", "", "hard"),
    "autoreply_mailbox_full.eml": ("bounce", "text", "leo@smallhost.example", "failed", "", "soft"),
    "sendmail_delayed.eml": ("delay", "rfc3464", "mia@example.org", "delayed", "4.4.1", "soft"),
}


def test_every_sample_has_an_expectation():
    complaints = {"arf_yahoo_complaint.eml", "arf_headers_only_redacted.eml"}
    assert set(sample_names()) == set(EXPECTED) | complaints | {"out_of_office.eml"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_sample_is_read_as_its_sender_meant_it(name):
    kind, form, recipient, action, status, bounce = EXPECTED[name]
    report = bounces.read_report(sample(name))
    assert (report.kind, report.format, report.problem) == (kind, form, "")
    (finding,) = report.findings
    assert (finding.recipient, finding.action, finding.status) == (recipient, action, status)
    assert finding.bounce == bounce
    # Sendmail's delay warning gives a status and no Diagnostic-Code.
    assert finding.diagnostic or name == "sendmail_delayed.eml"


def test_the_dsn_keeps_the_remote_servers_words_and_the_reporting_mta():
    report = bounces.read_report(sample("gmail_address_not_found.eml"))
    (finding,) = report.findings
    assert finding.reporting_mta == "googlemail.com"
    assert finding.diagnostic.startswith("550-5.1.1 The email account that you tried to reach")
    assert report.subject == "Delivery Status Notification (Failure)"
    report = bounces.read_report(sample("postfix_user_unknown.eml"))
    assert report.findings[0].diagnostic == (
        "550 5.1.1 <ann.lee@globex.example>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )


def test_an_arf_report_is_a_complaint_with_its_fields():
    report = bounces.read_report(sample("arf_yahoo_complaint.eml"))
    assert report.kind == "complaint" and report.format == "arf"
    assert report.complaint == bounces.Complaint(
        feedback_type="abuse",
        recipient="olga.reader@yahoo.com",
        user_agent="Yahoo!-Mail-Feedback/2.0",
        reported_domain="lumiar.example",
        source_ip="198.51.100.20",
    )
    assert not report.findings


def test_an_out_of_office_reply_is_unreadable_and_says_why():
    report = bounces.read_report(sample("out_of_office.eml"))
    assert report.kind == "unreadable"
    assert report.problem == (
        "This does not look like a bounce (no failure report, no failed address)."
    )


def test_a_delivery_report_without_recipients_says_why():
    raw = (
        b"From: MAILER-DAEMON@mx.example\r\nSubject: Delivery failure\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n"
        b"\r\n--b--\r\n"
    )
    report = bounces.read_report(raw)
    assert report.kind == "unreadable"
    assert report.problem == "A delivery report that names no failed recipient."


@pytest.mark.parametrize("name", sample_names())
def test_every_report_names_the_delivery_by_its_signed_return_path(name):
    report = bounces.read_report(sample(name, workspace_id=5, delivery_id=4242, campaign_id=9))
    original = bounces.original_of(report)
    if name in {"exim_delay_warning.eml", "out_of_office.eml"}:
        # No copy of the original: the VERP address it came to names the delivery.
        assert original.verp is None
        return
    assert original.verp == (5, 4242)
    assert original.message_id == (4242, 9)


def test_a_tampered_return_path_names_nothing_but_the_message_id_stays_a_hint():
    raw = sample("arf_yahoo_complaint.eml", workspace_id=5, delivery_id=4242, campaign_id=9)
    token = tokens.sign("verp", 5, 4242)
    forged = tokens.sign("verp", 5, 4243)[:-2] + token[-2:]
    report = bounces.read_report(raw.replace(token.encode(), forged.encode()))
    original = bounces.original_of(report)
    assert original.verp is None
    assert original.message_id == (4242, 9)
    assert original.campaign == 9
    assert mime.parse_verp(f"bounce+{forged}@bounces.example") is None


@pytest.mark.parametrize(
    ("status", "diagnostic", "code", "expected"),
    [
        ("5.1.1", "User unknown", None, "hard"),
        ("5.1.10", "RESOLVER.ADR.RecipientNotFound", None, "hard"),
        ("5.2.1", "The email account that you tried to reach is disabled", None, "hard"),
        ("5.2.2", "Mailbox full", None, "soft"),
        ("5.3.4", "Message too big for system", None, "soft"),
        ("5.4.7", "Delivery time expired", None, "soft"),
        ("5.7.1", "Service unavailable; client host blocked using Spamhaus", None, "soft"),
        ("5.7.1", "No such user", None, "hard"),
        ("5.0.0", "mailbox unavailable", None, "hard"),
        ("5.0.0", "Quota exceeded", None, "soft"),
        ("4.2.2", "The email account that you tried to reach is over quota", None, "soft"),
        ("4.1.1", "User unknown (greylisting verification)", None, "soft"),
        ("", "550 Requested action not taken: mailbox unavailable", None, "hard"),
        ("", "554 delivery error: dd This user doesn't have a yahoo.com account", None, "hard"),
        ("", "552 Requested mail action aborted: exceeded storage allocation", None, "soft"),
        ("", "Greylisted, see http://postgrey.schweikert.ch", None, "soft"),
        ("", "no such user here", None, "hard"),
        ("", "Sorry, I couldn't find any host by that name", None, "soft"),
        ("", "Recipient rejected", 550, "hard"),
        ("", "Try again later", 550, "soft"),
        ("", "Something odd happened", None, "soft"),
        ("", "", 421, "soft"),
    ],
)
def test_classification(status, diagnostic, code, expected):
    assert bounces.classify(status, diagnostic, code) == expected


def test_status_codes_are_found_in_replies():
    assert bounces.status_in("550-5.1.1 The email account") == "5.1.1"
    assert bounces.status_in("smtp;550 5.1.10 RESOLVER.ADR") == "5.1.10"
    assert bounces.status_in("host 192.0.2.44 said 550 no") == ""
    assert bounces.basic_code_in("host mx said: 552 5.2.2 full") == 552


@given(st.binary(max_size=2000))
def test_reading_never_raises_on_any_bytes(raw):
    report = bounces.read_report(raw)
    assert report.kind in {"bounce", "complaint", "delay", "unreadable"}
    if report.kind == "unreadable":
        assert report.problem


@given(st.text(max_size=300), st.sampled_from(["", "5.1.1", "4.2.2", "5.7.1", "2.0.0"]))
def test_classification_is_always_hard_or_soft(text, status):
    assert bounces.classify(status, text) in {"hard", "soft"}
