"""The tenant isolation harness.

It walks every URL pattern of a URLconf (pages and API routes alike), fills
each URL argument with a row of workspace A, and requests it as a member and
with an API key of workspace B, with every method. A route leaks when:

- a response shows one of A's marker strings (reading),
- a route that names A's row answers anything but 403, 404 or 405, unless the
  answer is exactly the one for a row that does not exist at all (an API's
  422 for a bad body, say, tells nothing about A's row),
- or any of A's rows differ afterwards (changing).

A URL argument that is not registered in ``patron.core.tenancy`` is reported
too, so a new route is covered by being registered, not by remembering to
write a test. Each registered model needs a maker in ``ROW_MAKERS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from patron.core.models import Workspace
from patron.core.tenancy import PUBLIC_URL_PARAMETERS, URL_PARAMETER_MODELS
from patron.crm.importer import store_upload
from patron.crm.services import create_custom_field
from tests.factories import (
    ApiKeyFactory,
    CompanyFactory,
    ContactFactory,
    DealFactory,
    EventFactory,
    MembershipFactory,
    OutboxMessageFactory,
    UserFactory,
    make_pipeline,
)

MARKER = "zzsecretworkspacea"

# How to make one row of a model in a workspace, carrying MARKER where it shows.
ROW_MAKERS: dict[str, Callable[[Workspace], models.Model]] = {
    "audience.Segment": lambda ws: apps.get_model("audience", "Segment").objects.create(
        workspace=ws,
        name=f"{MARKER} segment",
        definition={"match": "all", "conditions": []},
    ),
    "audience.MailingList": lambda ws: _mailing_list(ws),
    "audience.Suppression": lambda ws: apps.get_model("audience", "Suppression").objects.create(
        workspace=ws, email=f"{MARKER}@example.org", reason="manual", note=MARKER
    ),
    "core.Membership": lambda ws: MembershipFactory(
        workspace=ws, user=UserFactory(email=f"{MARKER}-member@example.com"), role="sales"
    ),
    "core.Invitation": lambda ws: apps.get_model("core", "Invitation").objects.create(
        workspace=ws,
        email=f"{MARKER}-invitee@example.com",
        role="sales",
        token_hash=f"{MARKER}-token-hash",
        expires_at=timezone.now() + timezone.timedelta(days=3),
    ),
    "core.ApiKey": lambda ws: ApiKeyFactory(workspace=ws, name=f"{MARKER} key"),
    "activity.Event": lambda ws: EventFactory(
        workspace=ws, kind="custom.event", properties={"note": MARKER}
    ),
    "crm.Contact": lambda ws: ContactFactory(
        workspace=ws, first_name=MARKER, email=f"{MARKER}@example.net"
    ),
    "crm.Company": lambda ws: CompanyFactory(workspace=ws, name=f"{MARKER} Ltd"),
    "crm.Deal": lambda ws: DealFactory(workspace=ws, name=f"{MARKER} deal"),
    "crm.Pipeline": lambda ws: make_pipeline(ws, name=f"{MARKER} pipeline"),
    "crm.Tag": lambda ws: _tagged(ws),
    "crm.Task": lambda ws: _task(ws),
    "crm.Note": lambda ws: _noted(ws),
    "crm.ImportJob": lambda ws: _import_job(ws),
    "crm.SavedView": lambda ws: _saved_view(ws),
    "crm.AssignmentRule": lambda ws: _assignment_rule(ws),
    "crm.Meeting": lambda ws: _meeting(ws),
    "crm.Call": lambda ws: _call(ws),
    "crm.Ticket": lambda ws: _ticket(ws),
    "crm.Quote": lambda ws: _quote(ws),
    "crm.CustomField": lambda ws: create_custom_field(
        workspace=ws, object_type="contact", label=f"{MARKER} field", field_type="text"
    ),
    "mail.OutboxMessage": lambda ws: OutboxMessageFactory(
        workspace=ws, subject=f"{MARKER} subject", text_body=MARKER
    ),
    "mail.WorkspaceSmtpServer": lambda ws: _smtp_server(ws),
    "mail.SendingDomain": lambda ws: _sending_domain(ws),
    "mail.ReceivedBounce": lambda ws: apps.get_model("mail", "ReceivedBounce").objects.create(
        workspace=ws, delivery_id=1, recipient=f"{MARKER}@return.example", raw=MARKER.encode()
    ),
    # Not named by a URL: the delivery configuration the intruder must neither see nor change.
    "mail.DeliveryConfig": lambda ws: _delivery_config(ws),
    "mail.EmailTemplate": lambda ws: apps.get_model("mail", "EmailTemplate").objects.create(
        workspace=ws,
        name=f"{MARKER} template",
        subject=MARKER,
        body=f"<p>{MARKER}</p>",
        format="html",
    ),
    "mail.MailImage": lambda ws: _mail_image(ws),
    "mail.SenderIdentity": lambda ws: apps.get_model("mail", "SenderIdentity").objects.create(
        workspace=ws,
        from_name=f"{MARKER} sender",
        from_email=f"{MARKER}-sender@example.org",
        postal_address=MARKER,
    ),
    "mail.Campaign": lambda ws: _campaign(ws),
    "capture.Form": lambda ws: _form(ws),
    "capture.DownloadFile": lambda ws: _download_file(ws),
    "capture.LandingPage": lambda ws: _landing_page(ws),
    "automation.Workflow": lambda ws: _workflow(ws),
    "automation.Enrolment": lambda ws: _enrolment(ws),
    "tracking.Site": lambda ws: _site(ws),
    "automation.ScoringRule": lambda ws: apps.get_model("automation", "ScoringRule").objects.create(
        workspace=ws, name=f"{MARKER} rule", kind="behaviour", event_kind="email.opened", points=5
    ),
    "automation.LifecycleRule": lambda ws: apps.get_model(
        "automation", "LifecycleRule"
    ).objects.create(workspace=ws, trigger="score", threshold=4242, stage="mql"),
    "automation.ScoreRecompute": lambda ws: apps.get_model(
        "automation", "ScoreRecompute"
    ).objects.create(workspace=ws, error=MARKER, status="failed"),
    "automation.Handoff": lambda ws: _handoff(ws),
    "insights.Dashboard": lambda ws: _dashboard_widget(ws).dashboard,
    "insights.Widget": lambda ws: _dashboard_widget(ws),
    "capture.Popup": lambda ws: _popup(ws),
}


def _download_file(ws: Workspace) -> models.Model:
    """A file of workspace A's download library, named with MARKER."""
    import io

    from patron.capture.downloads import upload_file

    return upload_file(
        workspace=ws, file=io.BytesIO(b"%PDF-1.4 " + MARKER.encode()), name=f"{MARKER}.pdf"
    )


