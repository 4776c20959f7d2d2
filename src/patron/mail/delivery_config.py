"""How a workspace's mail leaves: the installation default, the Outbox, its own SMTP
servers, or an email service provider (Amazon SES, SendGrid, Mailgun, Postmark).

Writes go through the services here (validated, audited); ``workspace_transport()``
is what ``transports.transport_for()`` asks first: a ``Transport`` for the
workspace's configuration, or None for the installation default.

Credentials (SMTP passwords, ESP keys) are stored encrypted (``patron.core.crypto``)
and never leave in full: ``mask_secret()`` is what pages and the API show, and an
empty secret in an update keeps the stored one ("leave blank to keep").
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.core.crypto import SecretUnreadable, decrypt_secret, encrypt_secret, mask_secret
from patron.core.models import User, Workspace
from patron.core.services import RequestInfo, record_audit
from patron.mail import senders
from patron.mail.models import (
    DeliveryConfig,
    DeliveryMode,
    EspProvider,
    SmtpSecurity,
    WorkspaceSmtpServer,
)

if TYPE_CHECKING:
    from patron.mail.transports import Result, Transport

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?$", re.IGNORECASE
)
_SES_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_AWS_ACCESS_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")
_POSTMARK_TOKEN = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE
)
MAX_WEIGHT = 100
SECRET_LIMIT = 500
# Which secret each provider needs, as the forms name it.
SECRET_LABELS = {
    "amazon_ses": "secret access key",
    "sendgrid": "API key",
    "mailgun": "API key",
    "postmark": "server token",
}


class DeliveryInvalid(ValueError):
    """Values were refused; ``errors`` maps each field at fault ("" for none) to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(" ".join(errors.values()))
        self.errors = errors


class DeliveryUnavailable(RuntimeError):
    """The workspace's configuration cannot make a transport (e.g. an unreadable key)."""


# --- Reads -----------------------------------------------------------------------------------


def delivery_config(workspace: Workspace | int) -> DeliveryConfig | None:
    return DeliveryConfig.objects.for_workspace(workspace).first()


def smtp_servers(workspace: Workspace | int) -> QuerySet[WorkspaceSmtpServer]:
    """The workspace's servers in fail-over order."""
    return WorkspaceSmtpServer.objects.for_workspace(workspace).order_by("position", "id")


def _readable(token: str) -> tuple[str, bool]:
    try:
        return decrypt_secret(token), True
    except SecretUnreadable:
        return "", False


def masked_secret(token: str) -> str:
    """The stored secret as it may be shown: masked, or a note when it cannot be read."""
    if not token:
        return ""
    plain, ok = _readable(token)
    return mask_secret(plain) if ok else _("(unreadable: enter it again)")


def describe_delivery(workspace: Workspace | int) -> dict[str, Any]:
    """The configuration with every secret masked: what pages and the API show."""
    config = delivery_config(workspace)
    servers = [
        {
            "id": server.pk,
            "host": server.host,
            "port": server.port,
            "security": server.security,
            "username": server.username,
            "password": masked_secret(server.password),
            "verify_certificate": server.verify_certificate,
            "weight": server.weight,
            "is_active": server.is_active,
            "position": server.position,
        }
        for server in smtp_servers(workspace)
    ]
    return {
        "mode": config.mode if config else DeliveryMode.DEFAULT.value,
        "installation_transport": settings.EMAIL_TRANSPORT,
        "esp": {
            "provider": config.esp_provider if config else "",
            "region": config.esp_region if config else "",
            "access_key_id": config.esp_access_key_id if config else "",
            "domain": config.esp_domain if config else "",
            "secret": masked_secret(config.esp_secret) if config else "",
        },
        "smtp_servers": servers,
        "updated_at": config.updated_at if config else None,
    }


# --- Validation ------------------------------------------------------------------------------


def _clean_host(value: str) -> str:
    host = (value or "").strip().lower()
    if not host:
        raise DeliveryInvalid({"host": _("Enter the server's host name, e.g. smtp.example.com.")})
    if "://" in host or "/" in host or " " in host:
        raise DeliveryInvalid(
            {
                "host": _(
                    "Enter only the host name, without smtp:// or a path "
                    "(the port has its own field)."
                )
            }
        )
    try:
        ipaddress.ip_address(host.strip("[]"))
        return host.strip("[]")
    except ValueError:
        pass
    if not _HOSTNAME.match(host):
        raise DeliveryInvalid(
            {"host": _("“%(host)s” is not a valid host name.") % {"host": host[:80]}}
        )
    return host.rstrip(".")


