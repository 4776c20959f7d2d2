"""Sending domains: a DKIM key pair per workspace and domain, the DNS records to
publish (DKIM, SPF, DMARC), and a check that they are published.

``add_sending_domain()`` generates an RSA-2048 key pair; the private key is kept
encrypted (``patron.core.crypto``), the public key is shown as the TXT record
``selector._domainkey.domain "v=DKIM1; k=rsa; p=..."``. ``check_sending_domain()``
looks the records up (dnspython) and says, in words, whether the DKIM record is
found, missing, or carries another key. ``workspace_signer()`` gives the DKIM
signer for mail from a domain (or a subdomain of one) whose record was found.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import dns.exception
import dns.resolver
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.core.crypto import SecretUnreadable, decrypt_secret, encrypt_secret
from patron.core.models import User, Workspace
from patron.core.services import RequestInfo, record_audit
from patron.mail.models import DeliveryMode, DnsCheck, SendingDomain

if TYPE_CHECKING:
    from patron.mail.dkim import DkimSigner

logger = logging.getLogger(__name__)

KEY_BITS = 2048
DNS_TIMEOUT_SECONDS = 5.0
_DOMAIN = re.compile(r"^(?=.{1,253}$)((?!-)[a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}$")
_SELECTOR = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# What each provider's SPF include is, for the advice shown beside the records.
SPF_INCLUDES = {
    "amazon_ses": "include:amazonses.com",
    "sendgrid": "include:sendgrid.net",
    "mailgun": "include:mailgun.org",
    "postmark": "include:spf.mtasv.net",
}


class SendingDomainInvalid(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class SendingDomainTaken(SendingDomainInvalid):
    pass


class Resolver(Protocol):
    """The part of ``dns.resolver.Resolver`` the checks use (tests give a stub)."""

    def resolve(self, qname: str, rdtype: str, *args: Any, **kwargs: Any) -> Any: ...


# --- Keys ------------------------------------------------------------------------------------


def generate_key_pair() -> tuple[bytes, str]:
    """A new RSA-2048 key: the private key as PEM (PKCS#8), the public key as the
    base64 DER (SubjectPublicKeyInfo) a DKIM record's ``p=`` carries."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, base64.b64encode(public_der).decode("ascii")


def default_selector() -> str:
    """``patronYYYYMM``: a new key next month gets a new name, so both can be live."""
    return "patron" + timezone.now().strftime("%Y%m")


def normalise_domain(value: str) -> str:
    domain = (value or "").strip().lower().rstrip(".")
    if domain.startswith(("http://", "https://")) or "/" in domain or "@" in domain:
        raise SendingDomainInvalid(
            "domain",
            _("Enter only the domain, e.g. example.com (no https://, no address, no path)."),
        )
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise SendingDomainInvalid(
            "domain", _("“%(value)s” is not a valid domain.") % {"value": value[:80]}
        ) from None
    if not _DOMAIN.match(domain):
        raise SendingDomainInvalid(
            "domain",
            _("“%(value)s” is not a valid domain: enter something like example.com.")
            % {"value": value[:80]},
        )
    return domain


# --- Reads -----------------------------------------------------------------------------------


def sending_domains(workspace: Workspace | int) -> QuerySet[SendingDomain]:
    return SendingDomain.objects.for_workspace(workspace).order_by("domain", "id")


def _candidate_domains(from_domain: str) -> list[str]:
    """The domain and its parents (not the top-level one), longest first."""
    labels = from_domain.lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def workspace_signer(workspace_id: int | None, from_domain: str) -> DkimSigner | None:
    """The workspace's DKIM signer for mail from ``from_domain`` (or a subdomain of a
    sending domain: relaxed DMARC alignment accepts the parent), once its DNS record
    was found; None otherwise (also when the key cannot be decrypted)."""
    if workspace_id is None or not from_domain:
        return None
    candidates = _candidate_domains(from_domain)
    if not candidates:
        return None
    rows = {
        row.domain: row
        for row in SendingDomain.objects.for_workspace(workspace_id).filter(
            domain__in=candidates, dkim_status=DnsCheck.FOUND
        )
    }
    for candidate in candidates:
        row = rows.get(candidate)
        if row is None:
            continue
        try:
            private_pem = decrypt_secret(row.private_key).encode()
        except SecretUnreadable:
            # Sending unsigned beats not sending; the settings page shows the key must be
            # made again, and the log says why signing stopped.
            logger.warning(
                "DKIM key of %s (workspace %s) cannot be decrypted with the configured "
                "PATRON_ENCRYPTION_KEY; mail from it goes out unsigned",
                row.domain,
                workspace_id,
            )
            return None
        from patron.mail.dkim import DkimSigner

        return DkimSigner(row.domain, row.selector, private_pem)
    return None


# --- Writes ----------------------------------------------------------------------------------


@transaction.atomic
def add_sending_domain(
    *,
    workspace: Workspace,
    domain: str,
    selector: str = "",
    actor: User | None = None,
    request_info: RequestInfo | None = None,
) -> SendingDomain:
    """Generate a DKIM key for ``domain`` (one per domain and workspace)."""
    domain = normalise_domain(domain)
    selector = (selector or "").strip().lower() or default_selector()
    if not _SELECTOR.match(selector):
        raise SendingDomainInvalid(
            "selector",
            _("A selector is letters, digits and hyphens (up to 63), e.g. patron202612."),
        )
    if sending_domains(workspace).filter(domain=domain).exists():
        raise SendingDomainTaken(
            "domain", _("%(domain)s is a sending domain already.") % {"domain": domain}
        )
    private_pem, public_key = generate_key_pair()
    try:
        with transaction.atomic():
            row = SendingDomain.objects.create(
                workspace=workspace,
                domain=domain,
                selector=selector,
                private_key=encrypt_secret(private_pem.decode("ascii")),
                public_key=public_key,
                created_by=actor,
            )
    except IntegrityError:
        raise SendingDomainTaken(
            "domain", _("%(domain)s is a sending domain already.") % {"domain": domain}
        ) from None
    record_audit(
        workspace=workspace,
        actor=actor,
        action="sending_domain.created",
        target=domain,
        request_info=request_info,
        data={"selector": selector},
    )
    return row


@transaction.atomic
def delete_sending_domain(
    *,
    sending_domain: SendingDomain,
    actor: User | None = None,
    request_info: RequestInfo | None = None,
) -> None:
    record_audit(
        workspace=sending_domain.workspace,
        actor=actor,
        action="sending_domain.deleted",
        target=sending_domain.domain,
        request_info=request_info,
        data={"selector": sending_domain.selector},
    )
    sending_domain.delete()


# --- DNS -------------------------------------------------------------------------------------


def parse_tags(record: str) -> dict[str, str]:
    """A DKIM/DMARC tag list (``v=DKIM1; k=rsa; p=MIIB...``) as a dict; whitespace
    inside values (long keys are often split) is removed."""
    tags: dict[str, str] = {}
    for item in record.split(";"):
        name, sep, value = item.partition("=")
        if not sep:
            continue
        tags[name.strip().lower()] = "".join(value.split())
    return tags


def _txt_records(resolver: Resolver, name: str) -> list[str]:
    """The TXT strings at ``name`` (each record's character strings joined); [] when the
    name or the type does not exist. Other failures raise ``dns.exception.DNSException``."""
    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    records = []
    for rdata in answer:
        records.append(b"".join(rdata.strings).decode("utf-8", errors="replace"))
    return records


@dataclass
class RecordCheck:
    """One DNS record: where, what to publish, what was found, and what it means."""

    kind: str  # dkim | spf | dmarc
    name: str
    expected: str
    status: str  # found | not_found | mismatch | error
    found: list[str] = field(default_factory=list)
    message: str = ""


def compare_dkim(records: list[str], public_key: str) -> tuple[str, str]:
    """Status and wording for the TXT strings found at the DKIM name."""
    dkim_records = [r for r in records if "p=" in r]
    if not dkim_records:
        return DnsCheck.NOT_FOUND, _(
            "Not found: no DKIM record is published at this name yet. Add the TXT record "
            "below at your DNS provider; changes can take up to an hour to show."
        )
    for record in dkim_records:
        tags = parse_tags(record)
        if tags.get("p") == public_key and tags.get("k", "rsa") == "rsa":
            return DnsCheck.FOUND, _(
                "Found: the published DKIM record matches this key. Mail from this domain "
                "is signed."
            )
    return DnsCheck.MISMATCH, _(
        "Mismatch: a DKIM record is published at this name, but with a different key "
        "(an older key, or a typo when copying). Replace its value with the one below."
    )


class _UnconfiguredResolver:
    """Stands in when the machine has no DNS configuration: every lookup fails as such."""

    def __init__(self, error: dns.exception.DNSException) -> None:
        self.error = error

    def resolve(self, qname: str, rdtype: str, *args: Any, **kwargs: Any) -> Any:
        raise self.error


def _resolver() -> Resolver:
    try:
        resolver = dns.resolver.Resolver()
    except dns.exception.DNSException as error:  # no /etc/resolv.conf, say
        return _UnconfiguredResolver(error)
    resolver.lifetime = DNS_TIMEOUT_SECONDS
    return resolver


def spf_advice(
    domain: str, delivery_mode: str, provider: str, smtp_hosts: Sequence[str] = ()
) -> str:
    """An SPF record to start from: the domain's MX, plus the ESP's include or the
    workspace's own SMTP servers (``a:host``; ``ip4:``/``ip6:`` for addresses)."""
    parts = ["mx"]
    if delivery_mode == DeliveryMode.ESP and provider in SPF_INCLUDES:
        parts.append(SPF_INCLUDES[provider])
    if delivery_mode == DeliveryMode.SMTP:
        for host in smtp_hosts:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                parts.append(f"a:{host}")
                continue
            if not (address.is_loopback or address.is_private):
                parts.append(f"ip{address.version}:{address}")
    return "v=spf1 " + " ".join(dict.fromkeys(parts)) + " ~all"


def _spf_context(workspace_id: int) -> tuple[str, str, list[str]]:
    """The delivery mode, ESP provider and active SMTP hosts the SPF advice names."""
    from patron.mail.delivery_config import delivery_config, smtp_servers

    config = delivery_config(workspace_id)
    mode = config.mode if config else DeliveryMode.DEFAULT
    provider = config.esp_provider if config else ""
    hosts = (
        list(smtp_servers(workspace_id).filter(is_active=True).values_list("host", flat=True))
        if mode == DeliveryMode.SMTP
        else []
    )
    return mode, provider, hosts


def dmarc_advice(domain: str) -> str:
    return f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}; adkim=r; aspf=r"