def _landing_page(ws: Workspace) -> models.Model:
    """A draft landing page of workspace A carrying MARKER in its name, title and text."""
    from patron.capture.pages import create_page

    return create_page(
        workspace=ws,
        name=f"{MARKER} page",
        slug="marker-page",
        title=MARKER,
        blocks={"blocks": [{"type": "text", "text": f"<p>{MARKER}</p>"}]},
    )


def _workflow(ws: Workspace) -> models.Model:
    """A published workflow of workspace A, its name and a step carrying MARKER."""
    from patron.automation import workflows

    workflow = workflows.create_workflow(
        workspace=ws,
        name=f"{MARKER} workflow",
        description=MARKER,
        graph={"steps": [{"id": "t", "type": "add_tag", "tag": MARKER[:40]}]},
    )
    workflows.publish_workflow(workflow=workflow)
    return workflow


def _enrolment(ws: Workspace) -> models.Model:
    """A contact of workspace A inside one of its workflows (waiting, so it stays active)."""
    from patron.automation import engine, workflows

    workflow = workflows.create_workflow(
        workspace=ws,
        name=f"{MARKER} nurture",
        graph={"steps": [{"id": "w", "type": "wait", "days": 30}]},
    )
    workflows.publish_workflow(workflow=workflow)
    contact = ContactFactory(workspace=ws, first_name=MARKER, email=f"{MARKER}@flow.example")
    engine.enrol_contacts(workflow=workflow, contact_ids=[contact.pk])
    return workflow.enrolments.get()


