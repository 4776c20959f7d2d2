"""Contact list server time on a large workspace: custom-field + tag filter, and search.

    python bench/bench_contact_list.py [--contacts N] [--companies N] [--repeat N]
        [--database sqlite|postgresql | --database-url URL] [--quick]

Loads N contacts (default 1,000,000) and N/5 companies with the generator, gives
them custom values (a "tier" select and a "seats" number), a last-activity time
and tags with set-based UPDATE/INSERT statements, then times whole requests to
the contact list page through Django's test client (view, queries, template):

- first page filtered on a custom field and a tag, sorted by last activity;
- search by a name or email prefix;
- the filtered list's total, which the page loads after itself (capped at 10,000).

The baseline is the unfiltered list's first page in the same run: the ratio
says what the filter or the search costs on top of showing a page at all.
"""

from __future__ import annotations

import argparse
import random
from typing import Any

from common import Metric, Timing, main, write_result
from generate import generate, pools

TIERS = ("Bronze", "Silver", "Gold")


def decorate(workspace_id: int) -> None:
    """Custom values, last activity and tags for every contact, set-based."""
    from django.db import connection

    from patron.core.models import Workspace
    from patron.crm import services
    from patron.crm.models import Tag

    workspace = Workspace.objects.get(pk=workspace_id)
    services.create_custom_field(
        workspace=workspace,
        object_type="contact",
        label="Tier",
        field_type="single_select",
        options=list(TIERS),
    )
    services.create_custom_field(
        workspace=workspace, object_type="contact", label="Seats", field_type="number"
    )
    vip = Tag.objects.create(workspace=workspace, name="vip")
    newsletter = Tag.objects.create(workspace=workspace, name="newsletter")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "UPDATE crm_contact SET custom = jsonb_build_object("
                "'tier', (ARRAY['Bronze','Silver','Gold'])[1 + id %% 3], 'seats', id %% 50), "
                "last_activity_at = CASE WHEN id %% 4 = 0 THEN NULL "
                "ELSE created_at + (id %% 90) * interval '1 day' END "
                "WHERE workspace_id = %s",
                [workspace_id],
            )
        else:
            cursor.execute(
                "UPDATE crm_contact SET custom = json_object("
                "'tier', CASE id %% 3 WHEN 0 THEN 'Bronze' WHEN 1 THEN 'Silver' ELSE 'Gold' END, "
                "'seats', id %% 50), "
                "last_activity_at = CASE WHEN id %% 4 = 0 THEN NULL "
                "ELSE datetime(created_at, '+' || (id %% 90) || ' days') END "
                "WHERE workspace_id = %s",
                [workspace_id],
            )
        for tag, modulo in ((vip, 10), (newsletter, 7)):
            cursor.execute(
                "INSERT INTO crm_contact_tags (contact_id, tag_id) "
                "SELECT id, %s FROM crm_contact WHERE workspace_id = %s AND id %% %s = 0",
                [tag.pk, workspace_id, modulo],
            )
        cursor.execute("ANALYZE")


def run(database: str, args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from patron.core.models import Membership

    contacts = 2_000 if args.quick else args.contacts
    companies = contacts // 5 if args.companies is None else args.companies
    repeat = 5 if args.quick else args.repeat
    generated = generate(contacts=contacts, companies=companies, events=0, verbose=not args.quick)
    decorate(generated.workspace_id)

    # Pages link hashed static files, as in production: collect them once.
    if "Manifest" in settings.STORAGES["staticfiles"]["BACKEND"]:
        call_command("collectstatic", interactive=False, verbosity=0)
    membership = Membership.objects.unscoped().filter(workspace_id=generated.workspace_id).first()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(membership.user)
    session = client.session
    session["patron_workspace_id"] = generated.workspace_id
    session.save()

    def timed(timing: Timing, params: dict[str, Any], path: str = "/contacts/") -> None:
        with timing.call():
            response = client.get(path, params)
        expected = b"contact" if path.endswith("count/") else b'id="contacts"'
        if response.status_code != 200 or expected not in response.content:
            raise SystemExit(f"{path} {params} answered {response.status_code}: no rows")

    rng = random.Random(7)
    names = pools()
    plain, filtered, searched, counted = Timing(), Timing(), Timing(), Timing()
    timed(plain, {})  # warm caches and connections; not counted below
    plain = Timing()
    for i in range(repeat):
        timed(plain, {"page": 1 + i % 3})
        tag = ("vip", "newsletter")[i % 2]
        filters = {"cf_tier": TIERS[i % 3], "tag": tag, "sort": "-last_activity"}
        timed(filtered, filters)
        timed(counted, filters, "/contacts/count/")
        prefix = rng.choice(
            [
                rng.choice(names.first_names)[0][:3],
                rng.choice(names.last_names)[0][:4],
                rng.choice(names.first_names)[1][:4],
            ]
        )
        timed(searched, {"q": prefix})

    metrics = [
        Metric(
            "filtered (custom field + tag, by last activity): p50",
            filtered.p50_ms,
            "ms",
            baseline=plain.p50_ms,
        ),
        Metric(
            "filtered (custom field + tag, by last activity): p95",
            filtered.p95_ms,
            "ms",
            baseline=plain.p95_ms,
        ),
        Metric("search by name/email prefix: p50", searched.p50_ms, "ms", baseline=plain.p50_ms),
        Metric("search by name/email prefix: p95", searched.p95_ms, "ms", baseline=plain.p95_ms),
        Metric(
            "count of the filtered list (loaded after the page, capped at 10,000): p50",
            counted.p50_ms,
            "ms",
            baseline=plain.p50_ms,
        ),
        Metric(
            "count of the filtered list (loaded after the page, capped at 10,000): p95",
            counted.p95_ms,
            "ms",
            baseline=plain.p95_ms,
        ),
        Metric("unfiltered first pages (baseline): p50", plain.p50_ms, "ms"),
        Metric("unfiltered first pages (baseline): p95", plain.p95_ms, "ms"),
        Metric("contacts in the workspace", generated.rows["contacts"], "rows"),
        Metric("requests timed per kind", repeat, "requests"),
    ]
    write_result("contact_list", database, metrics)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--companies", type=int, help="default: contacts / 5")
    parser.add_argument("--repeat", type=int, default=40, help="requests per kind")


if __name__ == "__main__":
    main("contact_list", __file__, run, add_arguments)
