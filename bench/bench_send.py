"""Campaign send: personalised, DKIM-signed mail through the pipeline to an SMTP sink.

    python bench/bench_send.py [--recipients N] [--workers W] [--naive-sample N]
        [--dkim rsa|ed25519|none] [--profile] [--skip-sink-alone]
        [--database sqlite|postgresql | --database-url URL] [--quick]

Loads N contacts (default 100,000) subscribed to a list, and a campaign whose
HTML has merge tags (first name, company, a custom field), five links, the
view-in-browser and unsubscribe links and the postal address; it is signed
with an installation DKIM key (RSA 2048 by default). The send goes through the
real pipeline: ``start_campaign`` (the set-based snapshot and the chunks), then
W worker processes each running ``run_chunk`` for its share of the chunks, to
the C sink of ``bench/sink`` over SMTP (pooled, pipelined connections). The
task queue itself is left out: each worker is handed its chunk ids directly.

Measured: the snapshot time, the send rate (messages the sink accepted per
second of the send phase), the peak RSS of a worker, and two references in
the same run: the naive sender (a sample of the recipients, each an ORM
read, the Liquid render, ``EmailMessage``, dkimpy, smtplib one message at a
time, one UPDATE per delivery; the ratio is pipeline / naive), and the sink
alone, fed by its C client with messages of the same size (it must take at
least twice the pipeline's rate, or the sink is what was measured).

``--recipients 1000000`` shows that a worker's memory stays flat (peak RSS
well under 300 MB): nothing holds the audience in Python.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import VAR, Metric, main, stopwatch, write_result
from generate import generate
from sinklib import Sink, blast, naive_message, naive_send, naive_sign

BODY = """<html><head><style>
  body { font-family: Helvetica, Arial, sans-serif; color: #222; }
  .button { background: #0b5; color: #fff; padding: 10px 16px; border-radius: 4px; }
  p { line-height: 1.5; }
</style></head><body>
<div style="max-width:600px;margin:0 auto">
<h1>December at Acme, {{ contact.first_name | default: "friend" }}</h1>
<p>Hello {{ contact.first_name | default: "there" }} {{ contact.last_name }},</p>
<p>Here is what changed this month for {{ company.name | default: "your team" }}.
Your plan: <strong>{{ contact.plan | default: "Starter" }}</strong>.</p>
<p><a class="button" href="https://acme.example/offers?utm_source=newsletter">See the offers</a></p>
<p>Read <a href="https://acme.example/blog/winter-release">the winter release notes</a>,
browse <a href="https://acme.example/docs/getting-started">the new getting-started guide</a>,
join <a href="https://acme.example/events/webinar">the webinar on the 12th</a>, or
<a href="https://acme.example/support">ask our support team</a>.</p>
<p>This winter's release brings faster search across contacts and companies, saved
views you can share with your team, and reminders that reach you by email at the
time you set. Everything you had stays exactly where it was.</p>
<p>Our support team now answers in your language on weekdays from eight to eight,
and the help centre has forty new articles written from the questions you asked us.</p>
<p style="font-size:12px;color:#777">
<a href="{{ view_in_browser_url }}">View in your browser</a> ·
<a href="{{ unsubscribe_url }}">Unsubscribe</a><br>{{ postal_address }}</p>
</div></body></html>"""
SUBJECT = "{{ contact.first_name | default: 'Hello' }}, your December news from Acme"
PLANS = ["Starter", "Growth", "Scale", "Enterprise"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--naive-sample", type=int, default=1_000)
    parser.add_argument("--dkim", choices=["rsa", "ed25519", "none"], default="rsa")
    parser.add_argument("--profile", action="store_true", help="cProfile one worker's chunks")
    parser.add_argument("--skip-sink-alone", action="store_true")


def dkim_key(kind: str) -> Path | None:
    if kind == "none":
        return None
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = VAR / f"bench-send-dkim-{kind}.pem"
    VAR.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


def load_audience(recipients: int) -> tuple[Any, Any, Any]:
    """The workspace, its verified sender and a list everyone is subscribed to."""
    from django.db import connection
    from django.utils import timezone

    from patron.audience.models import MailingList, Subscription
    from patron.crm.models import Contact
    from patron.mail.models import SenderIdentity

    generated = generate(
        contacts=recipients, companies=max(recipients // 10, 1), events=0, verbose=False
    )
    workspace_id = generated.workspace_id
    from patron.core.models import Workspace

    workspace = Workspace.objects.get(pk=workspace_id)
    news = MailingList.objects.create(workspace=workspace, name="Newsletter")
    contacts = Contact._meta.db_table
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        # A custom field for the merge tags, and everyone subscribed: set-based.
        plan = "CASE id %% 4 " + " ".join(
            f'WHEN {n} THEN \'{{"plan": "{name}"}}\'' for n, name in enumerate(PLANS)
        )
        plan += " END"
        cast = "::jsonb" if connection.vendor == "postgresql" else ""
        cursor.execute(
            f"UPDATE {contacts} SET custom = ({plan}){cast} WHERE workspace_id = %s",
            [workspace_id],
        )
        cursor.execute(
            f"INSERT INTO {Subscription._meta.db_table} "
            "(workspace_id, mailing_list_id, contact_id, status, created_at, updated_at) "
            f"SELECT workspace_id, %s, id, 'subscribed', %s, %s FROM {contacts} "
            "WHERE workspace_id = %s",
            [news.pk, now, now, workspace_id],
        )
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {Subscription._meta.db_table}")
    sender = SenderIdentity.objects.create(
        workspace=workspace,
        from_name="Acme News",
        from_email="news@acme.example",
        postal_address="Acme Ltd, 1 Main Street, Lisbon",
        is_default=True,
        verified_at=timezone.now(),
    )
    return workspace, sender, news


def worker(chunk_ids: list[int], profile: bool, results: Any) -> None:
    from django.db import connection

    from patron.mail import pipeline

    connection.close()  # a connection of its own
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    for chunk_id in chunk_ids:
        while pipeline.run_chunk(chunk_id) == "queued":  # worked its time slice: go on
            pass
    if profiler is not None:
        import pstats

        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(35)
        stats.sort_stats("tottime").print_stats(25)
    results.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def naive_rate(sample: int, campaign: Any, sink_port: int, key: Path | None) -> float:
    """Messages per second of the straightforward sender, on ``sample`` recipients."""
    from django.utils import timezone

    from patron.crm.models import Contact
    from patron.mail import campaigns as campaign_services
    from patron.mail import pipeline, rendering
    from patron.mail.models import Delivery

    compiled = pipeline.with_preheader(
        rendering.compile_template(campaign_services.template_source(campaign)),
        campaign.preheader,
    )
    pem = key.read_bytes() if key else None
    ids = list(
        Delivery.objects.for_workspace(campaign.workspace_id)
        .filter(campaign=campaign)
        .order_by("pk")
        .values_list("pk", flat=True)[:sample]
    )

    def messages():
        for delivery_id in ids:
            delivery = Delivery.objects.for_workspace(campaign.workspace_id).get(pk=delivery_id)
            contact = Contact.objects.for_workspace(campaign.workspace_id).get(
                pk=delivery.contact_id
            )
            rendered = compiled.render(
                pipeline.recipient_context(campaign, contact, delivery_id=delivery.pk)
            )
            data = naive_message(
                from_name="Acme News",
                from_email="news@acme.example",
                to_email=contact.email,
                subject=rendered.subject,
                html=rendered.html,
                text=rendered.text,
                message_id=f"<naive.{delivery.pk}@acme.example>",
            )
            if pem:
                data = naive_sign(
                    data, domain="acme.example", selector="bench", private_key_pem=pem
                )
            yield "bounce@acme.example", [contact.email], data
            delivery.status = "sent"
            delivery.sent_at = timezone.now()
            delivery.save(update_fields=["status", "sent_at"])

    with stopwatch() as elapsed:
        sent = naive_send(messages(), "127.0.0.1", sink_port)
    return sent / elapsed()


def run(database: str, args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.db import connection

    from patron.mail import campaigns, pipeline
    from patron.mail.models import Campaign, SendChunk

    if args.quick:
        args.recipients = min(args.recipients, 500)
        args.naive_sample = min(args.naive_sample, 30)
    key = dkim_key(args.dkim)
    if key is not None:
        settings.DKIM_DOMAIN = "acme.example"
        settings.DKIM_SELECTOR = "bench"
        settings.DKIM_PRIVATE_KEY_FILE = str(key)
    print(f"loading {args.recipients:,} recipients ...", flush=True)
    workspace, _sender, news = load_audience(args.recipients)

    with Sink(log=None) as sink:
        settings.EMAIL_TRANSPORT = "smtp"
        settings.SMTP_URLS = [sink.url]
        settings.SEND_RATE = 0
        campaign = campaigns.create_campaign(
            workspace,
            user=None,
            values={
                "name": "December news",
                "subject": SUBJECT,
                "preheader": "Offers, release notes and a webinar",
                "format": "html",
                "body": BODY,
                "audience": {"include": {"lists": [news.pk]}},
            },
        )
        campaigns.schedule_campaign(campaign, user=None)
        with stopwatch() as snapshot_time:
            pipeline.start_campaign(campaign.pk)
        campaign.refresh_from_db()
        assert campaign.total == args.recipients, campaign.total
        chunks = list(
            SendChunk.objects.for_workspace(workspace).order_by("pk").values_list("pk", flat=True)
        )
        shares = [chunks[i :: args.workers] for i in range(args.workers)]
        connection.close()
        results: Any = multiprocessing.get_context("fork").Queue()
        processes = [
            multiprocessing.get_context("fork").Process(
                target=worker, args=(share, args.profile and i == 0, results)
            )
            for i, share in enumerate(shares)
        ]
        before = sink.stats()["messages"]
        with stopwatch() as send_time:
            for process in processes:
                process.start()
            rss = [results.get() for _ in processes]
            for process in processes:
                process.join()
        accepted = sink.stats()["messages"] - before
        campaign = Campaign.objects.for_workspace(workspace).get(pk=campaign.pk)
        assert campaign.status == "sent", (campaign.status, campaign.sent, campaign.failed)
        assert accepted == args.recipients == campaign.sent, (accepted, campaign.sent)
        rate = accepted / send_time()

        # The naive sender, on a new campaign to the same list (its own deliveries).
        naive_campaign = campaigns.duplicate_campaign(campaign, user=None)
        campaigns.schedule_campaign(naive_campaign, user=None)
        pipeline.start_campaign(naive_campaign.pk)
        naive_campaign.refresh_from_db()
        naive = naive_rate(args.naive_sample, naive_campaign, sink.port, key)
        size = 5_000
        alone = None
        if not args.skip_sink_alone:
            blasted = blast(
                sink.port, messages=min(args.recipients, 200_000), connections=8, size=size
            )
            alone = blasted["accepted"] / blasted["seconds"]

    metrics = [
        Metric("recipients", args.recipients, "messages"),
        Metric("snapshot (INSERT ... SELECT) + chunks", snapshot_time(), "s"),
        Metric(
            f"send rate, {args.workers} workers (DKIM {args.dkim})", rate, "msg/s", baseline=naive
        ),
        Metric("send time", send_time(), "s"),
        Metric("peak worker RSS", max(rss), "MB"),
    ]
    if alone:
        metrics.append(Metric("sink alone (C client)", alone, "msg/s"))
        metrics.append(Metric("sink alone / pipeline", alone / rate, "x"))
    # RSA (the default) is what every receiver verifies; the Ed25519 run shows the
    # pipeline without the cost of RSA signatures (results of their own).
    name = "send" if args.dkim == "rsa" else f"send-{args.dkim}"
    if args.recipients >= 1_000_000:
        name += "-1m"  # the memory run keeps its own results beside the 100,000 one
    write_result(name, database, metrics)


if __name__ == "__main__":
    os.environ.setdefault("PATRON_LOG_LEVEL", "WARNING")
    tempfile.tempdir = str(VAR)
    main("send", __file__, run, add_arguments)