def _site(ws: Workspace) -> models.Model:
    """A tracked website of workspace A, with a visitor linked to one of A's contacts."""
    from patron.tracking.sites import create_site
    from patron.tracking.stitching import stitch_visitor

    site = create_site(
        workspace=ws, name=f"{MARKER} site", allowed_origins=[f"https://{MARKER}.example"]
    )
    contact = ContactFactory(workspace=ws, first_name=MARKER, email=f"{MARKER}@web.example")
    stitch_visitor(
        workspace_id=ws.pk, visitor_id=f"{MARKER}-visitor", contact_id=contact.pk, method="form"
    )
    return site


def _handoff(ws: Workspace) -> models.Model:
    """A pending hand-off of workspace A (its contact carries MARKER)."""
    contact = ContactFactory(
        workspace=ws, first_name=MARKER, email=f"{MARKER}@handoff.example", lifecycle_stage="mql"
    )
    return apps.get_model("automation", "Handoff").objects.create(
        workspace=ws, contact=contact, reason=MARKER
    )


def _dashboard_widget(ws: Workspace) -> models.Model:
    """A shared dashboard of workspace A with one widget, both carrying MARKER."""
    from patron.insights.models import Dashboard, Widget

    dashboard = Dashboard.objects.create(workspace=ws, name=f"{MARKER} dashboard")
    return Widget.objects.create(
        workspace=ws,
        dashboard=dashboard,
        title=f"{MARKER} widget",
        report="pipeline_by_stage",
        display="table",
        measure="deals",
        date_range="all_time",
    )


def _popup(ws: Workspace) -> models.Model:
    """A pop-up of workspace A showing one of its forms on one of its sites."""
    from patron.capture.popups import create_popup
    from patron.capture.services import create_form
    from patron.tracking.sites import create_site

    site = create_site(
        workspace=ws, name=f"{MARKER} popup site", allowed_origins=[f"https://p.{MARKER}.example"]
    )
    form = create_form(
        workspace=ws,
        name=f"{MARKER} popup form",
        fields=[{"key": "email", "label": MARKER, "maps_to": "contact.email"}],
        allowed_origins=[f"https://p.{MARKER}.example"],
    )
    return create_popup(
        workspace=ws, name=f"{MARKER} popup", form=form, sites=[site], url_patterns=["/zz*"]
    )


def _form(ws: Workspace) -> models.Model:
    """A form of workspace A with one submission carrying MARKER."""
    from patron.capture.models import FormSubmission
    from patron.capture.services import create_form

    form = create_form(
        workspace=ws,
        name=f"{MARKER} form",
        fields=[{"key": "email", "label": MARKER, "maps_to": "contact.email"}],
        consent_text=MARKER,
    )
    contact = ContactFactory(workspace=ws, first_name=MARKER, email=f"{MARKER}@form.example")
    FormSubmission.objects.create(
        workspace=ws, form=form, contact=contact, values={"email": contact.email, "x": MARKER}
    )
    return form


def _campaign(ws: Workspace) -> models.Model:
    """A draft campaign of workspace A with its content, a sender and one recipient row."""
    from patron.mail.models import Campaign, Delivery, SenderIdentity

    sender = SenderIdentity.objects.create(
        workspace=ws,
        from_name=f"{MARKER} campaign sender",
        from_email=f"{MARKER}-campaigns@example.org",
        postal_address=MARKER,
        verified_at=timezone.now(),
    )
    contact = ContactFactory(workspace=ws, first_name=MARKER, email=f"{MARKER}@campaign.example")
    campaign = Campaign.objects.create(
        workspace=ws,
        name=f"{MARKER} campaign",
        subject=f"{MARKER} subject",
        format="html",
        body=f"<p>{MARKER} {{{{ unsubscribe_url }}}} {{{{ postal_address }}}}</p>",
        sender=sender,
        audience={"include": {"lists": [], "segments": []}},
    )
    Delivery.objects.create(
        workspace=ws, campaign=campaign, contact_id=contact.pk, email=contact.email
    )
    return campaign


