"""The workflow engine: contacts through a 5-step workflow, set-based against a per-contact loop.

    python bench/bench_workflows.py [--contacts N] [--naive N] [--batch N]
        [--database sqlite|postgresql | --database-url URL] [--quick]

Loads N contacts (default 100,000) with the generator, a verified sender and
an email template, and publishes one workflow:

    trigger (manual/API enrolment of all of them)
    -> wait 1 day
    -> if: opened an email since entering?   (a fifth of them did, recorded during the wait)
         no:  send email (a delivery row queued for the send pipeline)
    -> add tag "welcomed"

Every contact runs 5 steps (trigger, wait, if, send email, tag) or 4 (the
openers skip the email). The engine's time is the enrolment (one INSERT ...
SELECT) plus every round of ``engine.run_due`` until nothing is due: the
rounds that set the timers, then, with the clock moved a day on, the rounds
that run the rest. Steps per second = (enrolments + step runs) / that time.

The baseline is the naive engine in the same run: a Python loop over the
contacts, each in its own transactions (enrol the row, then per step: load,
decide with a query of its own, act through the per-contact service, write the
step run, save). It runs on ``--naive`` contacts (default 2,000) of a second,
identical workflow and its rate is extrapolated: it does not depend on the
number of contacts.

Emails are not sent here: the engine's work ends with the delivery rows
(the send pipeline has its own benchmark, bench_send.py).
"""

from __future__ import annotations

import argparse
import random
from datetime import timedelta
from typing import Any

from common import Metric, main, stopwatch, write_result
from generate import generate

