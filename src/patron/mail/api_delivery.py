"""API: how the workspace's mail is delivered, and its sending domains (DKIM keys).

Secrets are write-only: answers carry them masked (``"••••••••abcd"``), and an empty
or missing secret in an update keeps the stored one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status

from patron.api.errors import ApiError
from patron.api.pagination import paginate
from patron.core.http import ApiRequest
from patron.mail import delivery_config as delivery
from patron.mail import dkim_keys
from patron.mail.models import SendingDomain, WorkspaceSmtpServer

router = Router(tags=["delivery"])


class EspOut(Schema):
    provider: str
    region: str
    access_key_id: str
    domain: str
    secret: str


class SmtpServerOut(Schema):
    id: int
    host: str
    port: int
    security: str
    username: str
    password: str
    verify_certificate: bool
    weight: int
    is_active: bool
    position: int


class DeliveryOut(Schema):
    mode: str
    installation_transport: str
    esp: EspOut
    smtp_servers: list[SmtpServerOut]
    updated_at: datetime | None


class DeliveryIn(Schema):
    mode: str
    esp_provider: str = ""
    esp_region: str = ""
    esp_access_key_id: str = ""
    esp_domain: str = ""
    esp_secret: str = ""


class SmtpServerIn(Schema):
    host: str
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password: str = ""
    verify_certificate: bool = True
    weight: int = 1
    is_active: bool = True
    position: int | None = None


class SmtpServerPatch(Schema):
    host: str | None = None
    port: int | None = None
    security: str | None = None
    username: str | None = None
    password: str | None = None
    verify_certificate: bool | None = None
    weight: int | None = None
    is_active: bool | None = None
    position: int | None = None


class TestIn(Schema):
    to_email: str


class TestOut(Schema):
    outcome: str
    code: int | None
    reply: str


class DnsRecordOut(Schema):
    kind: str
    type: str = "TXT"
    name: str
    value: str
    status: str
    found: list[str]
    message: str


class SendingDomainOut(Schema):
    id: int
    domain: str
    selector: str
    dkim_status: str
    checked_at: datetime | None
    created_at: datetime
    dkim_record_name: str
    dkim_record_value: str


class SendingDomainDetail(SendingDomainOut):
    records: list[DnsRecordOut]


class SendingDomainPage(Schema):
    items: list[SendingDomainOut]
    next_cursor: str | None


class SendingDomainIn(Schema):
    domain: str
    selector: str = ""


class PageFilters(Schema):
    cursor: str | None = None
    limit: int = 50


def _invalid(exc: delivery.DeliveryInvalid) -> ApiError:
    fields = {name or "__all__": [message] for name, message in exc.errors.items()}
    return ApiError(422, "invalid", str(exc), fields)


def _server(request: ApiRequest, smtp_server_id: int) -> WorkspaceSmtpServer:
    return get_object_or_404(  # type: ignore[no-any-return]
        delivery.smtp_servers(request.workspace), pk=smtp_server_id
    )


def _server_out(server: WorkspaceSmtpServer) -> dict[str, Any]:
    for row in delivery.describe_delivery(server.workspace_id)["smtp_servers"]:
        if row["id"] == server.pk:
            return row  # type: ignore[no-any-return]
    raise ApiError(404, "not_found", "Not found.")


@router.get("/delivery", response=DeliveryOut)
def get_delivery(request: ApiRequest) -> dict[str, Any]:
    """The delivery method, ESP settings and SMTP servers; secrets masked."""
    return delivery.describe_delivery(request.workspace)


@router.put("/delivery", response=DeliveryOut)
def update_delivery(request: ApiRequest, payload: DeliveryIn) -> dict[str, Any]:
    """Choose the delivery method: ``default``, ``capture``, ``smtp`` (needs an active
    server) or ``esp`` with ``esp_provider`` amazon_ses | sendgrid | mailgun | postmark and
    its credentials (SES: region, access key id, secret; SendGrid: secret = API key;
    Mailgun: secret = API key, domain, region us|eu; Postmark: secret = server token).
    An empty ``esp_secret`` keeps the stored one of the same provider."""
    try:
        delivery.save_delivery(workspace=request.workspace, **payload.dict())
    except delivery.DeliveryInvalid as exc:
        raise _invalid(exc) from exc
    return delivery.describe_delivery(request.workspace)


@router.post("/delivery/smtp-servers", response={201: SmtpServerOut})
def add_smtp_server(request: ApiRequest, payload: SmtpServerIn) -> Status:
    try:
        server = delivery.add_smtp_server(workspace=request.workspace, **payload.dict())
    except delivery.DeliveryInvalid as exc:
        raise _invalid(exc) from exc
    return Status(201, _server_out(server))


@router.patch("/delivery/smtp-servers/{smtp_server_id}", response=SmtpServerOut)
def update_smtp_server(
    request: ApiRequest, smtp_server_id: int, payload: SmtpServerPatch
) -> dict[str, Any]:
    """Change a server; an empty or missing ``password`` keeps the stored one."""
    server = _server(request, smtp_server_id)
    try:
        server = delivery.update_smtp_server(server=server, **payload.dict(exclude_unset=True))
    except delivery.DeliveryInvalid as exc:
        raise _invalid(exc) from exc
    return _server_out(server)


@router.delete("/delivery/smtp-servers/{smtp_server_id}", response={204: None})
def delete_smtp_server(request: ApiRequest, smtp_server_id: int) -> Status:
    """409 for the last active server while the delivery method is SMTP."""
    server = _server(request, smtp_server_id)
    try:
        delivery.delete_smtp_server(server=server)
    except delivery.DeliveryInvalid as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    return Status(204, None)


@router.post("/delivery/test", response=TestOut)
def send_test(request: ApiRequest, payload: TestIn) -> dict[str, Any]:
    """Send a test message now through the workspace's delivery method; the answer is
    the outcome (sent | retry | failed) with the server's code and reply."""
    try:
        result = delivery.send_test_message(workspace=request.workspace, to_email=payload.to_email)
    except delivery.DeliveryInvalid as exc:
        raise _invalid(exc) from exc
    except delivery.DeliveryUnavailable as exc:
        raise ApiError(409, "unavailable", str(exc)) from exc
    return {"outcome": str(result.outcome), "code": result.code, "reply": result.reply}