def _tagged(workspace: Workspace) -> models.Model:
    """A tag of workspace A, on one of A's contacts and companies."""
    from patron.crm.services import add_tags

    contact = ContactFactory(workspace=workspace, first_name=f"{MARKER} tagged")
    (tag,) = add_tags(record_=contact, names=[f"{MARKER} tag"])
    add_tags(record_=CompanyFactory(workspace=workspace, name=f"{MARKER} Co"), names=[tag.name])
    return tag


def _task(workspace: Workspace) -> models.Model:
    from patron.crm.services import create_task

    contact = ContactFactory(workspace=workspace, first_name=f"{MARKER} task contact")
    return create_task(workspace=workspace, title=f"{MARKER} task", contact=contact)


def _noted(workspace: Workspace) -> models.Model:
    from patron.crm.services import add_note

    contact = ContactFactory(workspace=workspace, first_name=f"{MARKER} noted")
    return add_note(workspace=workspace, author=None, body=f"{MARKER} note", contact=contact)


ALLOWED_FOR_FOREIGN_ROWS = {403, 404, 405}
# Logging out would end the intruder's session halfway through the walk.
SKIPPED_ROUTES = {"core:logout"}
PAGE_METHODS = ("get", "post")
API_METHODS = ("get", "post", "put", "patch", "delete")
_ARGUMENT = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


@dataclass
class Route:
    path: str  # e.g. "contacts/<int:contact_id>/edit/"
    name: str

    @property
    def arguments(self) -> list[str]:
        return [m.group("name") for m in _ARGUMENT.finditer(self.path)]

    @property
    def is_api(self) -> bool:
        return self.path.startswith("api/")


@dataclass
class Report:
    routes_checked: int = 0
    requests_made: int = 0
    leaks: list[str] = field(default_factory=list)


def iter_routes(urlconf: str | None = None) -> Iterator[Route]:
    """Every URL pattern of the URLconf, with its full route and name."""

    def walk(patterns: list[Any], prefix: str, namespace: str) -> Iterator[Route]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                ns = namespace
                if pattern.namespace:
                    ns = f"{namespace}{pattern.namespace}:"
                yield from walk(pattern.url_patterns, route, ns)
            elif isinstance(pattern, URLPattern):
                yield Route(
                    path=route.lstrip("^").replace("\\Z", "").replace("$", ""),
                    name=f"{namespace}{pattern.name or '?'}",
                )

    yield from walk(get_resolver(urlconf).url_patterns, "", "")


def make_rows(workspace: Workspace) -> dict[str, models.Model]:
    """One row of every model a URL argument can name, in ``workspace``."""
    return {label: maker(workspace) for label, maker in ROW_MAKERS.items()}


def _workspace_models() -> list[type[models.Model]]:
    result = []
    for model in apps.get_models():
        try:
            field_ = model._meta.get_field("workspace")
        except Exception:  # noqa: S112 - models without the column
            continue
        if getattr(field_, "related_model", None) is Workspace:
            result.append(model)
    return result


def snapshot(workspace: Workspace) -> dict[str, list[dict[str, Any]]]:
    """Every row of the workspace, in every table that has a workspace column."""
    state: dict[str, list[dict[str, Any]]] = {
        "core.Workspace": list(Workspace.objects.filter(pk=workspace.pk).values())
    }
    for model in _workspace_models():
        manager = model._base_manager
        rows = manager.filter(workspace=workspace).order_by("pk").values()
        state[model._meta.label] = [
            {k: v for k, v in row.items() if k != "last_used_at"} for row in rows
        ]
    return state


MISSING_ID = "987654321"


