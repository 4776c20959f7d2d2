"""Reading bounce messages and spam complaints: what failed, why, and hard or soft.

``read_report(raw)`` turns the bytes of a message that came back into a
``Report``:

- **Delivery status notifications** (RFC 3464, ``multipart/report;
  report-type=delivery-status``), as Postfix, Exim with DSN, Sendmail, Gmail,
  Outlook/Exchange Online and most large receivers send them: one ``Finding``
  per recipient block (``Final-Recipient``, ``Action``, ``Status``,
  ``Diagnostic-Code``, the ``Reporting-MTA``).
- **Feedback reports** (ARF, RFC 5965, ``report-type=feedback-report``): the
  complaint a mailbox provider's feedback loop sends when a person pressed
  "this is spam".
- **Plain-text bounces** for servers that send no DSN: qmail and Yahoo
  ("<address>:" blocks), Exim ("The following address(es) failed:"), Postfix
  without its DSN part, the legacy Exchange non-delivery report ("The following
  recipient(s) cannot be reached:"), and any other text naming the address
  (``X-Failed-Recipients`` helps) with a reason in words ("mailbox full").

``classify(status, diagnostic)`` says whether a failure is **hard** (the
address does not work: suppress it now) or **soft** (it may work later).
The enhanced status code (RFC 3463) decides first: ``4.x.x`` is soft,
``5.x.x`` hard, except the permanent codes that are not about the address
(``5.2.2`` mailbox full, ``5.2.3``/``5.3.4`` message too big, ``5.4.7``
delivery time expired) and ``5.7.x`` policy refusals (a receiver blocking the
sender or the content says nothing about the address: suppressing on it would
empty a list during a blocklisting; repeated refusals still add up as soft
bounces). Without a code the words decide ("user unknown", "no such user",
"mailbox unavailable" hard; "mailbox full", "quota", "try again later",
"greylisted" soft).

``original_of(report)`` finds which of our messages a report is about: the
signed VERP token of its return path (``bounce+<token>@``, trusted) and our
deterministic Message-ID (``<d<delivery>.c<campaign>@...>``, only a hint: it
can be guessed).

Nothing here touches the database; ``patron.mail.feedback`` applies reports.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from typing import Any

from patron.mail import mime

HARD, SOFT = "hard", "soft"
FAILED, DELAYED = "failed", "delayed"
# What a report is.
BOUNCE, COMPLAINT, DELAY, UNREADABLE = "bounce", "complaint", "delay", "unreadable"
DIAGNOSTIC_LIMIT = 1000

# Permanent codes that do not mean the address is dead.
SOFT_STATUSES = frozenset({"5.2.2", "5.2.3", "5.3.4", "5.4.7"})

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
_BASIC_CODE = re.compile(r"(?<!\d)([245]\d\d)(?:[ -]|$)")
_ADDRESS = re.compile(r"<?([^\s<>\"'(),;:]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+)>?")

# A full mailbox exists: these win over the "does not exist" words around them.
_FULL = re.compile(
    r"mailbox (?:is )?full|over ?quota|quota (?:exceeded|full)|exceed\w* (?:\w+ )?(?:quota|storage)"
    r"|insufficient (?:system )?storage|mailbox size limit|out of (?:disk )?space"
    r"|not enough (?:disk )?space|mail ?box (?:has )?exceeded",
    re.I,
)
_HARD = re.compile(
    r"user(?:name)? unknown|unknown (?:user|recipient|address|mailbox)|recipient unknown"
    r"|no such (?:user|mailbox|recipient|address|account|person)|no mailbox here"
    r"|mailbox (?:unavailable|not found|does not exist|disabled|inactive)"
    r"|(?:user|recipient|address|account|mailbox) (?:was )?not found"
    r"|does ?n[o']t exist|do not exist|not exist|address not found"
    r"|invalid (?:recipient|mailbox|address)|not a valid (?:recipient|mailbox|address|user)"
    r"|recipientnotfound|account (?:has been )?disabled"
    r"|account (?:is )?(?:inactive|deactivated|suspended)"
    r"|no longer (?:exists|active|in use|valid)"
    r"|does ?n[o']t have an? [\w.-]+ account|bad destination mailbox|undeliverable address"
    r"|unrouteable address|host (?:or domain )?not found"
    r"|domain (?:does not exist|not found)|no mx record",
    re.I,
)
_TEMPORARY = re.compile(
    r"try (?:again )?later|temporar(?:il)?y|greylist|graylist|deferr"
    r"|too many (?:connections|messages)|rate limit|timed? ?out|mailbox busy"
    r"|resources temporarily|retry timeout exceeded",
    re.I,
)


def status_in(text: str) -> str:
    """The first enhanced status code (``5.1.1``) in ``text``, or ""."""
    found = _STATUS.search(text or "")
    return ".".join(found.groups()) if found else ""


def basic_code_in(text: str) -> int | None:
    """The first three-digit SMTP reply code (``550``) in ``text``, or None."""
    found = _BASIC_CODE.search(text or "")
    return int(found.group(1)) if found else None


def classify(status: str = "", diagnostic: str = "", smtp_code: int | None = None) -> str:
    """``HARD`` or ``SOFT`` for a failure, from its enhanced code, its reply code and its words."""
    status = (status or status_in(diagnostic)).strip()
    text = diagnostic or ""
    code = smtp_code or basic_code_in(text)
    level = status[:1] if status else (str(code)[:1] if code else "")
    if level in ("2", "4"):
        return SOFT
    if status in SOFT_STATUSES or _FULL.search(text):
        return SOFT
    if status.startswith("5.1.") or _HARD.search(text):
        return HARD
    if status.startswith("5.7.") or _TEMPORARY.search(text):
        return SOFT
    if level == "5":
        return SOFT if not status and code == 552 else HARD
    # A failure we cannot read: not worth losing an address over at once.
    return SOFT


@dataclass(frozen=True)
class Finding:
    """One recipient a report is about."""

    recipient: str
    action: str  # FAILED or DELAYED
    status: str  # enhanced status code, "" when the report gives none
    diagnostic: str
    reporting_mta: str = ""

    @property
    def bounce(self) -> str:
        return classify(self.status, self.diagnostic)


@dataclass(frozen=True)
class Complaint:
    """What a feedback report (ARF) says."""

    feedback_type: str  # abuse, fraud, virus, other, not-spam ...
    recipient: str  # Original-Rcpt-To, often removed by the provider
    user_agent: str = ""
    reported_domain: str = ""
    source_ip: str = ""


@dataclass
class Report:
    """A message that came back, read: a bounce, a complaint, a delay, or unreadable."""

    kind: str
    format: str  # rfc3464, arf, qmail, exim, postfix, exchange, text
    findings: list[Finding] = field(default_factory=list)
    complaint: Complaint | None = None
    # Why nothing could be read (kept with the stored message, for a person to look at).
    problem: str = ""
    subject: str = ""
    # Texts that may carry the original message's headers, searched by ``original_of``.
    original_headers: list[Message] = field(default_factory=list)
    original_text: str = ""

    @property
    def failures(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.action == FAILED]

    def worst(self) -> Finding | None:
        """The failure that matters most (a hard one over a soft one)."""
        failures = self.failures
        for finding in failures:
            if finding.bounce == HARD:
                return finding
        return failures[0] if failures else None


@dataclass(frozen=True)
class Original:
    """Which of our messages a report is about, as far as it tells."""

    verp: tuple[int, int] | None  # (workspace, delivery), from a signed token
    message_id: tuple[int, int] | None  # (delivery, campaign), unsigned
    campaign: int | None  # the X-Patron-Campaign header


# --- Helpers ---------------------------------------------------------------------------------


def _clean(value: Any, limit: int = DIAGNOSTIC_LIMIT) -> str:
    text = " ".join(str(value or "").replace("\x00", "").split())
    return text[:limit]


def _strip_type(value: Any) -> str:
    """``rfc822; ann@example.net`` -> ``ann@example.net``; ``smtp; 550 ...`` -> ``550 ...``."""
    text = _clean(value)
    kind, semicolon, rest = text.partition(";")
    if semicolon and " " not in kind.strip():
        text = rest.strip()
    return text


def _address(value: str) -> str:
    found = _ADDRESS.search(value or "")
    return found.group(1).strip(".").lower() if found else ""


def _text(part: Message) -> str:
    try:
        if isinstance(part, EmailMessage):
            content = part.get_content()
            if isinstance(content, str):
                return content
    except (LookupError, UnicodeError, AssertionError, KeyError):
        pass
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, "replace")
        except LookupError:
            return payload.decode("utf-8", "replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _header_blocks(part: Message) -> list[Message]:
    """The header blocks of a ``message/delivery-status`` or ``message/feedback-report`` part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks: list[Message] = []
        for item in payload:
            if isinstance(item, Message):
                blocks.append(item)
        # The parser may read the first block as the part's only message, and the
        # rest as its body: read the body as blocks too.
        if len(blocks) == 1:
            body = blocks[0].get_payload()
            if isinstance(body, str) and body.strip():
                blocks.extend(_parse_blocks(body))
        return blocks
    if isinstance(payload, str):
        return _parse_blocks(payload)
    return []


