"""Transports: capture into the Outbox, and SMTP through real servers on loopback."""

from __future__ import annotations

import email
import email.policy

import pytest

from patron.mail import smtp
from patron.mail.mime import build_message, message_id_for, verp_address
from patron.mail.models import OutboxMessage
from patron.mail.transports import (
    CaptureTransport,
    Outcome,
    Outgoing,
    SmtpTransport,
    transport_for,
)
from tests.factories import WorkspaceFactory
from tests.mail.smtp_servers import MailServer, free_port, self_signed


def outgoing(
    key: str, to: str, *, workspace_id: int | None = None, subject: str = "Hi"
) -> Outgoing:
    data = build_message(
        from_name="Acme 新闻",
        from_email="news@acme.example",
        to_email=to,
        subject=subject,
        html=f"<p>{subject}</p>\n.\n<p>.leading dot</p>",
        text=f"{subject}\n.\n.leading dot",
        message_id=message_id_for(key),
    )
    return Outgoing(key, "bounce+x@bounces.example", [to], data, workspace_id)


def transport(*urls: str) -> SmtpTransport:
    # A pool of its own per test: no connection or weight state leaks between tests.
    return SmtpTransport(smtp.parse_smtp_urls(list(urls)), pool=smtp.ConnectionPool())


@pytest.fixture
def server():
    with MailServer() as running:
        yield running


# --- Capture ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_capture_keeps_the_batch_in_the_outbox_with_each_workspace(django_assert_max_num_queries):
    first, second = WorkspaceFactory(), WorkspaceFactory()
    batch = [
        outgoing("1", "lan@example.vn", workspace_id=first.pk, subject="Chào bạn 👋"),
        outgoing("2", "wang@example.cn", workspace_id=second.pk, subject="歡迎"),
        outgoing("3", "admin@example.com", workspace_id=None),
    ]
    with django_assert_max_num_queries(1):
        results = CaptureTransport().send(batch)
    assert [(r.key, r.outcome) for r in results] == [
        ("1", Outcome.SENT),
        ("2", Outcome.SENT),
        ("3", Outcome.SENT),
    ]
    rows = {row.message_id: row for row in OutboxMessage.objects.all()}
    assert rows[message_id_for("1")].workspace == first
    assert rows[message_id_for("1")].subject == "Chào bạn 👋"
    assert rows[message_id_for("1")].to == ["lan@example.vn"]
    assert "Chào bạn 👋" in rows[message_id_for("1")].text_body
    assert rows[message_id_for("2")].workspace == second
    assert rows[message_id_for("3")].workspace is None
    assert bytes(rows[message_id_for("2")].raw) == batch[1].data


@pytest.mark.django_db
def test_the_installation_transport_is_capture_by_default():
    assert isinstance(transport_for(None), CaptureTransport)


def test_the_installation_transport_can_be_smtp(settings, server):
    settings.EMAIL_TRANSPORT = "smtp"
    settings.SMTP_URLS = [server.url(weight=2), "smtp://u:p%40ss@relay.example?tls=starttls"]
    chosen = transport_for(None)
    assert isinstance(chosen, SmtpTransport)
    assert [(s.host, s.port, s.weight, s.tls) for s in chosen.servers] == [
        ("127.0.0.1", server.port, 2, "none"),
        ("relay.example", 587, 1, "starttls"),
    ]
    assert chosen.servers[1].password == "p@ss"


# --- SMTP outcomes --------------------------------------------------------------------------


@pytest.mark.parametrize("pipelining", [True, False])
def test_smtp_outcomes_per_message(pipelining):
    with MailServer(pipelining=pipelining) as server:
        batch = [
            outgoing("ok1", "lan@example.vn", subject="Chào 👋"),
            outgoing("soft", "tempfail@example.com"),
            outgoing("ok2", "wang@例え.jp", subject="歡迎"),
            outgoing("hard", "reject@example.com"),
            outgoing("nouser", "unknown@example.com"),
            outgoing("busy", "busy@example.com"),
            outgoing("ok3", "budi@example.id"),
        ]
        results = transport(server.url()).send(batch)
    assert [r.key for r in results] == [m.key for m in batch]
    outcome = {r.key: r for r in results}
    assert outcome["ok1"].outcome == outcome["ok2"].outcome == outcome["ok3"].outcome == "sent"
    assert outcome["ok1"].code == 250 and "queued" in outcome["ok1"].reply
    assert (outcome["soft"].outcome, outcome["soft"].code) == (Outcome.RETRY, 451)
    assert (outcome["busy"].outcome, outcome["busy"].code) == (Outcome.RETRY, 450)
    assert (outcome["hard"].outcome, outcome["hard"].code) == (Outcome.FAILED, 554)
    assert outcome["hard"].reply == "5.7.1 Message rejected as spam"
    assert (outcome["nouser"].outcome, outcome["nouser"].code) == (Outcome.FAILED, 550)
    assert "No such user" in outcome["nouser"].reply
    received = {m.recipients[0]: m for m in server.messages}
    assert set(received) == {"lan@example.vn", "wang@xn--r8jz45g.jp", "budi@example.id"}
    assert all(m.mail_from == "bounce+x@bounces.example" for m in server.messages)
    # Dot-stuffing undone by the server: the bytes arrive as built.
    sent = {m.key: m.data for m in batch}
    assert received["lan@example.vn"].data == sent["ok1"]
    parsed = email.message_from_bytes(
        received["wang@xn--r8jz45g.jp"].data, policy=email.policy.default
    )
    assert parsed["Subject"] == "歡迎"
    assert parsed["From"].addresses[0].display_name == "Acme 新闻"