def _fill(
    route: Route, rows: dict[str, models.Model], *, missing: bool = False
) -> tuple[str | None, bool, str | None]:
    """The URL with A's rows (or ids that exist nowhere) filled in, whether it names a
    row, and a problem if any."""
    names_row = False

    def value(match: re.Match[str]) -> str:
        nonlocal names_row
        name = match.group("name")
        if name in URL_PARAMETER_MODELS:
            label = URL_PARAMETER_MODELS[name]
            if label not in rows:
                raise LookupError(f"no maker for {label} in tests/isolation.py ROW_MAKERS")
            names_row = True
            return MISSING_ID if missing else str(rows[label].pk)
        if name in PUBLIC_URL_PARAMETERS:
            return "1" if match.group("converter") == "int" else "not-a-valid-token"
        raise KeyError(name)

    try:
        return "/" + _ARGUMENT.sub(value, route.path), names_row, None
    except KeyError as exc:
        return (
            None,
            False,
            (
                f"{route.name} ({route.path}): URL argument {exc.args[0]!r} is not registered "
                "with register_url_parameter() or register_public_url_parameter()"
            ),
        )
    except LookupError as exc:
        return None, False, f"{route.name} ({route.path}): {exc}"


def check_isolation(
    *,
    victim: Workspace,
    victim_rows: dict[str, models.Model],
    intruder_client: Client,
    intruder_api_key: str,
    urlconf: str | None = None,
) -> Report:
    """Request every route as the intruder and report what leaked."""
    report = Report()
    before = snapshot(victim)
    api_headers = {"Authorization": f"Bearer {intruder_api_key}"}

    def send(method: str, url: str, is_api: bool) -> Any:
        request = getattr(intruder_client, method)
        if is_api:
            return request(
                url,
                data="{}" if method != "get" else None,
                content_type="application/json",
                headers=api_headers,
            )
        return request(url)

    for route in iter_routes(urlconf):
        if route.name in SKIPPED_ROUTES:
            continue
        url, names_row, problem = _fill(route, victim_rows)
        if problem:
            report.leaks.append(problem)
            continue
        assert url is not None
        report.routes_checked += 1
        methods = API_METHODS if route.is_api else PAGE_METHODS
        for method in methods:
            response = send(method, url, route.is_api)
            report.requests_made += 1
            body = b"" if getattr(response, "streaming", False) else response.content
            if MARKER.encode() in body:
                report.leaks.append(
                    f"{method.upper()} {url} ({route.name}) shows workspace A's data"
                )
            if names_row and response.status_code not in ALLOWED_FOR_FOREIGN_ROWS:
                missing_url = _fill(route, victim_rows, missing=True)[0]
                try:
                    baseline = send(method, missing_url, route.is_api)
                except Exception:  # the route fails for a missing row: not the same answer
                    baseline = None
                if (
                    baseline is not None
                    and baseline.status_code == response.status_code
                    and baseline.content == body
                ):
                    continue  # indistinguishable from a row that does not exist
                report.leaks.append(
                    f"{method.upper()} {url} ({route.name}) answered {response.status_code} "
                    "for another workspace's row (expected 403, 404 or 405)"
                )
    after = snapshot(victim)
    for label in before:
        if before[label] != after.get(label):
            report.leaks.append(f"workspace A's {label} rows changed during the walk")
    return report


def _import_job(ws: Workspace) -> models.Model:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from patron.crm.models import ImportRejection

    job = store_upload(
        workspace=ws,
        object_type="contact",
        upload=SimpleUploadedFile("leads.csv", f"Email\n{MARKER}@example.com\n".encode()),
        actor=None,
    )
    job.file_name = f"{MARKER}.csv"
    job.status = "done"
    job.rejected_count = 1
    job.save()
    ImportRejection.objects.create(
        workspace=ws, job=job, row_number=2, reason=MARKER, values=[MARKER]
    )
    return job


def _saved_view(ws: Workspace) -> models.Model:
    from patron.crm.services import save_view

    owner = UserFactory(email=f"{MARKER}-viewer@example.com")
    MembershipFactory(workspace=ws, user=owner, role="sales")
    return save_view(
        workspace=ws, owner=owner, name=f"{MARKER} view", query={"q": MARKER}, shared=True
    )


