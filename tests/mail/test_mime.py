# ruff: noqa: RUF001 - full-width punctuation is how Chinese is written
"""build_message: what mail servers and mail readers need, in any language."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.header import decode_header, make_header

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from patron.mail.mime import build_message, message_id_for, parse_verp, verp_address

SAMPLES = {
    "chinese": ("王小明", "您好，歡迎訂閱我們的電子報！🎉", "親愛的王先生：\n感謝您的訂閱。\n"),
    "vietnamese": (
        "Nguyễn Thị Lan",
        "Chào bạn, ưu đãi đặc biệt hôm nay",
        "Xin chào Lan,\nCảm ơn bạn!",
    ),
    "indonesian": ("Budi Santoso", "Penawaran spesial untuk Anda", "Halo Budi,\nTerima kasih."),
    "emoji": ("🌸 Flower Shop 🌸", "👋🏽 Hi 👨‍👩‍👧‍👦 family — 50% off 🔥", "🎁🎁🎁\n"),
    "mixed": ("Zoë Ñúñez 李 محمد", "Ünïcödé ✓ Привет 你好 مرحبا こんにちは", "Mixed: ĀĒĪŌŪ αβγ\n"),
}


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def build(**overrides):
    values = {
        "from_name": "Acme News",
        "from_email": "news@acme.example",
        "to_email": "lan@example.vn",
        "to_name": "Lan",
        "subject": "Hello",
        "html": "<p>Hello <b>Lan</b></p>",
        "text": "Hello Lan",
        "message_id": message_id_for("d42"),
    }
    values.update(overrides)
    return build_message(**values)


def display_name(raw: bytes, header: str) -> str:
    """The display name of ``header`` decoded as RFC 2047 says: whitespace between
    encoded words is dropped (Python's address parser keeps a space there)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    lines = head.split(f"\r\n{header}: ", 1)[1].split("\r\n")
    folded = [lines[0]]
    for line in lines[1:]:
        if not line.startswith(" "):
            break
        folded.append(line)
    value = "\r\n".join(folded).rsplit("<", 1)[0]
    if "=?utf-8?b?" not in value:
        return str(parse(raw)[header].addresses[0].display_name)
    return str(make_header(decode_header(value)))


def lines_of(raw: bytes) -> list[bytes]:
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF"
    assert b"\r" not in raw.replace(b"\r\n", b""), "bare CR"
    return raw[:-2].split(b"\r\n")


def test_headers_in_order_and_multipart_alternative(settings):
    settings.MAIL_DOMAIN = "mail.acme.example"
    raw = build(
        reply_to="support@acme.example",
        headers=[("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"), ("Precedence", "bulk")],
        date=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    )
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    names = [line.split(":", 1)[0] for line in head.split("\r\n") if not line.startswith(" ")]
    assert names == [
        "MIME-Version",
        "Date",
        "Message-ID",
        "From",
        "To",
        "Subject",
        "Reply-To",
        "List-Unsubscribe-Post",
        "Precedence",
        "Content-Type",
    ]
    message = parse(raw)
    assert message["Message-ID"] == "<d42@mail.acme.example>"
    assert message["Date"] == "Sun, 01 Mar 2026 09:30:00 +0000"
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert message.get_body(("plain",)).get_content().rstrip("\r\n") == "Hello Lan"
    assert message.get_body(("html",)).get_content().rstrip("\r\n") == "<p>Hello <b>Lan</b></p>"
    assert message.defects == []


def test_one_part_when_the_other_is_empty():
    message = parse(build(text=""))
    assert message.get_content_type() == "text/html"
    message = parse(build(html=""))
    assert message.get_content_type() == "text/plain"
    assert message.get_content().rstrip() == "Hello Lan"


@pytest.mark.parametrize("language", SAMPLES)
def test_any_language_is_encoded_and_parses_back(language):
    name, subject, text = SAMPLES[language]
    html = f"<html><body><h1>{subject}</h1><p>{text}</p></body></html>"
    raw = build(from_name=name, to_name=name, subject=subject, text=text, html=html)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii(), "non-ASCII header text must be RFC 2047 encoded"
    assert (b"=?utf-8?b?" in head) == (not subject.isascii())
    assert all(len(line) <= 76 for line in head.split(b"\r\n"))
    assert all(len(line) < 998 for line in lines_of(raw))
    message = parse(raw)
    assert message["Subject"] == subject
    assert message["From"].addresses[0].display_name == name
    assert message["To"].addresses[0].display_name == name
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == text
    assert message.get_body(("html",)).get_content().replace("\r\n", "\n").rstrip("\n") == html


def test_mostly_ascii_bodies_are_quoted_printable_and_cjk_base64():
    raw = build(text="Hello, Lan! Just one ü.", html="你好" * 500)
    assert b"Content-Transfer-Encoding: quoted-printable" in raw
    assert b"Content-Transfer-Encoding: base64" in raw
    html_part = raw.split(b"Content-Transfer-Encoding: base64\r\n\r\n")[1]
    assert len(html_part) < len(("你好" * 500).encode()) * 1.4


def test_long_lines_and_very_long_bodies_are_wrapped():
    html = "<td>" + "x" * 5000 + "</td>" + "<p>Lê Thị Hồng</p>" * 2000
    raw = build(html=html, text="a" * 3000)
    assert max(len(line) for line in lines_of(raw)) <= 76
    message = parse(raw)
    assert message.get_body(("html",)).get_content().rstrip("\r\n") == html


def test_international_domain_names_become_punycode():
    raw = build(from_email="news@bücher.example", to_email="kunde@münchen.de")
    message = parse(raw)
    assert message["From"].addresses[0].domain == "xn--bcher-kva.example"
    assert message["To"].addresses[0].addr_spec == "kunde@xn--mnchen-3ya.de"


def test_header_injection_is_impossible():
    raw = build(
        subject="Hi\r\nBcc: victim@example.com",
        to_name="Eve\nX-Evil: 1",
        headers=[("X-Patron-Campaign", "7\r\nBcc: other@example.com")],
    )
    message = parse(raw)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert message["Subject"] == "Hi Bcc: victim@example.com"


@pytest.mark.parametrize("bad", ["Bad Name", "X:Y", "", "Ünï"])
def test_header_names_are_checked(bad):
    with pytest.raises(ValueError):
        build(headers=[(bad, "value")])


def test_display_names_with_specials_are_quoted():
    raw = build(from_name='Acme, Inc. "Best" \\ news')
    message = parse(raw)
    assert message["From"].addresses[0].display_name == 'Acme, Inc. "Best" \\ news'
    assert message["From"].addresses[0].addr_spec == "news@acme.example"


def test_long_ascii_headers_are_folded_at_spaces():
    value = ", ".join(f"<https://example.com/unsubscribe/{n}/abcdefghijklmnop>" for n in range(5))
    raw = build(headers=[("List-Unsubscribe", value)], subject="word " * 60)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    message = parse(raw)
    assert message["List-Unsubscribe"] == value
    assert message["Subject"] == ("word " * 60).strip() or message["Subject"] == "word " * 60


def test_lines_starting_with_a_dot_survive():
    raw = build(text=".\n.hidden\nend", html="")
    assert parse(raw).get_content().replace("\r\n", "\n").rstrip("\n") == ".\n.hidden\nend"


def test_the_message_id_and_the_output_are_deterministic(settings):
    settings.MAIL_DOMAIN = "m.example"
    assert message_id_for("42") == "<42@m.example>"
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert build(date=when) == build(date=when)


def test_verp_addresses_round_trip(settings):
    settings.RETURN_PATH_DOMAIN = "bounces.example"
    address = verp_address(3, 1_234_567)
    assert address.startswith("bounce+") and address.endswith("@bounces.example")
    assert parse_verp(address) == (3, 1_234_567)
    assert parse_verp(f"<{address}>") == (3, 1_234_567)
    assert parse_verp(address.replace("bounce+", "BOUNCE+")) == (3, 1_234_567)


@pytest.mark.parametrize(
    "address",
    ["", "bounce@example.com", "bounce+@x", "bounce+abc@x", "other+AAAAAAAAAAAAAAA@x", "@@@"],
)
def test_parse_verp_refuses_what_it_did_not_make(address):
    assert parse_verp(address) is None


def test_a_verp_token_of_another_kind_is_refused(settings):
    from patron.mail import tokens

    token = tokens.sign("unsub", 3, 4)
    assert parse_verp(f"bounce+{token}@{settings.RETURN_PATH_DOMAIN}") is None


text_values = st.text(
    # Unicode spaces other than " " are left out: the parser folds them into " ".
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")) | st.just(" "),
    min_size=1,
    max_size=120,
).filter(lambda s: s.strip() == s and "  " not in s)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=text_values, name=text_values, body=st.text(min_size=1, max_size=2000))
@example(subject="s", name="n", body="\n")
@example(subject="s", name="n", body=" \t\n ")
@example(subject="s", name="n", body="x" * 1000 + "\n")  # quoted-printable
@example(subject="s", name="n", body="你好\n\n")  # base64
def test_whatever_the_text_it_parses_back(subject, name, body):
    body = body.replace("\r", "")
    assume(body)  # an empty text part is left out of the message
    raw = build(subject=subject, from_name=name, text=body, html=f"<p>{body}</p>")
    assert all(len(line) < 998 for line in lines_of(raw))
    assert raw.split(b"\r\n\r\n", 1)[0].isascii()
    message = parse(raw)
    assert message["Subject"] == subject
    assert display_name(raw, "From") == name
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == body