def _clean_server(values: dict[str, Any], *, has_password: bool) -> dict[str, Any]:
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    try:
        cleaned["host"] = _clean_host(str(values.get("host", "")))
    except DeliveryInvalid as exc:
        errors.update(exc.errors)
    security = str(values.get("security") or "")
    if security not in SmtpSecurity.values:
        errors["security"] = _("Choose STARTTLS, TLS or none.")
    cleaned["security"] = security
    try:
        port = int(values.get("port") or 0)
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        errors["port"] = _("Enter a port between 1 and 65535 (usually 587, 465 or 25).")
    elif security == SmtpSecurity.TLS and port == 587:
        errors["port"] = _(
            "Port 587 expects STARTTLS; TLS from the start is usually port 465. "
            "Change the port or the security."
        )
    elif security == SmtpSecurity.STARTTLS and port == 465:
        errors["port"] = _(
            "Port 465 expects TLS from the start; STARTTLS is usually port 587. "
            "Change the port or the security."
        )
    cleaned["port"] = port
    username = str(values.get("username") or "").strip()
    password = str(values.get("password") or "")
    if len(username) > 254:
        errors["username"] = _("Keep the username under 254 characters.")
    if len(password) > SECRET_LIMIT:
        errors["password"] = _("Keep the password under 500 characters.")
    if username and not password and not has_password:
        errors["password"] = _("Enter the password for this username.")
    if password and not username:
        errors["username"] = _("Enter the username that goes with the password.")
    cleaned["username"] = username
    cleaned["password"] = password
    try:
        weight = int(values.get("weight") or 1)
    except (TypeError, ValueError):
        weight = 0
    if not 1 <= weight <= MAX_WEIGHT:
        errors["weight"] = _("Enter a weight between 1 and 100.")
    cleaned["weight"] = weight
    try:
        position = int(values.get("position") or 0)
    except (TypeError, ValueError):
        position = -1
    if position < 0:
        errors["position"] = _("Enter 0 or a positive number (lower is tried first).")
    cleaned["position"] = position
    cleaned["is_active"] = bool(values.get("is_active", True))
    cleaned["verify_certificate"] = bool(values.get("verify_certificate", True))
    if errors:
        raise DeliveryInvalid(errors)
    return cleaned


def _clean_esp(values: dict[str, Any], config: DeliveryConfig | None) -> dict[str, str]:
    """The ESP fields for the chosen provider; ``esp_secret`` empty means "keep"."""
    errors: dict[str, str] = {}
    provider = str(values.get("esp_provider") or "")
    if provider not in EspProvider.values:
        raise DeliveryInvalid({"esp_provider": _("Choose the email service provider.")})
    region = str(values.get("esp_region") or "").strip().lower()
    access_key_id = str(values.get("esp_access_key_id") or "").strip()
    domain = str(values.get("esp_domain") or "").strip().lower().rstrip(".")
    secret = str(values.get("esp_secret") or "").strip()
    stored_secret_usable = bool(
        config
        and config.esp_secret
        and config.esp_provider == provider
        and _readable(config.esp_secret)[1]
    )
    if not secret and not stored_secret_usable:
        errors["esp_secret"] = _("Enter the %(what)s.") % {"what": SECRET_LABELS[provider]}
    if len(secret) > SECRET_LIMIT:
        errors["esp_secret"] = _("That is longer than any key the provider issues.")
    if provider == "amazon_ses":
        if not _SES_REGION.match(region):
            errors["esp_region"] = _(
                "Enter the AWS region your SES account sends from, e.g. eu-west-1."
            )
        if not _AWS_ACCESS_KEY_ID.match(access_key_id):
            errors["esp_access_key_id"] = _(
                "Enter the access key ID: 16 or more capital letters and digits, "
                "e.g. AKIAIOSFODNN7EXAMPLE."
            )
        domain = ""
    elif provider == "mailgun":
        if region not in {"us", "eu"}:
            errors["esp_region"] = _("Choose the region of your Mailgun account: US or EU.")
        if not domain or not _HOSTNAME.match(domain) or "." not in domain:
            errors["esp_domain"] = _(
                "Enter the sending domain as set up in Mailgun, e.g. mg.example.com."
            )
        access_key_id = ""
    else:
        region = access_key_id = domain = ""
        if provider == "sendgrid" and secret and not secret.startswith("SG."):
            errors["esp_secret"] = _("A SendGrid API key starts with “SG.”.")
        if provider == "postmark" and secret and not _POSTMARK_TOKEN.match(secret):
            errors["esp_secret"] = _(
                "A Postmark server token looks like 1a2b3c4d-0000-0000-0000-123456789abc "
                "(Servers → your server → API Tokens)."
            )
    if errors:
        raise DeliveryInvalid(errors)
    return {
        "esp_provider": provider,
        "esp_region": region,
        "esp_access_key_id": access_key_id,
        "esp_domain": domain,
        "esp_secret": secret,
    }


