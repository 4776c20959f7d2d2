"""The SMTP sink's capacity alone, and the cost of Patron's SMTP client against smtplib.

    python bench/bench_sink.py [--messages N] [--size BYTES] [--connections C] [--quick]

1. The C sink (``bench/sink/sink.c``) fed by the C client (``blast.c``, many
   pipelined connections): the most messages per second the sink accepts.
   The send benchmark's rate must stay under half of it, so that the sink is
   never what limits it. The same client against aiosmtpd (Python) is the
   baseline: what a Python sink would allow.
2. Patron's pipelined client (``patron.mail.smtp.deliver``, the SMTP
   transport's engine) sending prepared messages to the sink, with BDAT
   (CHUNKING: a window of transactions in flight) and with DATA (one round
   trip per message), against the naive way: ``smtplib`` one message at a
   time over one connection. All three measured as messages per second and
   as CPU microseconds per message in the sending process (what it leaves
   for rendering, signing and the database).

No database is involved; results go to ``bench/results/sink.json``.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")

from common import Metric, write_result  # noqa: E402
from sinklib import Sink, blast, children_cpu_seconds, naive_send  # noqa: E402


def message(number: int, size: int) -> bytes:
    from patron.mail.mime import build_message

    body = "Here is what changed this month for your team, in a few lines. " * max(1, size // 120)
    return build_message(
        from_name="Acme News",
        from_email="news@acme.example",
        to_email=f"person{number}@example.com",
        subject=f"Issue {number}",
        html=f"<p>{body}</p>",
        text=body,
        message_id=f"<{number}@bench.example>",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def aiosmtpd_capacity(messages: int, connections: int, size: int) -> float:
    """Messages per second aiosmtpd (in a thread of this process) accepts from blast."""
    from aiosmtpd.controller import Controller

    class Discard:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    import logging

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    port = free_port()
    controller = Controller(Discard(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        result = blast(port, messages=messages, connections=connections, size=size)
    finally:
        controller.stop()
    return result["accepted"] / result["seconds"]


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from patron.mail import smtp

    messages = 2_000 if args.quick else args.messages
    size = args.size
    metrics: list[Metric] = []

    # 1. The sink alone, fed by the C client.
    with Sink() as sink:
        cpu_before = sink.cpu_seconds()
        client_before = children_cpu_seconds()
        result = blast(sink.port, messages=messages, connections=args.connections, size=size)
        sink_cpu = sink.cpu_seconds() - cpu_before
        client_cpu = children_cpu_seconds() - client_before
        assert sink.stats()["messages"] == messages == result["accepted"]
    capacity = result["accepted"] / result["seconds"]
    python_sink = aiosmtpd_capacity(
        min(messages, 500 if args.quick else 5_000), args.connections, size
    )
    metrics += [
        Metric("sink capacity (C client -> C sink)", capacity, "msg/s", python_sink),
        Metric("sink CPU per message", sink_cpu / messages * 1e6, "us"),
        Metric("C client CPU per message", client_cpu / messages * 1e6, "us"),
        Metric("send rate the sink allows (capacity / 2)", capacity / 2, "msg/s"),
    ]

    # 2. Patron's pipelined client (BDAT, then DATA) against smtplib, into the sink.
    prepared = [message(n, size) for n in range(messages)]
    naive_count = min(messages, 300 if args.quick else 5_000)
    client: dict[str, tuple[float, float]] = {}
    with Sink() as sink:
        for mode, chunking in (("BDAT", 1), ("DATA", 0)):
            url = f"{sink.url}?connections={args.client_connections}&chunking={chunking}"
            servers = smtp.parse_smtp_urls(url)
            pool = smtp.ConnectionPool()
            envelopes = [
                smtp.Envelope(n, "bounce+abc@bounces.example", [f"person{n}@example.com"], data)
                for n, data in enumerate(prepared)
            ]
            batch = 500
            wall, cpu = time.perf_counter(), time.process_time()
            for start in range(0, messages, batch):
                results = smtp.deliver(envelopes[start : start + batch], servers, pool=pool)
                assert all(r.outcome == "sent" for r in results), results[:3]
            client[mode] = (time.perf_counter() - wall, time.process_time() - cpu)
            pool.close_all()

        naive = [
            ("bounce+abc@bounces.example", [f"person{n}@example.com"], prepared[n])
            for n in range(naive_count)
        ]
        wall, cpu = time.perf_counter(), time.process_time()
        assert naive_send(naive, "127.0.0.1", sink.port) == naive_count
        naive_wall = time.perf_counter() - wall
        naive_cpu = time.process_time() - cpu
        assert sink.stats()["messages"] == 2 * messages + naive_count

    for mode, label in (("BDAT", "CHUNKING"), ("DATA", "DATA")):
        wall_seconds, cpu_seconds = client[mode]
        metrics += [
            Metric(
                f"Patron SMTP client, pipelined {label}",
                messages / wall_seconds,
                "msg/s",
                naive_count / naive_wall,
            ),
            Metric(
                f"Patron SMTP client CPU per message, {label}",
                cpu_seconds / messages * 1e6,
                "us",
                naive_cpu / naive_count * 1e6,
            ),
        ]
    write_result("sink", None, metrics)
    print(
        f"  {messages:,} messages of {len(prepared[0]):,} bytes; C client over "
        f"{args.connections} connections; Patron's client over {args.client_connections}; "
        f"baselines: aiosmtpd fed by the same C client, smtplib one message at a time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=8_000, help="bytes per message")
    parser.add_argument("--connections", type=int, default=32, help="of the C client")
    parser.add_argument("--client-connections", type=int, default=4, help="of Patron's client")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
