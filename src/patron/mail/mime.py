"""MIME assembly for outgoing mail, by hand, for speed.

The standard library's ``email.message.EmailMessage`` costs about a
millisecond per message (policy objects, header registries, a generator
walking the tree); a personalised campaign needs only one shape of message,
so ``build_message`` writes its bytes directly: a handful of string joins, and
the bodies encoded by ``binascii`` (C). ``bench/bench_mime.py`` measures both.

What comes out (RFC 5322, 2045-2047):

- CRLF line ends, every line shorter than 998 octets (header values are
  folded at spaces, bodies are quoted-printable or base64 with 76-character
  lines);
- headers with non-ASCII text as RFC 2047 encoded words (UTF-8, base64),
  split on character boundaries, never more than 76 characters a line;
- display names quoted when they need it, domains of addresses in punycode
  (IDNA 2008 / UTS 46); a non-ASCII local part stays UTF-8 (RFC 6532) and
  needs a server that offers SMTPUTF8;
- CR and LF inside header values are replaced by spaces: no header injection;
- ASCII bodies with lines under 998 octets as they are (``7bit``: no
  encoding cost, readable); other UTF-8 bodies in quoted-printable when they
  are mostly ASCII (HTML markup with a few accents), base64 when
  quoted-printable would be larger (Chinese, Vietnamese ...). The multipart
  boundary starts with ``=_``, which neither encoding can produce, and a 7bit
  part that contains it is quoted-printable instead.
"""

from __future__ import annotations

import binascii
import time
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache

from django.conf import settings

from patron.mail import tokens

CRLF = "\r\n"
# Characters of an RFC 5322 "atom" besides letters and digits: a display name of
# only these (and spaces) needs no quotes.
_ATEXT_SPECIALS = frozenset("!#$%&'*+-/=?^_`{|}~ ")
_ATEXT = (
    frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") | _ATEXT_SPECIALS
)
_ENCODED_WORD_OVERHEAD = len("=?utf-8?b??=")
MAX_LINE = 78  # RFC 5322's "SHOULD"; the hard limit is 998


# --- Identifiers --------------------------------------------------------------------------


def message_id_for(key: str) -> str:
    """``<key@PATRON_MAIL_DOMAIN>``: the same key always gives the same Message-ID."""
    return f"<{key}@{settings.MAIL_DOMAIN}>"


def verp_address(workspace_id: int, delivery_id: int) -> str:
    """The return path of one delivery: bounces to it name the delivery they are about."""
    token = tokens.sign("verp", workspace_id, delivery_id)
    return f"bounce+{token}@{settings.RETURN_PATH_DOMAIN}"


def parse_verp(address: str) -> tuple[int, int] | None:
    """(workspace_id, delivery_id) of a VERP address ``verp_address`` made, else None.

    Accepts the address with or without angle brackets; the domain is not
    checked (the return path domain may have changed since), the signature is.
    """
    if not isinstance(address, str):
        return None
    address = address.strip().removeprefix("<").removesuffix(">")
    local, at, _domain = address.rpartition("@")
    if not at:
        return None
    prefix, plus, token = local.partition("+")
    if not plus or prefix.lower() != "bounce":
        return None
    values = tokens.unsign("verp", token)
    if values is None or len(values) != 2:
        return None
    return values[0], values[1]


# --- Headers ------------------------------------------------------------------------------


def _clean(value: str) -> str:
    if "\r" in value or "\n" in value:
        value = value.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    return value


def _fold_ascii(name: str, value: str) -> str:
    """``Name: value`` with CRLF, folded at spaces to keep lines near 78 characters."""
    line = f"{name}: {value}"
    if len(line) <= MAX_LINE:
        return line + CRLF
    words = value.split(" ")
    lines: list[str] = []
    current = f"{name}: {words[0]}"
    for word in words[1:]:
        # Never fold before an empty word: a folded line of only spaces is not allowed.
        if word and len(current) + 1 + len(word) > MAX_LINE:
            lines.append(current)
            current = f" {word}"
        else:
            current = f"{current} {word}"
    lines.append(current)
    if any(len(part) >= 998 for part in lines):
        raise ValueError(f"the {name} header has a word of 998 characters or more")
    return CRLF.join(lines) + CRLF