# --- Writes ----------------------------------------------------------------------------------


@transaction.atomic
def save_delivery(
    *,
    workspace: Workspace,
    mode: str,
    actor: User | None = None,
    request_info: RequestInfo | None = None,
    **esp_values: Any,
) -> DeliveryConfig:
    """Choose how the workspace's mail leaves (and, for an ESP, with which credentials).

    ``esp_values``: esp_provider, esp_region, esp_access_key_id, esp_domain,
    esp_secret (empty keeps the stored secret of the same provider). SMTP needs at
    least one active server first. With another mode the ESP fields are ignored, and
    the stored ESP settings stay for a later switch back.
    """
    if mode not in DeliveryMode.values:
        raise DeliveryInvalid({"mode": _("Choose how mail is delivered.")})
    config = DeliveryConfig.objects.for_workspace(
        workspace
    ).select_for_update().first() or DeliveryConfig(workspace=workspace)
    if mode == DeliveryMode.SMTP and not smtp_servers(workspace).filter(is_active=True).exists():
        raise DeliveryInvalid(
            {"mode": _("Add an active SMTP server below before choosing SMTP delivery.")}
        )
    secret_changed = False
    if mode == DeliveryMode.ESP:
        esp = _clean_esp(esp_values, config if config.pk else None)
        secret = esp.pop("esp_secret")
        for name, value in esp.items():
            setattr(config, name, value)
        if secret:
            config.esp_secret = encrypt_secret(secret)
            secret_changed = True
    previous_mode = config.mode if config.pk else DeliveryMode.DEFAULT
    config.mode = mode
    config.updated_at = timezone.now()
    config.updated_by = actor
    config.save()
    record_audit(
        workspace=workspace,
        actor=actor,
        action="delivery.updated",
        target=config.get_mode_display(),
        request_info=request_info,
        data={
            "mode": mode,
            "previous_mode": previous_mode,
            "esp_provider": config.esp_provider if mode == DeliveryMode.ESP else "",
            "secret_changed": secret_changed,
        },
    )
    return config


def _server_audit(server: WorkspaceSmtpServer) -> str:
    return f"{server.host}:{server.port}"


@transaction.atomic
def add_smtp_server(
    *,
    workspace: Workspace,
    actor: User | None = None,
    request_info: RequestInfo | None = None,
    **values: Any,
) -> WorkspaceSmtpServer:
    """Add a server (host, port, security, username, password, weight, position,
    is_active, verify_certificate); without a position it goes last. Port and security
    default to 587 with STARTTLS, the submission port most providers give."""
    values.setdefault("port", 587)
    values.setdefault("security", SmtpSecurity.STARTTLS)
    if "position" not in values or values["position"] in (None, ""):
        last = smtp_servers(workspace).order_by("-position").values_list("position", flat=True)
        values["position"] = (last.first() or 0) + 1 if last.exists() else 1
    cleaned = _clean_server(values, has_password=False)
    password = cleaned.pop("password")
    server = WorkspaceSmtpServer.objects.create(
        workspace=workspace, password=encrypt_secret(password), **cleaned
    )
    record_audit(
        workspace=workspace,
        actor=actor,
        action="delivery.smtp_server_added",
        target=_server_audit(server),
        request_info=request_info,
    )
    return server


