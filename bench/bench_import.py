"""CSV import of contacts with five custom fields, upserting by email.

    python bench/bench_import.py [--rows N] [--existing-share F] [--sample N]
        [--database sqlite|postgresql | --database-url URL] [--quick]

Writes a CSV of N rows (default 100,000): names, email, phone, city, company,
lifecycle stage, a tag, and five custom fields (select, number, date, yes/no,
text); a share of the emails (default 10%) belong to contacts that exist
already, so those rows update instead of create. The file goes through the
real path: ``store_upload`` (kept in the database in chunks), then
``run_import`` (the batch engine). Memory is sampled during the run: peak RSS
and its growth show whether it stays flat.

The baseline imports a sample of the same rows the straightforward way, one
``create_contact``/``update_contact`` service call per row.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import threading
import time
from typing import Any

from common import Metric, Timing, main, write_result
from generate import bench_workspace, pools

HEADER = [
    "Email",
    "First name",
    "Last name",
    "Phone",
    "City",
    "Company",
    "Lifecycle stage",
    "Tags",
    "Plan",
    "Seats",
    "Renewal date",
    "Newsletter",
    "Referrer",
]


def write_csv(rows: int, existing: list[str], existing_share: float, seed: int) -> bytes:
    rng = random.Random(seed)
    names = pools()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for i in range(rows):
        first, first_slug = rng.choice(names.first_names)
        last, last_slug = rng.choice(names.last_names)
        if existing and rng.random() < existing_share:
            email = rng.choice(existing)
        else:
            email = f"{first_slug}.{last_slug}.{seed}.{i}@import.example"
        company = rng.choice(names.companies)[0] if rng.random() < 0.7 else ""
        writer.writerow(
            [
                email,
                first,
                last,
                rng.choice(names.phones),
                rng.choice(names.places)[0],
                company,
                rng.choice(["lead", "subscriber", "customer", "MQL"]),
                rng.choice(["fair-2026", "webinar", ""]),
                rng.choice(["Free", "Pro", "Enterprise"]),
                rng.randint(1, 500),
                f"2027-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                rng.choice(["yes", "no"]),
                rng.choice(["partner", "search", "ads", "event"]),
            ]
        )
    return out.getvalue().encode()


def define_fields(workspace: Any) -> None:
    from patron.crm import services

    define = services.create_custom_field
    define(
        workspace=workspace,
        object_type="contact",
        label="Plan",
        field_type="single_select",
        options=["Free", "Pro", "Enterprise"],
    )
    define(workspace=workspace, object_type="contact", label="Seats", field_type="number")
    define(workspace=workspace, object_type="contact", label="Renewal date", field_type="date")
    define(workspace=workspace, object_type="contact", label="Newsletter", field_type="boolean")
    define(workspace=workspace, object_type="contact", label="Referrer", field_type="text")


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class MemorySampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            self.samples.append(rss_mb())
            time.sleep(0.05)


def upload(workspace: Any, data: bytes, name: str) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from patron.crm import importer

    return importer.store_upload(
        workspace=workspace,
        object_type="contact",
        upload=SimpleUploadedFile(name, data, content_type="text/csv"),
        actor=None,
    )


def one_by_one(workspace: Any, data: bytes, sample: int) -> Timing:
    """The baseline: the same conversion, then one service call per row."""
    from patron.crm import importer, services
    from patron.crm.models import Contact

    job = upload(workspace, data, "baseline.csv")
    converter = importer.RowConverter(job, job.mapping)
    timing = Timing()
    for number, raw in enumerate(importer.read_rows(job), start=2):
        if number - 2 >= sample:
            break
        with timing.call():
            try:
                row = converter.convert(number, raw)
            except importer.RowInvalid:
                continue
            existing = Contact.objects.for_workspace(workspace).filter(
                email=row.values.get("email", "")
            )
            contact = existing.first()
            values = {k.removesuffix("_id"): v for k, v in row.values.items()}
            if contact is None:
                services.create_contact(workspace=workspace, custom=row.custom, **values)
            else:
                services.update_contact(contact=contact, custom=row.custom, **values)
    return timing


def run(database: str, args: argparse.Namespace) -> None:
    from patron.crm import importer
    from patron.crm.models import Contact, ImportStatus

    rows = 2_000 if args.quick else args.rows
    sample = 100 if args.quick else args.sample
    workspace = bench_workspace("bench-import")
    define_fields(workspace)

    # Contacts that exist before the import, for the share of rows that update.
    first = upload(workspace, write_csv(max(1, rows // 10), [], 0.0, seed=1), "existing.csv")
    importer.start_import(job=first, mapping=first.mapping, tags=[], update_existing=True)
    seeded = importer.run_import(first.pk)
    existing = list(
        Contact.objects.for_workspace(workspace).values_list("email", flat=True)[:20_000]
    )

    sample_data = write_csv(sample, existing, args.existing_share, seed=3)
    baseline = one_by_one(workspace, sample_data, sample)

    data = write_csv(rows, existing, args.existing_share, seed=2)
    before = rss_mb()
    sampler = MemorySampler()
    sampler.start()
    started = time.perf_counter()
    job = upload(workspace, data, "contacts.csv")
    stored = time.perf_counter() - started
    importer.start_import(job=job, mapping=job.mapping, tags=["bench"], update_existing=True)
    started = time.perf_counter()
    job = importer.run_import(job.pk)
    applied = time.perf_counter() - started
    sampler.running = False
    sampler.join()
    if job.status != ImportStatus.DONE or job.rejected_count:
        raise SystemExit(f"import ended {job.status} with {job.rejected_count} rejected rows")

    rate = job.processed_rows / applied
    metrics = [
        Metric("run_import(): rows applied", rate, "rows/s", baseline=baseline.rate),
        Metric("store_upload(): file stored and counted", job.processed_rows / stored, "rows/s"),
        Metric("upload + import, end to end", job.processed_rows / (stored + applied), "rows/s"),
        Metric("rows in the file", job.processed_rows, "rows"),
        Metric("created", job.created_count, "rows"),
        Metric("updated (email existed)", job.updated_count, "rows"),
        Metric("RSS before the import", before, "MB"),
        Metric("peak RSS during the import", max(sampler.samples, default=before), "MB"),
        Metric("RSS growth during the import", max(sampler.samples, default=before) - before, "MB"),
        Metric("baseline: one service call per row, p50", baseline.p50_ms, "ms"),
        Metric("baseline sample", len(baseline.samples), "rows"),
        Metric("contacts before the import", seeded.created_count, "rows"),
    ]
    write_result("import", database, metrics)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--existing-share", type=float, default=0.1)
    parser.add_argument("--sample", type=int, default=1_000, help="rows of the baseline")


if __name__ == "__main__":
    main("import", __file__, run, add_arguments)