def _encoded_words(text: str, first_room: int) -> list[str]:
    """``text`` as RFC 2047 base64 encoded words, each at most 75 characters (the
    first at most ``first_room``), never splitting a character's UTF-8 bytes."""
    words: list[str] = []
    room = first_room
    chunk: list[str] = []
    size = 0
    for char in text:
        length = len(char.encode("utf-8"))
        limit = (room - _ENCODED_WORD_OVERHEAD) // 4 * 3
        if chunk and size + length > limit:
            words.append(_word("".join(chunk)))
            chunk, size, room = [], 0, 75
        chunk.append(char)
        size += length
    if chunk:
        words.append(_word("".join(chunk)))
    return words


def _word(text: str) -> str:
    encoded = binascii.b2a_base64(text.encode("utf-8"), newline=False).decode("ascii")
    return f"=?utf-8?b?{encoded}?="


def _encode_text(name: str, value: str) -> str:
    """An unstructured header (Subject, X-*) with its CRLF."""
    value = _clean(value)
    if value.isascii():
        return _fold_ascii(name, value)
    first_room = max(76 - len(name) - 2, _ENCODED_WORD_OVERHEAD + 4)
    words = _encoded_words(value, first_room)
    return f"{name}: " + f"{CRLF} ".join(words) + CRLF


@lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str:
    try:
        import idna

        return str(idna.encode(domain, uts46=True).decode("ascii"))
    except (ImportError, UnicodeError, ValueError):
        return domain.encode("idna").decode("ascii")


def ascii_address(address: str) -> str:
    """``address`` with its domain in punycode (the local part is left as it is)."""
    address = _clean(address).strip()
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    return f"{local}@{_ascii_domain(domain)}"


def _phrase(name: str) -> str | None:
    """An ASCII display name as an atom sequence or a quoted string; None if not ASCII."""
    if not name.isascii():
        return None
    if all(char in _ATEXT for char in name):
        return name
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _encode_address(name: str, display_name: str, address: str) -> str:
    """``From``/``To``/``Reply-To`` with one mailbox, with its CRLF."""
    address = ascii_address(address)
    display_name = _clean(display_name).strip()
    if not display_name:
        return _fold_ascii(name, address) if address.isascii() else f"{name}: {address}{CRLF}"
    phrase = _phrase(display_name)
    if phrase is not None:
        line = f"{name}: {phrase} <{address}>"
        if len(line) <= MAX_LINE or (len(line) < 998 and " " not in phrase):
            return line + CRLF
        return _fold_ascii(name, f"{phrase} <{address}>")
    first_room = max(76 - len(name) - 2, _ENCODED_WORD_OVERHEAD + 4)
    words = _encoded_words(display_name, first_room)
    return f"{name}: " + f"{CRLF} ".join(words) + f"{CRLF} <{address}>{CRLF}"


_date_cache: tuple[int, str] = (0, "")


def _date_header(date: datetime | None) -> str:
    global _date_cache
    if date is not None:
        if date.tzinfo is None:
            date = date.replace(tzinfo=UTC)
        return format_datetime(date)
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, format_datetime(datetime.fromtimestamp(now, UTC)))
    return _date_cache[1]


# --- Bodies -------------------------------------------------------------------------------


def _body(text: str, boundary: str = "") -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, encoded bytes with CRLF line ends) of a text part.

    The bytes hold exactly the content: they end with a CRLF only when the
    text ends with a line end. The caller adds the CRLF that ends the last
    line (in a multipart message it belongs to the boundary that follows,
    RFC 2046 5.1.1, and is not part of the content).
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\n", "\r\n")
    raw = text.encode("utf-8")
    if text.isascii():
        # ASCII with lines under 998 octets goes as it is (7bit): nothing to
        # encode, and it stays readable. The boundary must not occur in it.
        lines = raw.split(b"\r\n")
        if max(map(len, lines)) < 998 and (not boundary or boundary.encode() not in raw):
            return "7bit", raw
        if len(raw.translate(None, _CONTROL)) == len(raw):
            return "quoted-printable", _quoted_printable_ascii(lines)
    # Quoted-printable writes each non-ASCII byte as three characters; base64 costs a
    # third more for every byte. UTF-8 spends one to three extra bytes per non-ASCII
    # character, so len(raw) - len(text) estimates how many bytes QP would escape.
    if (len(raw) - len(text)) * 8 > len(raw):
        encoded = binascii.b2a_base64(raw, newline=False)
        lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
        return "base64", b"\r\n".join(lines)
    encoded = binascii.b2a_qp(raw, quotetabs=False, istext=True, header=False)
    if b"\r\n" not in raw:
        # With no line end in the text, binascii writes its soft breaks as bare LF.
        encoded = encoded.replace(b"\n", b"\r\n")
    return "quoted-printable", encoded