def check_records(
    sending_domain: SendingDomain,
    *,
    resolver: Resolver | None = None,
    delivery_mode: str = DeliveryMode.DEFAULT,
    provider: str = "",
    smtp_hosts: Sequence[str] = (),
) -> list[RecordCheck]:
    """Look up the DKIM, SPF and DMARC records of the domain."""
    resolver = resolver or _resolver()
    domain = sending_domain.domain
    checks: list[RecordCheck] = []
    dkim = RecordCheck(
        "dkim", sending_domain.record_name, sending_domain.record_value, DnsCheck.ERROR
    )
    try:
        dkim.found = _txt_records(resolver, sending_domain.record_name)
        dkim.status, dkim.message = compare_dkim(dkim.found, sending_domain.public_key)
    except dns.exception.DNSException as exc:
        dkim.message = _(
            "The lookup failed (%(error)s): the DNS servers did not answer. Try again later."
        ) % {"error": exc.__class__.__name__}
    checks.append(dkim)

    spf = RecordCheck(
        "spf", domain, spf_advice(domain, delivery_mode, provider, smtp_hosts), DnsCheck.ERROR
    )
    try:
        spf.found = [r for r in _txt_records(resolver, domain) if r.lower().startswith("v=spf1")]
        if not spf.found:
            spf.status = DnsCheck.NOT_FOUND
            spf.message = _("No SPF record: publish one so receivers know who sends for you.")
        elif len(spf.found) > 1:
            spf.status = DnsCheck.MISMATCH
            spf.message = _(
                "Several SPF records: receivers then ignore them all. Merge them into one."
            )
        else:
            spf.status = DnsCheck.FOUND
            spf.message = _(
                "An SPF record is published. Check that it names every service that sends "
                "for this domain."
            )
    except dns.exception.DNSException as exc:
        spf.message = _("The lookup failed (%(error)s). Try again later.") % {
            "error": exc.__class__.__name__
        }
    checks.append(spf)

    dmarc = RecordCheck("dmarc", f"_dmarc.{domain}", dmarc_advice(domain), DnsCheck.ERROR)
    try:
        dmarc.found = [
            r for r in _txt_records(resolver, dmarc.name) if r.lower().startswith("v=dmarc1")
        ]
        if dmarc.found:
            dmarc.status = DnsCheck.FOUND
            policy = parse_tags(dmarc.found[0]).get("p", "")
            dmarc.message = _("A DMARC record is published (policy: %(policy)s).") % {
                "policy": policy or "?"
            }
        else:
            dmarc.status = DnsCheck.NOT_FOUND
            dmarc.message = _(
                "No DMARC record. Start with p=none to receive reports, then move to "
                "quarantine once every sender passes."
            )
    except dns.exception.DNSException as exc:
        dmarc.message = _("The lookup failed (%(error)s). Try again later.") % {
            "error": exc.__class__.__name__
        }
    checks.append(dmarc)
    return checks