def _domains(request: ApiRequest) -> Any:
    return dkim_keys.sending_domains(request.workspace)


def _summary(row: SendingDomain) -> dict[str, Any]:
    return {
        **{name: getattr(row, name) for name in ("id", "domain", "selector", "dkim_status")},
        "checked_at": row.checked_at,
        "created_at": row.created_at,
        "dkim_record_name": row.record_name,
        "dkim_record_value": row.record_value,
    }


def _detail(row: SendingDomain, records: list[dkim_keys.RecordCheck]) -> dict[str, Any]:
    return {
        **_summary(row),
        "records": [
            {
                "kind": record.kind,
                "name": record.name,
                "value": record.expected,
                "status": record.status,
                "found": record.found,
                "message": record.message,
            }
            for record in records
        ],
    }


@router.get("/sending-domains", response=SendingDomainPage)
def list_sending_domains(request: ApiRequest, filters: Query[PageFilters]) -> dict[str, Any]:
    page = paginate(_domains(request), cursor=filters.cursor, limit=filters.limit)
    return {**page, "items": [_summary(row) for row in page["items"]]}


@router.post("/sending-domains", response={201: SendingDomainDetail})
def create_sending_domain(request: ApiRequest, payload: SendingDomainIn) -> Status:
    """Generate a DKIM key (RSA-2048) for the domain; publish ``dkim_record_value`` as a
    TXT record at ``dkim_record_name``, then POST .../check."""
    try:
        row = dkim_keys.add_sending_domain(workspace=request.workspace, **payload.dict())
    except dkim_keys.SendingDomainInvalid as exc:
        taken = isinstance(exc, dkim_keys.SendingDomainTaken)
        status, code = (409, "conflict") if taken else (422, "invalid")
        raise ApiError(status, code, str(exc), {exc.field: [str(exc)]}) from exc
    return Status(201, _detail(row, dkim_keys.dns_records(row)))


@router.get("/sending-domains/{sending_domain_id}", response=SendingDomainDetail)
def get_sending_domain(request: ApiRequest, sending_domain_id: int) -> dict[str, Any]:
    row = get_object_or_404(_domains(request), pk=sending_domain_id)
    return _detail(row, dkim_keys.dns_records(row))


@router.post("/sending-domains/{sending_domain_id}/check", response=SendingDomainDetail)
def check_sending_domain(request: ApiRequest, sending_domain_id: int) -> dict[str, Any]:
    """Look the DKIM, SPF and DMARC records up now; ``dkim_status`` found means mail from
    the domain is signed."""
    row = get_object_or_404(_domains(request), pk=sending_domain_id)
    records = dkim_keys.check_sending_domain(sending_domain=row)
    return _detail(row, records)


@router.delete("/sending-domains/{sending_domain_id}", response={204: None})
def delete_sending_domain(request: ApiRequest, sending_domain_id: int) -> Status:
    row = get_object_or_404(_domains(request), pk=sending_domain_id)
    dkim_keys.delete_sending_domain(sending_domain=row)
    return Status(204, None)