# ASCII control characters other than tab, CR and LF: quoted-printable must escape them.
_CONTROL = bytes([*range(0, 9), 11, 12, *range(14, 32), 127])


def _quoted_printable_ascii(lines: list[bytes]) -> bytes:
    """Quoted-printable of ASCII lines without control characters.

    What binascii.b2a_qp does, for the common case of HTML with long lines,
    at a quarter of its cost: only ``=`` and trailing whitespace need escaping,
    and lines are cut at 75 characters plus a soft break, never inside an
    escape.
    """
    out: list[bytes] = []
    for line in lines:
        if b"=" in line:
            line = line.replace(b"=", b"=3D")
        if line[-1:] == b" ":
            line = line[:-1] + b"=20"
        elif line[-1:] == b"\t":
            line = line[:-1] + b"=09"
        length = len(line)
        if length <= 76:
            out.append(line)
            continue
        start = 0
        while length - start > 76:
            cut = start + 75
            if line[cut - 1] == 61:  # "=" just before the cut
                cut -= 1
            elif line[cut - 2] == 61:  # "=3" before it, "D" after
                cut -= 2
            out.append(line[start:cut] + b"=")
            start = cut
        out.append(line[start:])
    return b"\r\n".join(out)


def _part_header(subtype: str, encoding: str) -> str:
    return (
        f"Content-Type: text/{subtype}; charset=utf-8{CRLF}"
        f"Content-Transfer-Encoding: {encoding}{CRLF}"
    )


# --- The message --------------------------------------------------------------------------


def build_message(
    *,
    from_name: str,
    from_email: str,
    to_email: str,
    to_name: str = "",
    subject: str,
    html: str,
    text: str,
    message_id: str,
    reply_to: str = "",
    headers: Sequence[tuple[str, str]] = (),
    date: datetime | None = None,
) -> bytes:
    """The whole message, ready for DATA: headers, then text and HTML alternatives.

    ``message_id`` is the full header value (``message_id_for(key)``). ``headers``
    follow the standard ones in the given order; their names must be ASCII
    header names, their values are encoded like the subject.
    """
    head = [
        "MIME-Version: 1.0" + CRLF,
        f"Date: {_date_header(date)}{CRLF}",
        f"Message-ID: {_clean(message_id)}{CRLF}",
        _encode_address("From", from_name, from_email),
        _encode_address("To", to_name, to_email),
        _encode_text("Subject", subject),
    ]
    if reply_to:
        head.append(_encode_address("Reply-To", "", reply_to))
    for name, value in headers:
        if not name.isascii() or not name or any(c in name for c in ": \r\n\t"):
            raise ValueError(f"not a header name: {name!r}")
        head.append(_encode_text(name, value))

    if text and html:
        boundary = f"=_{zlib.crc32(message_id.encode('utf-8', 'replace')):08x}"
        text_encoding, text_body = _body(text, boundary)
        html_encoding, html_body = _body(html, boundary)
        head.append(
            f'Content-Type: multipart/alternative; boundary="{boundary}"{CRLF}{CRLF}'
            f"--{boundary}{CRLF}{_part_header('plain', text_encoding)}{CRLF}"
        )
        # Each delimiter starts with its own CRLF: a part's content ends just
        # before it, so a text that ends with a line end keeps it.
        middle = f"{CRLF}--{boundary}{CRLF}{_part_header('html', html_encoding)}{CRLF}"
        end = f"{CRLF}--{boundary}--{CRLF}"
        return b"".join(
            (
                "".join(head).encode("utf-8"),
                text_body,
                middle.encode("ascii"),
                html_body,
                end.encode("ascii"),
            )
        )
    subtype, content = ("html", html) if html else ("plain", text)
    encoding, body = _body(content)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"  # the message ends with a line end
    head.append(_part_header(subtype, encoding) + CRLF)
    return "".join(head).encode("utf-8") + body