def check_sending_domain(
    *,
    sending_domain: SendingDomain,
    resolver: Resolver | None = None,
    actor: User | None = None,
    request_info: RequestInfo | None = None,
) -> list[RecordCheck]:
    """Check the domain's records now and keep the DKIM result (it decides signing)."""
    mode, provider, hosts = _spf_context(sending_domain.workspace_id)
    checks = check_records(
        sending_domain,
        resolver=resolver,
        delivery_mode=mode,
        provider=provider,
        smtp_hosts=hosts,
    )
    dkim = checks[0]
    previous = sending_domain.dkim_status
    if dkim.status == DnsCheck.ERROR and previous:
        # A lookup that failed says nothing about the record: a verified domain stays
        # verified (and signed) until a lookup that answers says otherwise.
        sending_domain.check_detail = dkim.message
        sending_domain.save(update_fields=["check_detail"])
        return checks
    sending_domain.dkim_status = dkim.status
    sending_domain.check_detail = dkim.message
    sending_domain.checked_at = timezone.now()
    sending_domain.save(update_fields=["dkim_status", "check_detail", "checked_at"])
    if previous != dkim.status:
        record_audit(
            workspace=sending_domain.workspace,
            actor=actor,
            action="sending_domain.checked",
            target=sending_domain.domain,
            request_info=request_info,
            data={"dkim": dkim.status, "previous": previous},
        )
    return checks