def test_many_messages_over_several_connections_each_once(server):
    batch = [outgoing(str(n), f"person{n}@example.com") for n in range(300)]
    results = transport(server.url(connections=4)).send(batch)
    assert all(r.outcome == Outcome.SENT for r in results)
    assert sorted(m.recipients[0] for m in server.messages) == sorted(
        f"person{n}@example.com" for n in range(300)
    )
    assert server.handler.connections == 4


def test_connections_are_pooled_between_sends(server):
    sender = transport(server.url(connections=1))
    for round_ in range(3):
        results = sender.send([outgoing(f"{round_}-{n}", f"p{n}@example.com") for n in range(5)])
        assert all(r.outcome == Outcome.SENT for r in results)
    assert len(server.messages) == 15
    assert server.handler.connections == 1


def test_a_connection_dropped_mid_data_is_retry_and_the_rest_is_sent_once(server):
    batch = [outgoing("a", "a@example.com"), outgoing("drop", "drop@example.com")]
    batch += [outgoing(f"after{n}", f"after{n}@example.com") for n in range(5)]
    results = transport(server.url(connections=1)).send(batch)
    outcome = {r.key: r for r in results}
    assert outcome["drop"].outcome == Outcome.RETRY
    assert outcome["drop"].code is None and "closed the connection" in outcome["drop"].reply
    assert all(outcome[key].outcome == Outcome.SENT for key in outcome if key != "drop"), results
    recipients = [m.recipients[0] for m in server.messages]
    assert sorted(recipients) == sorted(
        ["a@example.com", *(f"after{n}@example.com" for n in range(5))]
    )


def test_an_unreachable_server_fails_over_to_the_next(server):
    dead = f"smtp://127.0.0.1:{free_port()}"
    results = transport(dead, server.url()).send(
        [outgoing(str(n), f"p{n}@example.com") for n in range(20)]
    )
    assert all(r.outcome == Outcome.SENT for r in results)
    assert len(server.messages) == 20


def test_when_no_server_is_reachable_everything_is_retry():
    results = transport(f"smtp://127.0.0.1:{free_port()}").send(
        [outgoing("1", "a@example.com"), outgoing("2", "b@example.com")]
    )
    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.RETRY]
    assert all("refused" in r.reply.lower() for r in results)


def test_weights_share_the_messages():
    with MailServer() as heavy, MailServer() as light:
        sender = transport(heavy.url(weight=3), light.url(weight=1))
        for round_ in range(10):
            batch = [outgoing(f"{round_}-{n}", f"p{n}@example.com") for n in range(4)]
            assert all(r.outcome == Outcome.SENT for r in sender.send(batch))
        assert (len(heavy.messages), len(light.messages)) == (30, 10)


def test_starttls_and_auth(tmp_path):
    files = self_signed(tmp_path)
    with MailServer(tls_files=files, credentials=("mailer", "s3cret:/@")) as server:
        url = f"smtp://mailer:s3cret%3A%2F%40@127.0.0.1:{server.port}?tls=starttls&verify=0"
        results = transport(url).send(
            [outgoing("1", "a@example.com"), outgoing("2", "b@example.com")]
        )
        assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
        assert len(server.messages) == 2

        wrong = f"smtp://mailer:wrong@127.0.0.1:{server.port}?tls=starttls&verify=0"
        results = transport(wrong).send([outgoing("3", "c@example.com")])
        assert results[0].outcome == Outcome.RETRY and "535" in results[0].reply

        # The certificate is checked unless verify=0 says otherwise.
        strict = f"smtp://mailer:s3cret%3A%2F%40@127.0.0.1:{server.port}?tls=starttls"
        results = transport(strict).send([outgoing("4", "d@example.com")])
        assert results[0].outcome == Outcome.RETRY and "certificate" in results[0].reply.lower()
        assert len(server.messages) == 2


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_implicit_tls(tmp_path):
    files = self_signed(tmp_path)
    with MailServer(tls_files=files, implicit_tls=True, credentials=("u", "p")) as server:
        url = f"smtps://u:p@127.0.0.1:{server.port}?verify=0"
        results = transport(url).send([outgoing("1", "a@example.com")])
        assert results[0].outcome == Outcome.SENT, results
        assert len(server.messages) == 1
        # A client speaking plain SMTP to a TLS port hears nothing and gives up.
        plain = transport(f"smtp://u:p@127.0.0.1:{server.port}?timeout=1")
        assert plain.send([outgoing("2", "b@example.com")])[0].outcome == Outcome.RETRY