def _parse_blocks(text: str) -> list[Message]:
    blocks = re.split(r"\r?\n\s*\r?\n", text.replace("\r\n", "\n"))
    parser = HeaderParser()
    return [parser.parsestr(block.strip() + "\n") for block in blocks if block.strip()]


def _embedded_headers(part: Message) -> Message | None:
    """The headers of an attached original (``message/rfc822`` or ``text/rfc822-headers``)."""
    content_type = part.get_content_type()
    if content_type in ("message/rfc822", "message/global"):
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        if isinstance(payload, str):
            return HeaderParser().parsestr(payload)
    if content_type in ("text/rfc822-headers", "message/rfc822-headers", "text/rfc822-header"):
        return HeaderParser().parsestr(_text(part))
    return None


# --- Reading ---------------------------------------------------------------------------------


def read_report(raw: bytes) -> Report:
    """Read a returned message. Never raises: what cannot be read is ``UNREADABLE`` with why."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception as error:  # the parser is lenient; this is a guard, not a path
        return Report(UNREADABLE, "", problem=f"The message could not be parsed: {error}")
    subject = _clean(message.get("Subject", ""), 300)
    originals = [h for part in message.walk() if (h := _embedded_headers(part)) is not None]
    if message.get_content_type() == "multipart/report":
        param = message.get_param("report-type") or ""
        # An RFC 2231 value comes as (charset, language, value).
        report_type = (str(param[2]) if isinstance(param, tuple) else param).lower()
        if report_type == "feedback-report":
            report = _read_arf(message)
        else:
            report = _read_dsn(message)
            if report.kind == UNREADABLE:
                # A DSN part without a recipient block: the human-readable part may still do.
                text_report = _read_text(message)
                if text_report.kind != UNREADABLE:
                    report = text_report
    elif _feedback_part(message) is not None:
        # A feedback report forwarded without the multipart/report wrapper.
        report = _read_arf(message)
    elif _delivery_status_part(message) is not None:
        report = _read_dsn(message)
    else:
        report = _read_text(message)
    report.subject = subject
    report.original_headers = originals
    return report


def _delivery_status_part(message: Message) -> Message | None:
    for part in message.walk():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            return part
    return None


def _feedback_part(message: Message) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            return part
    return None


def _read_dsn(message: Message) -> Report:
    part = _delivery_status_part(message)
    if part is None:
        return Report(
            UNREADABLE, "rfc3464", problem="A delivery report without its delivery-status part."
        )
    blocks = _header_blocks(part)
    per_message = blocks[0] if blocks else None
    reporting_mta = _strip_type(per_message.get("Reporting-MTA", "")) if per_message else ""
    findings: list[Finding] = []
    for block in blocks:
        recipient = _address(
            _strip_type(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
        )
        action = _clean(block.get("Action", "")).lower()
        if not recipient and not action:
            continue  # the per-message block
        diagnostic = _strip_type(block.get("Diagnostic-Code", ""))
        status = status_in(_clean(block.get("Status", ""))) or status_in(diagnostic)
        if action not in (FAILED, DELAYED):
            if action in ("delivered", "relayed", "expanded"):
                continue  # a success notice for this recipient
            action = DELAYED if status.startswith("4") and action else FAILED
        findings.append(
            Finding(
                recipient=recipient,
                action=action,
                status=status,
                diagnostic=diagnostic,
                reporting_mta=reporting_mta,
            )
        )
    return _summed(findings, "rfc3464", "A delivery report that names no failed recipient.")


def _summed(findings: list[Finding], form: str, problem: str) -> Report:
    if any(finding.action == FAILED for finding in findings):
        return Report(BOUNCE, form, findings)
    if findings:
        return Report(DELAY, form, findings)
    return Report(UNREADABLE, form, problem=problem)


def _read_arf(message: Message) -> Report:
    part = _feedback_part(message)
    if part is None:
        return Report(UNREADABLE, "arf", problem="A feedback report without its feedback part.")
    blocks = _header_blocks(part)
    fields = blocks[0] if blocks else Message()
    feedback_type = _clean(fields.get("Feedback-Type", ""), 40).lower()
    if not feedback_type:
        return Report(UNREADABLE, "arf", problem="A feedback report without a Feedback-Type.")
    recipient = _address(_clean(fields.get("Original-Rcpt-To", "")))
    complaint = Complaint(
        feedback_type=feedback_type,
        recipient=recipient,
        user_agent=_clean(fields.get("User-Agent", ""), 200),
        reported_domain=_clean(fields.get("Reported-Domain", ""), 253),
        source_ip=_clean(fields.get("Source-IP", ""), 64),
    )
    original_from = _clean(fields.get("Original-Mail-From", ""))
    report = Report(COMPLAINT, "arf", complaint=complaint)
    report.original_text = original_from
    return report


# Where a plain-text bounce starts quoting the message it returns.
_COPY_MARKERS = re.compile(
    r"^\s*(?:-{2,}\s*)?(?:This is a copy of the message|Below this line is a copy"
    r"|Original message(?: headers)? follows?|The original message was received"
    r"|Original message headers|The header of the original message|Return-Path:"
    r"|-{3,} ?(?:Original|Forwarded) message)",
    re.I | re.M,
)
_QMAIL_BLOCK = re.compile(r"^<([^>\s]+@[^>\s]+)>:\s*\n((?:.+\n?)*)", re.M)
_POSTFIX_LINE = re.compile(
    r"^<([^>\s]+@[^>\s]+)>(?: \(expanded from <[^>]*>\))?:\s*(.+(?:\n[ \t]+.+)*)", re.M
)
_EXIM_FAILED = re.compile(
    r"(?:following address(?:\(es\)|es)? failed|address(?:\(es\)|es)? to which the message has"
    r" not yet been delivered (?:is|are)):\s*\n",
    re.I,
)
_EXIM_BLOCK = re.compile(r"^ {1,3}(\S+@[^\s:]+):?[ \t]*\n((?:(?: {4,}|\t).*\n?)*)", re.M)
_EXCHANGE = re.compile(r"following recipient\(s\) (?:cannot|could not) be reached:\s*\n", re.I)
_EXCHANGE_BLOCK = re.compile(
    r"^[ \t]{1,7}(\S+@\S+?)(?: on .*)?[ \t]*\n((?:[ \t]{8,}.*\n?)*)",
    re.M,
)
_DELAY_WORDS = re.compile(
    r"has not yet been delivered|not been delivered .*? yet|delayed|will (?:continue|keep) trying"
    r"|still trying|delivery (?:is )?delayed|warning: message",
    re.I,
)
_BOUNCE_WORDS = re.compile(
    r"could not be delivered|couldn't be delivered|wasn't delivered|was not delivered"
    r"|undeliver|delivery (?:has )?failed|permanent error|failure notice|returned mail"
    r"|unable to deliver|cannot be reached|delivery status notification"
    r"|mail delivery (?:failed|system)|non[- ]?delivery|rejected",
    re.I,
)


def _read_text(message: Message) -> Report:
    """A bounce written for people only: find the addresses and the reasons in the text."""
    texts = []
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            texts.append(_text(part))
        elif part.get_content_type() == "text/html" and not texts:
            from patron.mail.rendering import html_to_text

            texts.append(html_to_text(_text(part)))
    body = "\n".join(texts).replace("\r\n", "\n")
    marker = _COPY_MARKERS.search(body)
    head, quoted = (body[: marker.start()], body[marker.start() :]) if marker else (body, "")
    subject = _clean(message.get("Subject", ""))
    failed_header = _clean(message.get("X-Failed-Recipients", ""))
    delayed = bool(_DELAY_WORDS.search(subject)) or bool(
        _DELAY_WORDS.search(head) and not re.search(r"permanent|given up|giving up", head, re.I)
    )
    action = DELAYED if delayed else FAILED

    findings: list[Finding] = []
    form = "text"
    exim = _EXIM_FAILED.search(head)
    exchange = _EXCHANGE.search(head)
    if exim:
        form = "exim"
        for found in _EXIM_BLOCK.finditer(head[exim.end() :]):
            findings.append(_finding(found.group(1), found.group(2), action))
    elif exchange:
        form = "exchange"
        for found in _EXCHANGE_BLOCK.finditer(head[exchange.end() :]):
            findings.append(_finding(found.group(1), found.group(2), action))
    if not findings:
        blocks = list(_QMAIL_BLOCK.finditer(head))
        if blocks and re.search(r"qmail|Sorry, we were unable to deliver", head, re.I):
            form = "qmail"
            for found in blocks:
                findings.append(_finding(found.group(1), found.group(2), action))
    if not findings:
        for found in _POSTFIX_LINE.finditer(head):
            form = "postfix" if "This is the mail system" in head else "text"
            findings.append(_finding(found.group(1), found.group(2), action))
    if not findings:
        addresses = [_address(part) for part in failed_header.split(",")] if failed_header else []
        if not addresses:
            addresses = _addresses_near_failure(head)
        looks_like_bounce = bool(_BOUNCE_WORDS.search(subject) or _BOUNCE_WORDS.search(head))
        reason = _reason_lines(head)
        if addresses and (looks_like_bounce or failed_header):
            findings = [_finding(a, reason or head, action) for a in addresses if a]
        elif looks_like_bounce and reason:
            # A failure without the address: the VERP address it came to names the delivery.
            findings = [_finding("", reason, action)]
    report = _summed(
        findings,
        form,
        "No failed address or reason could be read from this message."
        if _BOUNCE_WORDS.search(subject + " " + head)
        else "This does not look like a bounce (no failure report, no failed address).",
    )
    report.original_text = quoted
    return report


def _finding(address: str, text: str, action: str) -> Finding:
    diagnostic = _clean(text)
    status = status_in(diagnostic)
    if not status:
        # qmail writes "(#5.1.1)"; Exchange "<host #5.1.1 smtp;550 ...>".
        hashed = re.search(r"#([245]\.\d{1,3}\.\d{1,3})", text)
        status = hashed.group(1) if hashed else ""
    return Finding(recipient=_address(address), action=action, status=status, diagnostic=diagnostic)


def _addresses_near_failure(text: str) -> list[str]:
    """Addresses on the lines of a text that speak of the failure (a short auto-reply)."""
    found: list[str] = []
    for line in text.splitlines():
        if _BOUNCE_WORDS.search(line) or _FULL.search(line) or _HARD.search(line):
            for match in _ADDRESS.finditer(line):
                address = match.group(1).strip(".").lower()
                if address not in found and not address.startswith(
                    ("mailer-daemon@", "postmaster@")
                ):
                    found.append(address)
    return found


def _reason_lines(text: str) -> str:
    """The lines of a text that give a reason (codes, or the words ``classify`` knows)."""
    lines = [
        line.strip()
        for line in text.splitlines()
        if _STATUS.search(line)
        or _BASIC_CODE.search(line)
        or _FULL.search(line)
        or _HARD.search(line)
        or _TEMPORARY.search(line)
    ]
    return " ".join(lines)


# --- Which message ---------------------------------------------------------------------------

_VERP = re.compile(r"bounce\+[A-Za-z0-9_-]+@[A-Za-z0-9.-]+", re.I)
_OUR_MESSAGE_ID = re.compile(r"<?d(\d{1,19})\.c(\d{1,19})@[^>\s]+>?")
_CAMPAIGN_HEADER = re.compile(r"^X-Patron-Campaign:\s*(\d{1,19})", re.I | re.M)


def original_of(report: Report, raw: bytes = b"") -> Original:
    """Our delivery a report names: the VERP token of the original's return path (or of the
    ARF's Original-Mail-From), the Message-ID and X-Patron-Campaign of the original."""
    verp = message_id = None
    campaign = None
    texts: list[str] = []
    for headers in report.original_headers:
        for name in ("Return-Path", "Message-ID", "X-Patron-Campaign"):
            for value in headers.get_all(name) or []:
                texts.append(f"{name}: {value}")
    texts.append(report.original_text)
    joined = "\n".join(texts)
    for found in _VERP.finditer(joined):
        verp = mime.parse_verp(found.group(0))
        if verp is not None:
            break
    ids = _OUR_MESSAGE_ID.search(joined)
    if ids:
        message_id = (int(ids.group(1)), int(ids.group(2)))
    header = _CAMPAIGN_HEADER.search(joined)
    if header:
        campaign = int(header.group(1))
    return Original(verp=verp, message_id=message_id, campaign=campaign)