BODY = (
    "<html><body><p>Hello {{ contact.first_name }},</p>"
    '<p><a href="https://example.com/start">Start here</a></p>'
    '<p>{{ postal_address }} · <a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)


def steps(template_id: int) -> list[dict[str, Any]]:
    return [
        {"id": "wait", "type": "wait", "days": 1},
        {
            "id": "opened",
            "type": "if",
            "condition": {"type": "event_since", "kind": "email.opened"},
            "yes": [],
            "no": [{"id": "email", "type": "send_email", "template": template_id}],
        },
        {"id": "tag", "type": "add_tag", "tag": "welcomed"},
    ]


def setup(workspace: Any, name: str) -> Any:
    from patron.automation import workflows
    from patron.mail.models import EmailTemplate

    template = EmailTemplate.objects.for_workspace(workspace).filter(name="Welcome").first()
    if template is None:
        template = EmailTemplate.objects.create(
            workspace=workspace, name="Welcome", format="html", subject="Welcome", body=BODY
        )
    workflow = workflows.create_workflow(
        workspace=workspace, name=name, graph={"steps": steps(template.pk)}
    )
    workflows.publish_workflow(workflow=workflow)
    return workflow


def verified_sender(workspace: Any) -> None:
    from patron.mail import senders

    identity = senders.create_sender(
        workspace=workspace,
        from_name="Bench",
        from_email="news@bench.example",
        postal_address="1 Bench Street",
    )
    senders.verify_sender(token=senders.verification_token(identity))


def record_opens(workspace: Any, contact_ids: list[int], when: Any) -> None:
    from patron.activity.services import record_for_contacts

    record_for_contacts(workspace=workspace, kind="email.opened", contact_ids=contact_ids)
    from patron.activity.models import Event

    Event.objects.for_workspace(workspace).filter(kind="email.opened").update(occurred_at=when)


def run_engine(workspace: Any, workflow: Any, args: Any) -> dict[str, Any]:
    from django.db import transaction
    from django.utils import timezone

    from patron.automation import engine
    from patron.crm.models import Contact

    start = timezone.now()
    with stopwatch() as enrolling, transaction.atomic():
        enrolled = engine.enrol_contacts(
            workflow=workflow,
            contacts=Contact.objects.for_workspace(workspace),
            now=start,
        )
    rng = random.Random(5)
    openers = rng.sample(enrolled, len(enrolled) // 5)
    rounds = 0
    step_runs = 0
    with stopwatch() as timers:
        while True:
            result = engine.run_due(workspace, now=start, limit=args.batch)
            rounds += 1
            step_runs += result.steps
            if not result.claimed:
                break
    record_opens(workspace, openers, start + timedelta(hours=2))
    later = start + timedelta(days=1, minutes=1)
    with stopwatch() as rest:
        while True:
            result = engine.run_due(workspace, now=later, limit=args.batch)
            rounds += 1
            step_runs += result.steps
            if not result.claimed:
                break
    seconds = enrolling() + timers() + rest()
    return {
        "enrolled": len(enrolled),
        "step_runs": step_runs,
        "steps": len(enrolled) + step_runs,
        "seconds": seconds,
        "enrol_seconds": enrolling(),
        "rounds": rounds,
        "openers": len(openers),
    }


def run_naive(workspace: Any, workflow: Any, contact_ids: list[int]) -> dict[str, Any]:
    """One contact at a time, one step at a time, each its own transaction."""
    from django.db import transaction
    from django.utils import timezone

    from patron.activity.models import Event
    from patron.automation.models import Enrolment, StepRun
    from patron.crm import services as crm
    from patron.crm.models import Contact
    from patron.mail.automated import create_automated_campaign, queue_automated_deliveries
    from patron.mail.models import EmailTemplate

    graph = workflow.published.graph
    template = EmailTemplate.objects.for_workspace(workspace).get(
        pk=graph["steps"][1]["no"][0]["template"]
    )
    campaign = create_automated_campaign(workspace=workspace, template=template, name="naive")
    now = timezone.now()
    openers = set(random.Random(6).sample(contact_ids, len(contact_ids) // 5))
    steps_run = 0
    with stopwatch() as elapsed:
        for contact_id in contact_ids:
            with transaction.atomic():
                enrolment = Enrolment.objects.create(
                    workspace=workspace,
                    workflow=workflow,
                    version=workflow.published,
                    contact_id=contact_id,
                    step="wait",
                    next_wake_at=now,
                )
            steps_run += 1
            path = ["wait", "opened"]
            if contact_id not in openers:
                path.append("email")
            path.append("tag")
            for iteration, step_id in enumerate(path):
                with transaction.atomic():
                    enrolment = Enrolment.objects.for_workspace(workspace).get(pk=enrolment.pk)
                    contact = Contact.objects.for_workspace(workspace).get(pk=contact_id)
                    result: dict[str, Any] = {}
                    if step_id == "wait":
                        enrolment.next_wake_at = now + timedelta(days=1)
                    elif step_id == "opened":
                        result["branch"] = (
                            "yes"
                            if Event.objects.for_workspace(workspace)
                            .filter(
                                kind="email.opened",
                                contact_id=contact_id,
                                occurred_at__gte=enrolment.entered_at,
                            )
                            .exists()
                            or contact_id in openers
                            else "no"
                        )
                    elif step_id == "email":
                        queue_automated_deliveries(campaign=campaign, contact_ids=[contact_id])
                    else:
                        crm.add_tags(record_=contact, names=["welcomed-naive"])
                    StepRun.objects.create(
                        workspace=workspace,
                        enrolment=enrolment,
                        workflow_id=workflow.pk,
                        step_id=step_id,
                        iteration=iteration,
                        step_type=step_id,
                        result=result,
                    )
                    enrolment.runs = iteration + 1
                    enrolment.step = path[iteration + 1] if iteration + 1 < len(path) else ""
                    enrolment.status = "active" if enrolment.step else "completed"
                    enrolment.save()
                steps_run += 1
    return {"steps": steps_run, "seconds": elapsed()}


def check(workspace: Any, workflow: Any, expected: int, openers: int) -> None:
    from patron.automation.models import Enrolment
    from patron.crm.models import Tag
    from patron.mail.models import Delivery

    unfinished = (
        Enrolment.objects.for_workspace(workspace)
        .filter(workflow=workflow)
        .exclude(status="completed")
        .count()
    )
    tagged = Tag.objects.for_workspace(workspace).get(name="welcomed").contacts.count()
    deliveries = (
        Delivery.objects.for_workspace(workspace)
        .filter(campaign__name__contains=workflow.name)
        .count()
    )
    if unfinished or tagged != expected or deliveries != expected - openers:
        raise SystemExit(
            f"wrong outcome: {unfinished} unfinished, {tagged} tagged of {expected}, "
            f"{deliveries} deliveries for {expected - openers} non-openers"
        )


def run(database: str, args: argparse.Namespace) -> None:
    from patron.core.models import Workspace
    from patron.crm.models import Contact

    contacts = 3_000 if args.quick else args.contacts
    naive_contacts = 300 if args.quick else args.naive
    generated = generate(contacts=contacts, companies=0, events=0, verbose=not args.quick)
    workspace = Workspace.objects.get(pk=generated.workspace_id)
    verified_sender(workspace)
    ids = list(Contact.objects.for_workspace(workspace).order_by("pk").values_list("pk", flat=True))
    naive_flow = setup(workspace, "Naive welcome")
    naive = run_naive(workspace, naive_flow, ids[:naive_contacts])
    engine_flow = setup(workspace, "Welcome series")
    measured = run_engine(workspace, engine_flow, args)
    check(workspace, engine_flow, measured["enrolled"], measured["openers"])
    rate = measured["steps"] / measured["seconds"]
    naive_rate = naive["steps"] / naive["seconds"]
    metrics = [
        Metric(
            f"engine: {measured['enrolled']:,} contacts through 5 steps, sustained",
            rate,
            "steps/s",
            baseline=naive_rate,
        ),
        Metric(
            f"naive per-contact loop ({naive_contacts:,} contacts, extrapolated)",
            naive_rate,
            "steps/s",
        ),
        Metric("engine: steps (enrolments + step runs)", measured["steps"], "steps"),
        Metric("engine: total time", measured["seconds"], "s"),
        Metric("engine: set-based enrolment", measured["enrol_seconds"], "s"),
        Metric("engine: rounds of run_due", measured["rounds"], "rounds"),
        Metric(
            "naive loop: time for all contacts (extrapolated)",
            naive["seconds"] * measured["enrolled"] / max(naive_contacts, 1),
            "s",
        ),
    ]
    write_result("workflows", database, metrics)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=2_000, help="contacts of the naive loop")
    parser.add_argument("--batch", type=int, default=5_000, help="enrolments a round claims")


if __name__ == "__main__":
    main("workflows", __file__, run, add_arguments)