@transaction.atomic
def update_smtp_server(
    *,
    server: WorkspaceSmtpServer,
    actor: User | None = None,
    request_info: RequestInfo | None = None,
    **values: Any,
) -> WorkspaceSmtpServer:
    """Change a server; an empty password keeps the stored one (a username cleared
    clears it). Fields not given keep their value."""
    current = {
        "host": server.host,
        "port": server.port,
        "security": server.security,
        "username": server.username,
        "weight": server.weight,
        "position": server.position,
        "is_active": server.is_active,
        "verify_certificate": server.verify_certificate,
    }
    merged = {**current, **{k: v for k, v in values.items() if v is not None}}
    cleaned = _clean_server(merged, has_password=bool(server.password))
    password = cleaned.pop("password")
    workspace = server.workspace
    if not cleaned["is_active"] and server.is_active and _is_last_active_in_use(server):
        raise DeliveryInvalid(
            {
                "is_active": _(
                    "This is the only active server and delivery uses SMTP: add another "
                    "server or choose another delivery method first."
                )
            }
        )
    for name, value in cleaned.items():
        setattr(server, name, value)
    password_changed = bool(password)
    if password:
        server.password = encrypt_secret(password)
    elif not cleaned["username"]:
        server.password = ""
    server.save()
    record_audit(
        workspace=workspace,
        actor=actor,
        action="delivery.smtp_server_updated",
        target=_server_audit(server),
        request_info=request_info,
        data={"password_changed": password_changed},
    )
    return server


def _is_last_active_in_use(server: WorkspaceSmtpServer) -> bool:
    config = delivery_config(server.workspace_id)
    if config is None or config.mode != DeliveryMode.SMTP:
        return False
    others = smtp_servers(server.workspace_id).filter(is_active=True).exclude(pk=server.pk)
    return not others.exists()


@transaction.atomic
def delete_smtp_server(
    *,
    server: WorkspaceSmtpServer,
    actor: User | None = None,
    request_info: RequestInfo | None = None,
) -> None:
    """Delete a server; refused for the last active one while delivery uses SMTP."""
    if server.is_active and _is_last_active_in_use(server):
        raise DeliveryInvalid(
            {
                "": _(
                    "%(server)s is the only active server and delivery uses SMTP: add another "
                    "server or choose another delivery method first."
                )
                % {"server": _server_audit(server)}
            }
        )
    record_audit(
        workspace=server.workspace,
        actor=actor,
        action="delivery.smtp_server_deleted",
        target=_server_audit(server),
        request_info=request_info,
    )
    server.delete()


# --- The transport ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpServerSettings:
    """One server as the SMTP transport receives it (password decrypted)."""

    host: str
    port: int
    security: str  # none | starttls | tls
    username: str
    password: str
    weight: int
    verify_certificate: bool


def _smtp_settings(workspace_id: int) -> list[SmtpServerSettings]:
    result = []
    for server in smtp_servers(workspace_id).filter(is_active=True):
        try:
            password = decrypt_secret(server.password)
        except SecretUnreadable as exc:
            raise DeliveryUnavailable(
                _("The password of %(server)s cannot be read: enter it again.")
                % {"server": _server_audit(server)}
            ) from exc
        result.append(
            SmtpServerSettings(
                host=server.host,
                port=server.port,
                security=server.security,
                username=server.username,
                password=password,
                weight=server.weight,
                verify_certificate=server.verify_certificate,
            )
        )
    return result


def smtp_transport(servers: list[SmtpServerSettings]) -> Transport:
    """The pooled SMTP transport for these servers (weights, fail-over in this order),
    within the installation's sending speed limits like every other SMTP send."""
    from patron.mail import smtp, transports
    from patron.mail.throttle import installation_throttle

    return transports.SmtpTransport(
        [
            smtp.SmtpServer(
                host=server.host,
                port=server.port,
                username=server.username,
                password=server.password,
                tls=server.security,
                weight=server.weight,
                verify=server.verify_certificate,
            )
            for server in servers
        ],
        throttle=installation_throttle(),
    )


def capture_transport() -> Transport:
    """The Outbox transport (nothing leaves the machine)."""
    from patron.mail import transports

    return transports.CaptureTransport()