def _assignment_rule(ws: Workspace) -> models.Model:
    from patron.crm.assignment import save_rule

    user = UserFactory(email=f"{MARKER}-assignee@example.com")
    MembershipFactory(workspace=ws, user=user, role="sales")
    return save_rule(
        workspace=ws,
        object_type="contact",
        name=f"{MARKER} rule",
        conditions=[{"field": "source", "value": MARKER}],
        strategy="user",
        user=user,
    )


def _meeting(ws: Workspace) -> models.Model:
    from tests.factories import MeetingFactory

    return MeetingFactory(
        workspace=ws,
        title=f"{MARKER} meeting",
        contacts=[ContactFactory(workspace=ws, first_name=MARKER)],
        description=MARKER,
    )


def _call(ws: Workspace) -> models.Model:
    from tests.factories import CallFactory

    return CallFactory(
        workspace=ws, contact=ContactFactory(workspace=ws, first_name=MARKER), notes=MARKER
    )


def _ticket(ws: Workspace) -> models.Model:
    from patron.crm.tickets import open_ticket

    return open_ticket(
        workspace=ws,
        subject=f"{MARKER} ticket",
        description=MARKER,
        contact=ContactFactory(workspace=ws, first_name=MARKER),
    )


def _quote(ws: Workspace) -> models.Model:
    from patron.crm.quotes import create_quote

    return create_quote(
        deal=DealFactory(workspace=ws, name=f"{MARKER} quoted deal"),
        title=f"{MARKER} quote",
        valid_until=timezone.localdate() + timezone.timedelta(days=30),
        lines=[{"description": MARKER, "quantity": 1, "unit_price": 10}],
        contact=ContactFactory(workspace=ws, first_name=MARKER, email=f"{MARKER}@quote.example"),
        terms=MARKER,
    )


def _mailing_list(ws: Workspace) -> models.Model:
    """A list of workspace A with a subscriber, a pending one and their consent records."""
    from patron.audience import lists
    from patron.audience.models import ConsentSource

    mailing_list = lists.create_list(
        workspace=ws,
        name=f"{MARKER} list",
        public_name=f"{MARKER} public",
        description=MARKER,
        double_opt_in=True,
    )
    consent = lists.Consent(source=ConsentSource.API, consent_text=MARKER)
    subscriber = ContactFactory(workspace=ws, first_name=MARKER, email=f"{MARKER}@list.example")
    lists.subscribe(mailing_list=mailing_list, contact=subscriber, consent=consent, confirmed=True)
    waiting = ContactFactory(workspace=ws, first_name=MARKER, email=f"{MARKER}@wait.example")
    lists.subscribe(mailing_list=mailing_list, contact=waiting, consent=consent)
    return mailing_list


def _smtp_server(ws: Workspace) -> models.Model:
    from patron.mail.delivery_config import add_smtp_server

    return add_smtp_server(
        workspace=ws,
        host=f"{MARKER}.example.org",
        port=587,
        security="starttls",
        username=f"{MARKER}-user",
        password=f"{MARKER}-password",
    )


def _sending_domain(ws: Workspace) -> models.Model:
    from patron.mail.dkim_keys import add_sending_domain

    return add_sending_domain(workspace=ws, domain=f"{MARKER}.example.com", selector=MARKER)


def _delivery_config(ws: Workspace) -> models.Model:
    from patron.mail.delivery_config import save_delivery

    return save_delivery(
        workspace=ws,
        mode="esp",
        esp_provider="mailgun",
        esp_region="eu",
        esp_domain=f"{MARKER}.example.net",
        esp_secret=f"key-{MARKER}",
    )


def _mail_image(ws: Workspace) -> models.Model:
    from io import BytesIO

    from PIL import Image

    from patron.mail.images import upload_image

    data = BytesIO()
    Image.new("RGB", (4, 4), "red").save(data, "PNG")
    data.seek(0)
    return upload_image(ws, user=None, file=data, name=f"{MARKER}.png")