def test_a_non_ascii_local_part_needs_smtputf8():
    with MailServer(smtputf8=False) as server:
        results = transport(server.url()).send([outgoing("1", "josé@example.com")])
        assert results[0].outcome == Outcome.FAILED and "SMTPUTF8" in results[0].reply
    with MailServer(smtputf8=True) as server:
        results = transport(server.url()).send([outgoing("1", "josé@example.com")])
        assert results[0].outcome == Outcome.SENT
        assert server.messages[0].recipients == ["josé@example.com"]


@pytest.mark.parametrize(
    "url",
    [
        "http://host",
        "smtp://",
        "smtp://host?tls=maybe",
        "smtp://host?weight=0",
        "smtp://host?color=red",
        "smtp://host:notaport",
    ],
)
def test_bad_smtp_urls_say_what_is_wrong(url):
    with pytest.raises(smtp.SmtpUrlInvalid):
        smtp.parse_smtp_urls(url)


def test_smtp_url_defaults():
    plain, starttls, tls = smtp.parse_smtp_urls(
        "smtp://mx.example, smtp+starttls://a:b@relay.example, smtps://ssl.example"
    )
    assert (plain.port, plain.tls, plain.weight) == (25, "none", 1)
    assert (starttls.port, starttls.tls, starttls.username) == (587, "starttls", "a")
    assert (tls.port, tls.tls) == (465, "tls")


def test_verp_envelope_sender_reaches_the_server(server, settings):
    settings.RETURN_PATH_DOMAIN = "bounces.example"
    message = outgoing("1", "a@example.com")
    message.envelope_from = verp_address(3, 99)
    transport(server.url()).send([message])
    assert server.messages[0].mail_from == verp_address(3, 99)


def test_every_script_survives_an_smtp_conversation(server):
    from tests.mail.test_mime import SAMPLES, display_name

    batch = []
    for number, (language, (name, subject, text)) in enumerate(SAMPLES.items()):
        data = build_message(
            from_name=name,
            from_email="news@bücher.example",
            to_email=f"{language}@例え.jp",
            to_name=name,
            subject=subject,
            html=f"<h1>{subject}</h1>\n<p>{text}</p>",
            text=text,
            message_id=message_id_for(f"lang{number}"),
        )
        batch.append(Outgoing(language, "bounce@bounces.example", [f"{language}@例え.jp"], data))
    results = transport(server.url()).send(batch)
    assert all(r.outcome == Outcome.SENT for r in results)
    received = {m.recipients[0].split("@")[0]: m for m in server.messages}
    for language, (name, subject, text) in SAMPLES.items():
        raw = received[language].data
        assert all(len(line) < 998 for line in raw.split(b"\r\n"))
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert parsed["Subject"] == subject
        assert display_name(raw, "From") == display_name(raw, "To") == name
        assert parsed["From"].addresses[0].domain == "xn--bcher-kva.example"
        assert parsed["To"].addresses[0].domain == "xn--r8jz45g.jp"
        assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == text
        assert f"<h1>{subject}</h1>" in parsed.get_body(("html",)).get_content()


@pytest.mark.django_db
def test_system_mail_still_goes_through_djangos_smtp_backend(settings, server, workspace):
    from django.core.mail import send_mail

    from patron.core.services import WORKSPACE_HEADER

    settings.EMAIL_BACKEND = "patron.mail.backends.SMTPBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    from django.core.mail import EmailMessage

    message = EmailMessage(
        "Reset your password ✓",
        "Xin chào",
        "patron@acme.example",
        ["lan@example.vn"],
        headers={WORKSPACE_HEADER: str(workspace.pk)},
    )
    assert message.send() == 1
    assert send_mail("Welcome", "Hi", "patron@acme.example", ["b@example.com"]) == 1
    first = email.message_from_bytes(server.messages[0].data, policy=email.policy.default)
    assert first["Subject"] == "Reset your password ✓"
    assert first[WORKSPACE_HEADER] is None
    assert [m.recipients for m in server.messages] == [["lan@example.vn"], ["b@example.com"]]
    assert not OutboxMessage.objects.exists()


