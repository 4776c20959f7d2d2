"""Email templates: the builder's design to MJML, compiling once, and rendering per recipient.

    python bench/bench_templates.py [--recipients N] [--repeat N]
        [--database sqlite|postgresql | --database-url URL] [--quick]

The template is the newsletter starter. The baseline of the per-recipient
render is compiling the template for every recipient (what a pipeline that
does not compile once per campaign would pay); the ratio is how many times
more recipients per second compiling once gives. "One builder edit" is what
the editor's checks and preview cost the server for one pause in typing.
"""

from __future__ import annotations

import argparse

from common import Metric, main, time_calls, write_result


def run(database: str, args: argparse.Namespace) -> None:
    from types import SimpleNamespace

    from patron.core.models import Workspace
    from patron.mail import blocks, starters, templates_service
    from patron.mail.rendering import compile_template

    recipients = 50 if args.quick else args.recipients
    repeat = 5 if args.quick else args.repeat
    values = starters.get("newsletter").values()  # type: ignore[union-attr]
    design = blocks.validate_blocks(values["blocks"])
    mjml = blocks.blocks_to_mjml(design)
    content = SimpleNamespace(
        subject=values["subject"], preheader=values["preheader"], body=mjml, format="mjml", text=""
    )
    source = templates_service.template_source(content)
    contexts = [
        {
            "contact": {"first_name": f"Person {n}", "email": f"p{n}@example.org"},
            "company": {"name": "Example"},
            "unsubscribe_url": f"https://example.org/u/{n}/",
            "preferences_url": f"https://example.org/p/{n}/",
            "postal_address": "1 Example Street, Town",
            "segments": [],
        }
        for n in range(recipients)
    ]

    to_mjml = time_calls(lambda: blocks.blocks_to_mjml(design), repeat * 10)
    compiling = time_calls(lambda: compile_template(source), repeat * 5)
    compiled = compile_template(source)
    once = time_calls(lambda: [compiled.render(c) for c in contexts], repeat, items=recipients)
    naive_contexts = contexts[: max(recipients // 10, 5)]
    naive = time_calls(
        lambda: [compile_template(source).render(c) for c in naive_contexts],
        repeat,
        items=len(naive_contexts),
    )
    workspace, _created = Workspace.objects.get_or_create(
        slug="bench-templates", defaults={"name": "Benchmark templates"}
    )
    edit = time_calls(
        lambda: (
            templates_service.clean_content(workspace, {"blocks": design}),
            templates_service.check_content(workspace, content),
            templates_service.render_preview(workspace, content, None),
        ),
        repeat * 2,
    )
    write_result(
        "templates",
        database,
        [
            Metric("design -> MJML (blocks_to_mjml)", to_mjml.p50_ms, "ms"),
            Metric("compile once (MJML, inline, Liquid)", compiling.p50_ms, "ms"),
            Metric("render per recipient", once.rate, "msgs/s", baseline=naive.rate),
            Metric("one builder edit (clean, checks, preview)", edit.p50_ms, "ms"),
            Metric("newsletter HTML size", len(compiled.html.encode()) / 1024, "KB"),
        ],
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipients", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds")


if __name__ == "__main__":
    main("templates", __file__, run, add_arguments)