RECHECK_EVERY = timedelta(hours=6)
RECHECK_BATCH = 50  # at most 3 lookups of 5 s each per domain


def recheck_sending_domains(
    *, resolver: Resolver | None = None, now: datetime | None = None
) -> int:
    """Check again the domains not checked for ``RECHECK_EVERY`` (every workspace's):
    a record published since is found without anyone pressing the button, and a
    record removed or replaced stops the signing. Returns how many were checked."""
    now = now or timezone.now()
    due = (
        SendingDomain.objects.unscoped()
        .select_related("workspace")
        .filter(Q(checked_at__isnull=True) | Q(checked_at__lte=now - RECHECK_EVERY))
        .order_by(F("checked_at").asc(nulls_first=True), "id")[:RECHECK_BATCH]
    )
    resolver = resolver or _resolver()
    checked = 0
    for row in due:
        check_sending_domain(sending_domain=row, resolver=resolver)
        checked += 1
    return checked


def dns_records(sending_domain: SendingDomain) -> list[RecordCheck]:
    """The records to publish, without looking anything up (status from the last check)."""
    mode, provider, hosts = _spf_context(sending_domain.workspace_id)
    domain = sending_domain.domain
    return [
        RecordCheck(
            "dkim",
            sending_domain.record_name,
            sending_domain.record_value,
            sending_domain.dkim_status,
            message=sending_domain.check_detail,
        ),
        RecordCheck("spf", domain, spf_advice(domain, mode, provider, hosts), ""),
        RecordCheck("dmarc", f"_dmarc.{domain}", dmarc_advice(domain), ""),
    ]