def _stdlib_row(data: bytes) -> tuple[str, str, str, str]:
    from patron.mail.transports import _bodies

    parsed = email.message_from_bytes(data, policy=email.policy.default)
    text, html = _bodies(parsed)
    return str(parsed["Subject"]), str(parsed["From"]), text, html


@pytest.mark.parametrize("shape", ["both", "text only", "html only", "long lines", "cjk"])
def test_the_outbox_reads_what_the_standard_library_reads(shape):
    from patron.mail.transports import outbox_row

    bodies = {
        "both": ("Xin chào\n.\nLan ", "<p>Chào 👋</p>"),
        "text only": ("Hello\tthere \nbye", ""),
        "html only": ("", "<p>" + "x = y " * 500 + "</p>"),
        "long lines": ("a" * 3000 + " =\n", "<td>" + "z" * 5000 + "</td>"),
        "cjk": ("親愛的王先生\n" * 50, "<p>歡迎</p>" * 200),
    }
    text, html = bodies[shape]
    data = build_message(
        from_name="Nguyễn Thị Lan 🌸 " * 3,
        from_email="news@acme.example",
        to_email="a@example.com",
        subject="Ưu đãi 歡迎 " * 6,
        html=html,
        text=text,
        message_id=message_id_for(shape.replace(" ", "-")),
    )
    row = outbox_row(Outgoing("1", "bounce@x.example", ["a@example.com"], data, None))
    subject, _from, text_body, html_body = _stdlib_row(data)
    assert (row.subject, row.text_body, row.html_body) == (subject, text_body, html_body)
    # RFC 2047 drops the space between encoded words (Python's address parser keeps one).
    assert row.from_address == ("Nguyễn Thị Lan 🌸 " * 3).strip() + " <news@acme.example>"
    assert row.message_id == message_id_for(shape.replace(" ", "-"))


def test_the_outbox_reads_other_messages_with_the_standard_library():
    from django.core.mail import EmailMultiAlternatives

    from patron.mail.transports import outbox_row

    message = EmailMultiAlternatives("Invoice ✓", "See attached", "a@x.example", ["b@y.example"])
    message.attach_alternative("<p>See attached</p>", "text/html")
    message.attach("invoice.txt", "total: 10", "text/plain")
    data = message.message().as_bytes()
    row = outbox_row(Outgoing("1", "a@x.example", ["b@y.example"], data, None))
    assert (row.subject, row.text_body.strip(), row.html_body.strip()) == (
        "Invoice ✓",
        "See attached",
        "<p>See attached</p>",
    )


@pytest.mark.parametrize(
    ("data", "stuffed"),
    [
        (b"a\r\n.b\r\n", b"a\r\n..b\r\n"),
        (b".start\r\n", b"..start\r\n"),
        (b"no end", b"no end\r\n"),
        (b"bare\nlf\r\n.x", b"bare\r\nlf\r\n..x\r\n"),
        (b"bare\rcr\n.\n", b"bare\r\ncr\r\n..\r\n"),
    ],
)
def test_dot_stuffing_and_line_ends(data, stuffed):
    assert smtp.dot_stuff(data) == stuffed


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"PATRON_SMTP_URL": "smtp+starttls://u:p@one.example"},
            ["smtp+starttls://u:p@one.example"],
        ),
        (
            {
                "PATRON_SMTP_URLS": "smtp://a.example?weight=3, smtps://b.example",
                "PATRON_SMTP_URL": "x",
            },
            ["smtp://a.example?weight=3", "smtps://b.example"],
        ),
    ],
)
def test_smtp_urls_setting_and_the_old_single_url(variables, expected, tmp_path):
    import json
    import os
    import subprocess
    import sys

    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PATRON_SMTP_URL")}
    env = {
        **inherited,
        **variables,
        "PATRON_EMAIL_TRANSPORT": "smtp",
        "PATRON_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "patron.settings",
    }
    code = (
        "import json; from django.conf import settings as s; print(json.dumps("
        "[s.SMTP_URLS, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.EMAIL_USE_SSL]))"
    )
    output = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    urls, host, port, use_tls, use_ssl = json.loads(output)
    assert urls == expected
    first = smtp.SmtpServer.from_url(expected[0])
    # System mail goes to the first server, with the same port and TLS rules.
    assert (host, port) == (first.host, first.port)
    assert (use_tls, use_ssl) == (first.tls == "starttls", first.tls == "tls")
