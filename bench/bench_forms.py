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
Then as many new contacts through a copy of the form that also delivers a gated
file (the answer carries the signed download link), with the new-contact
submission as its baseline, and as many views of a published landing page
(the view event and the visitor cookie; its form drawn with a fresh token),
with the same baseline. Reports p50/p95 of each, in milliseconds. The minimum fill time and the rate
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
    import io

    from patron.capture import downloads, pages

    ebook = downloads.upload_file(
        workspace=workspace, file=io.BytesIO(b"%PDF-1.7\n" + b"0" * 200_000), name="Guide.pdf"
    )
    gated = services.create_form(
        workspace=workspace,
        name="E-book",
        fields=form.fields,
        consent_text=form.consent_text,
        lists=[newsletter],
        tags=["ebook"],
        notify_user=owner,
        download_file=ebook,
    )
    landing = pages.create_page(
        workspace=workspace,
        name="E-book page",
        slug="ebook",
        title="Get the guide",
        blocks={
            "blocks": [
                {"type": "heading", "text": "Get the guide"},
                {"type": "text", "text": "<p>Forty pages on keeping customers.</p>"},
                {"type": "form", "form": gated.pk},
            ]
        },
    )
    pages.publish_page(page=landing)
    client = Client()
    url = f"/api/v1/forms/{form.key}/submissions"

    def body(n: int, target_form: Any = form) -> str:
        data: dict[str, Any] = {
            "email": f"person{n}@example.com",
            "first_name": f"Person{n}",
            "last_name": "Bench",
            "company": f"Company {n % 50}",
            "seats": str(n % 100),
            "utm_source": "ads",
            "consent": "yes",
            "_ts": services.issue_token(target_form),
            "_page": "https://www.example.com/demo",
        }
        return json.dumps(data)

    def measure(offset: int, target_form: Any = form) -> Timing:
        target = f"/api/v1/forms/{target_form.key}/submissions"
        timing = Timing()
        for n in range(args.submissions):
            payload = body(n + offset if offset else n, target_form)
            with timing.call():
                response = client.post(target, payload, content_type="application/json")
            if response.status_code != 201:
                raise SystemExit(f"submission refused: {response.status_code} {response.content!r}")
            if target != url and "/d/" not in response.json()["download_url"]:
                raise SystemExit("the gated form answered without a download link")
        return timing

    new = measure(0)
    known = measure(0)  # the same people again: found by email and updated
    with_file = measure(10**6, gated)
    views = Timing()
    from django.test.utils import override_settings

    # Pages name their style sheets; the benchmark has no collected static files.
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    with override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain}):
        for _n in range(args.submissions):
            visitor = Client()  # a new visitor each time: the cookie is set
            with views.call():
                response = visitor.get(f"/p/{workspace.slug}/ebook")
            if response.status_code != 200:
                raise SystemExit(f"landing page answered {response.status_code}")
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
            Metric("new contact + gated file p50", with_file.p50_ms, "ms", new.p50_ms),
            Metric("new contact + gated file p95", with_file.p95_ms, "ms", new.p95_ms),
            Metric("landing page view p50", views.p50_ms, "ms", new.p50_ms),
            Metric("landing page view p95", views.p95_ms, "ms", new.p95_ms),
        ],
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--submissions", type=int, default=500)


if __name__ == "__main__":
    main("forms", __file__, run, add_arguments)