def esp_transport(config: DeliveryConfig) -> Transport:
    from patron.mail.esp import EspTransport

    try:
        secret = decrypt_secret(config.esp_secret)
    except SecretUnreadable as exc:
        raise DeliveryUnavailable(
            _("The stored %(what)s cannot be read: enter it again.")
            % {"what": SECRET_LABELS.get(config.esp_provider, "key")}
        ) from exc
    return EspTransport(
        config.esp_provider,
        secret=secret,
        region=config.esp_region,
        access_key_id=config.esp_access_key_id,
        domain=config.esp_domain,
    )


def workspace_transport(workspace_id: int | None) -> Transport | None:
    """The transport the workspace configured, or None for the installation default.

    ``transports.transport_for(workspace_id)`` calls this first. Raises
    ``DeliveryUnavailable`` when the configuration cannot be used (a stored
    credential no configured key decrypts, no active SMTP server): the mail then
    waits (retry) rather than leave through a route the workspace did not choose.
    """
    if workspace_id is None:
        return None
    config = delivery_config(workspace_id)
    if config is None or config.mode == DeliveryMode.DEFAULT:
        return None
    if config.mode == DeliveryMode.CAPTURE:
        return capture_transport()
    if config.mode == DeliveryMode.SMTP:
        servers = _smtp_settings(workspace_id)
        if not servers:
            raise DeliveryUnavailable(_("Delivery uses SMTP but no server is active."))
        return smtp_transport(servers)
    return esp_transport(config)


# --- Test message ----------------------------------------------------------------------------


def _test_message(workspace: Workspace, to_email: str) -> tuple[str, bytes]:
    """The test message, built as the pipeline builds campaign mail (``mime.build_message``)."""
    from patron.mail import mime

    identity = senders.default_identity(workspace)
    from_header = identity.formatted if identity else settings.DEFAULT_FROM_EMAIL
    from_name, from_address = parseaddr(from_header)
    subject = _("Test message from %(workspace)s") % {"workspace": workspace.name}
    text = _(
        "This is a test message sent from Patron's Email delivery settings of the "
        "workspace %(workspace)s.\n\nIf you can read it, mail is delivered as configured.\n"
    ) % {"workspace": workspace.name}
    data = mime.build_message(
        from_name=from_name,
        from_email=from_address,
        to_email=to_email,
        subject=subject,
        text=text,
        html="",
        message_id=mime.message_id_for(f"test.{workspace.pk}.{secrets.token_hex(8)}"),
        reply_to=identity.reply_to if identity else "",
    )
    return from_address, data


def _sign(workspace_id: int, from_address: str, data: bytes) -> bytes:
    from patron.mail import dkim, dkim_keys

    domain = from_address.rpartition("@")[2].lower()
    signer = dkim_keys.workspace_signer(workspace_id, domain) or dkim.signer_for(
        workspace_id, domain
    )
    return signer.sign(data) if signer is not None else data


def send_test_message(
    *,
    workspace: Workspace,
    to_email: str,
    actor: User | None = None,
    request_info: RequestInfo | None = None,
) -> Result:
    """Send a short real message to ``to_email`` through the workspace's transport (the
    installation default when none is configured) and return the transport's Result.

    ``DeliveryInvalid`` for a bad address, ``DeliveryUnavailable`` when the
    configuration cannot make a transport.
    """
    try:
        address = senders.normalise_address(to_email, "to_email")
    except senders.SenderInvalid as exc:
        raise DeliveryInvalid({"to_email": str(exc)}) from exc
    from patron.mail import transports

    from_address, data = _test_message(workspace, address)
    data = _sign(workspace.pk, from_address, data)
    transport = workspace_transport(workspace.pk) or transports.installation_transport()
    try:
        (result,) = transport.send(
            [
                transports.Outgoing(
                    key="test",
                    envelope_from=from_address,
                    recipients=[address],
                    data=data,
                    workspace_id=workspace.pk,
                )
            ]
        )
    finally:
        transport.close()
    record_audit(
        workspace=workspace,
        actor=actor,
        action="delivery.test_sent",
        target=address,
        request_info=request_info,
        data={"outcome": str(result.outcome), "code": result.code},
    )
    return result
