"""Form submissions through the public JSON endpoint, end to end.

    python bench/bench_forms.py [--submissions N] [--database sqlite|postgresql |
        --database-url URL]

Creates a workspace with a list, a number custom field and a form (email, first
name, last name, company, the custom field, a hidden UTM field; consent text,
the list, two tags, an owner to notify), then posts N submissions (default
500) of new contacts through Django's test client to
``/api/v1/forms/<key>/submissions``, as the snippet does: each creates the
contact and company, applies the tags, subscribes with a consent record,
records the ``form.submitted`` event, the submission row and a notification.
Then the same number of submissions by the now known contacts (an update).
Reports p50/p95 of each, in milliseconds. The minimum fill time and the rate
limit are lifted for the run (they refuse a machine's speed on purpose).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from common import Metric, Timing, main


def run(database: str, args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.test import Client

    from patron.audience import lists
    from patron.capture import services
    from patron.core.models import User
    from patron.core.services import create_workspace
    from patron.crm.services import create_custom_field

    settings.FORMS_MIN_FILL_SECONDS = 0
    settings.FORMS_RATE_LIMIT = 10**9
    settings.ALLOWED_HOSTS = ["*"]
    owner = User.objects.create_user(email="bench-forms@example.com", password=None)
    workspace = create_workspace(name="Benchmark forms", owner=owner)
    newsletter = lists.create_list(workspace=workspace, name="Newsletter")
    create_custom_field(
        workspace=workspace, object_type="contact", label="Seats", field_type="number"
    )
    form = services.create_form(
        workspace=workspace,
        name="Demo request",
        fields=[
            {"key": "email", "label": "Email", "maps_to": "contact.email", "required": True},
            {"key": "first_name", "label": "First name", "maps_to": "contact.first_name"},
            {"key": "last_name", "label": "Last name", "maps_to": "contact.last_name"},
            {"key": "company", "label": "Company", "maps_to": "company.name"},
            {"key": "seats", "label": "Seats", "maps_to": "custom.seats"},
            {"key": "utm_source", "label": "UTM", "maps_to": "", "hidden": True},
        ],
        consent_text="Yes, send me the newsletter.",
        lists=[newsletter],
        tags=["demo", "website"],
        notify_user=owner,
    )
    client = Client()
    url = f"/api/v1/forms/{form.key}/submissions"

    def body(n: int) -> str:
        data: dict[str, Any] = {
            "email": f"person{n}@example.com",
            "first_name": f"Person{n}",
            "last_name": "Bench",
            "company": f"Company {n % 50}",
            "seats": str(n % 100),
            "utm_source": "ads",
            "consent": "yes",
            "_ts": services.issue_token(form),
            "_page": "https://www.example.com/demo",
        }
        return json.dumps(data)

    def measure(offset: int) -> Timing:
        timing = Timing()
        for n in range(args.submissions):
            payload = body(n + offset if offset else n)
            with timing.call():
                response = client.post(url, payload, content_type="application/json")
            if response.status_code != 201:
                raise SystemExit(f"submission refused: {response.status_code} {response.content!r}")
        return timing

    new = measure(0)
    known = measure(0)  # the same people again: found by email and updated
    from common import write_result

    write_result(
        "forms",
        database,
        [
            Metric("new contact submission p50", new.p50_ms, "ms"),
            Metric("new contact submission p95", new.p95_ms, "ms"),
            Metric("known contact submission p50", known.p50_ms, "ms"),
            Metric("known contact submission p95", known.p95_ms, "ms"),
            Metric("submissions per second (new)", new.rate, "1/s"),
        ],
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--submissions", type=int, default=500)


if __name__ == "__main__":
    main("forms", __file__, run, add_arguments)