@pytest.mark.parametrize(
    "text",
    ["\n", "\n\n", "   ", "Hello\n", "Hello\n\n", "=3D " * 30 + "\n", "Chào bạn\n", "你好\n"],
)
def test_a_part_keeps_its_last_line_end(text):
    """The CRLF before a boundary belongs to the boundary (RFC 2046 5.1.1): a text
    that ends with a line end needs one more, or the reader loses it."""
    message = parse(build(text=text, html=f"<p>{text}</p>"))
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == text
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert html == f"<p>{text}</p>"


def test_plain_ascii_bodies_go_as_they_are():
    raw = build(html="<p>Hello\n  <b>Lan</b></p>", text="Hello Lan\n= sign")
    assert raw.count(b"Content-Transfer-Encoding: 7bit") == 2
    assert b"<p>Hello\r\n  <b>Lan</b></p>" in raw
    assert parse(raw).get_body(("plain",)).get_content().rstrip("\r\n") == "Hello Lan\r\n= sign"


def test_a_body_containing_the_boundary_is_encoded():
    first = build()
    boundary = first.split(b'boundary="', 1)[1].split(b'"', 1)[0].decode()
    text = f"Trying to break out:\n--{boundary}\nContent-Type: text/html\n\n<script>"
    raw = build(text=text)
    assert raw.count(f"--{boundary}".encode()) == 3  # two parts and the end, nothing more
    message = parse(raw)
    assert len(list(message.iter_parts())) == 2
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip() == text


ascii_text = st.lists(
    st.sampled_from([*'ab =.\t<>"/\n', "=3D", "   ", "x" * 80]), max_size=300
).map("".join)


@settings(max_examples=200, deadline=None)
@given(body=ascii_text)
def test_ascii_with_long_lines_is_quoted_printable_and_parses_back(body):
    body = "x" * 1000 + "\n" + body  # at least one line too long for 7bit
    raw = build(text=body, html="")
    assert b"Content-Transfer-Encoding: quoted-printable" in raw
    assert max(len(line) for line in lines_of(raw)) <= 76
    decoded = parse(raw).get_content().replace("\r\n", "\n")
    assert decoded.rstrip("\n") == body.rstrip("\n")
