"""The benchmarks' C sink: what it counts and logs matches what the SMTP transport reports,
with and without injected faults."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))

from sinklib import (  # noqa: E402
    Sink,
    blast,
    naive_message,
    naive_send,
    naive_send_campaign,
    naive_sign,
)

from patron.mail import smtp  # noqa: E402
from patron.mail.mime import build_message, message_id_for  # noqa: E402
from patron.mail.transports import Outcome, Outgoing, SmtpTransport  # noqa: E402


def batch(count: int) -> list[Outgoing]:
    messages = []
    for number in range(count):
        to = f"person{number}@example.com"
        data = build_message(
            from_name="Acme 商店",
            from_email="news@acme.example",
            to_email=to,
            subject=f"Chào {number} 👋",
            html="<p>" + "x" * 3000 + "</p>\n.\n",
            text="Hello\n.\n",
            message_id=message_id_for(f"d{number}"),
        )
        messages.append(Outgoing(f"d{number}", "bounce@acme.example", [to], data))
    return messages


def send(url: str, messages: list[Outgoing], *, chunking: bool = True):
    servers = smtp.parse_smtp_urls(f"{url}?connections=4&chunking={int(chunking)}")
    return SmtpTransport(servers, pool=smtp.ConnectionPool()).send(messages)


@pytest.mark.parametrize("chunking", [True, False], ids=["BDAT", "DATA"])
def test_the_sink_logs_each_accepted_message_once(tmp_path, chunking):
    messages = batch(300)
    with Sink(log=tmp_path / "sink.log") as sink:
        results = send(sink.url, messages, chunking=chunking)
        assert all(r.outcome == Outcome.SENT for r in results)
        logged = sink.log_lines()
        stats = sink.stats()
    assert stats["messages"] == stats["recipients"] == 300
    assert stats["connections"] == 4 + 2  # the transport's connections and two XSTATS
    assert Counter(logged) == Counter((message_id_for(m.key), m.recipients[0]) for m in messages)


@pytest.mark.parametrize("chunking", [True, False], ids=["BDAT", "DATA"])
def test_injected_faults_are_retry_and_never_lost_or_doubled(tmp_path, chunking):
    messages = batch(400)
    with Sink(log=tmp_path / "sink.log", tempfail=10, close421=3, drop=3, seed=7) as sink:
        results = send(sink.url, messages, chunking=chunking)
        logged = sink.log_lines()
        stats = sink.stats()
    assert stats["tempfail"] and stats["closed421"] and stats["dropped"]
    outcomes = Counter(r.outcome for r in results)
    assert outcomes[Outcome.FAILED] == 0
    assert outcomes[Outcome.SENT] + outcomes[Outcome.RETRY] == 400
    sent = {message_id_for(r.key) for r in results if r.outcome == Outcome.SENT}
    assert len(logged) == len({item[0] for item in logged}), "a message was accepted twice"
    assert {item[0] for item in logged} == sent
    retried = [r for r in results if r.outcome == Outcome.RETRY]
    assert {r.code for r in retried} <= {451, 421, None}
    assert stats["tempfail"] == sum(1 for r in retried if r.code == 451)


def test_the_c_client_and_the_naive_sender_reach_the_sink():
    with Sink() as sink:
        result = blast(sink.port, messages=500, connections=8, size=2000)
        assert result["accepted"] == 500
        data = naive_message(
            from_name="Acme",
            from_email="news@acme.example",
            to_email="a@example.com",
            subject="Hi",
            html="<p>Hi</p>",
            text="Hi",
            message_id="<n1@acme.example>",
        )
        assert (
            naive_send([("b@acme.example", ["a@example.com"], data)] * 3, "127.0.0.1", sink.port)
            == 3
        )
        assert sink.stats()["messages"] == 503
        assert sink.cpu_seconds() >= 0


@pytest.mark.parametrize("percent", [-1, 101])
def test_fault_percentages_are_checked(percent):
    with pytest.raises(ValueError, match="between 0 and 100"):
        Sink(drop=percent)


@pytest.mark.parametrize("chunking", [True, False], ids=["BDAT", "DATA"])
def test_outcomes_per_message_with_bdat_and_data(chunking):
    messages = batch(3)
    for key, to in [("soft", "tempfail@example.com"), ("hard", "reject@example.com")]:
        messages.append(Outgoing(key, "bounce@acme.example", [to], messages[0].data))
    messages.append(Outgoing("nouser", "bounce@acme.example", ["unknown@x.example"], b"x"))
    messages.append(
        Outgoing("some", "bounce@acme.example", ["a@x.example", "unknown@x.example"], b"y")
    )
    messages += batch(2)
    with Sink() as sink:
        results = send(sink.url, messages, chunking=chunking)
        stats = sink.stats()
    outcome = {r.key: r for r in results}
    assert [r.key for r in results] == [m.key for m in messages]
    assert (outcome["soft"].outcome, outcome["soft"].code) == (Outcome.RETRY, 451)
    assert (outcome["hard"].outcome, outcome["hard"].code) == (Outcome.FAILED, 554)
    assert outcome["hard"].reply == "5.7.1 Message rejected as spam"
    assert (outcome["nouser"].outcome, outcome["nouser"].code) == (Outcome.FAILED, 550)
    assert outcome["some"].outcome == Outcome.SENT
    assert "unknown@x.example: 550" in outcome["some"].reply
    assert sum(r.outcome == Outcome.SENT for r in results) == 6
    assert stats["messages"] == 6


def test_the_naive_campaign_sender_signs_and_sends(tmp_path):
    import dkim as dkimpy
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from patron.mail.dkim import DkimSigner

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    record = DkimSigner("acme.example", "s1", pem).public_record().encode()
    items = [
        {
            "from_name": "Acme 商店",
            "from_email": "news@acme.example",
            "to_email": f"p{n}@example.com",
            "subject": f"Chào {n}",
            "html": "<p>Hi</p>",
            "text": "Hi",
            "message_id": f"<n{n}@acme.example>",
            "envelope_from": "bounce@acme.example",
        }
        for n in range(5)
    ]
    with Sink(log=tmp_path / "log") as sink:
        accepted = naive_send_campaign(
            items, "127.0.0.1", sink.port, dkim=("acme.example", "s1", pem)
        )
        assert accepted == 5
        assert [line[1] for line in sink.log_lines()] == [f"p{n}@example.com" for n in range(5)]
    signed = naive_sign(
        naive_message(**{k: v for k, v in items[0].items() if k != "envelope_from"}),
        domain="acme.example",
        selector="s1",
        private_key_pem=pem,
    )
    assert dkimpy.verify(signed, dnsfunc=lambda name, timeout=5: record)
