"""Sending domains: DKIM key generation, the records to publish, and the DNS check
(dnspython answers stubbed at the resolver: no network in tests)."""

from __future__ import annotations

import base64

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256

from patron.core.crypto import decrypt_secret
from patron.core.models import AuditEntry
from patron.mail import delivery_config as delivery
from patron.mail import dkim_keys
from patron.mail.models import SendingDomain

pytestmark = pytest.mark.django_db


class StubResolver:
    """Answers TXT queries from a dict, as dnspython's Resolver.resolve does: a list of
    TXT rdata per name, NXDOMAIN for unknown names, or a given exception."""

    def __init__(self, records: dict[str, list[str] | Exception]) -> None:
        self.records = records
        self.queries: list[tuple[str, str]] = []

    def resolve(self, qname, rdtype, *args, **kwargs):
        self.queries.append((qname, rdtype))
        answer = self.records.get(qname)
        if answer is None:
            raise dns.resolver.NXDOMAIN(qnames=[dns.name.from_text(qname)])
        if isinstance(answer, Exception):
            raise answer
        return [dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, text) for text in answer]


def split_quoted(value: str, size: int = 255) -> str:
    """A long TXT value as zone files write it: several quoted strings."""
    return " ".join(f'"{value[i : i + size]}"' for i in range(0, len(value), size))


@pytest.fixture
def domain(workspace, owner):
    return dkim_keys.add_sending_domain(
        workspace=workspace, domain="Acme.Example", selector="s1", actor=owner
    )


def test_generated_key_is_rsa_2048_and_its_public_half_is_the_record(workspace, domain):
    private = serialization.load_pem_private_key(
        decrypt_secret(domain.private_key).encode(), password=None
    )
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 2048
    public = serialization.load_der_public_key(base64.b64decode(domain.public_key))
    signature = private.sign(b"hello", padding.PKCS1v15(), SHA256())
    public.verify(signature, b"hello", padding.PKCS1v15(), SHA256())  # raises if not a pair
    assert domain.domain == "acme.example"
    assert domain.record_name == "s1._domainkey.acme.example"
    assert domain.record_value == f"v=DKIM1; k=rsa; p={domain.public_key}"
    assert "PRIVATE KEY" not in domain.private_key  # encrypted at rest
    assert AuditEntry.objects.filter(action="sending_domain.created").count() == 1


def test_default_selector_names_the_month(workspace):
    row = dkim_keys.add_sending_domain(workspace=workspace, domain="news.acme.example")
    assert row.selector.startswith("patron") and len(row.selector) == len("patron202612")


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ("https://acme.example", "domain", "Enter only the domain"),
        ("news@acme.example", "domain", "Enter only the domain"),
        ("localhost", "domain", "is not a valid domain"),
        ("acme..example", "domain", "is not a valid domain"),
    ],
)
def test_bad_domains_say_what_is_wrong(workspace, value, field, message):
    with pytest.raises(dkim_keys.SendingDomainInvalid) as caught:
        dkim_keys.add_sending_domain(workspace=workspace, domain=value)
    assert caught.value.field == field
    assert message in str(caught.value)


def test_bad_selector_and_duplicates_are_refused(workspace, domain):
    with pytest.raises(dkim_keys.SendingDomainInvalid, match="selector is letters"):
        dkim_keys.add_sending_domain(workspace=workspace, domain="b.example", selector="a_b")
    with pytest.raises(dkim_keys.SendingDomainTaken):
        dkim_keys.add_sending_domain(workspace=workspace, domain="ACME.example.")


def test_international_domains_become_punycode(workspace):
    row = dkim_keys.add_sending_domain(workspace=workspace, domain="bücher.example")
    assert row.domain == "xn--bcher-kva.example"


def test_parse_tags_joins_split_keys():
    assert dkim_keys.parse_tags("v=DKIM1; k=rsa;\n p=MIIB AQAB ;") == {
        "v": "DKIM1",
        "k": "rsa",
        "p": "MIIBAQAB",
    }


def test_check_finds_the_published_key_even_split_into_strings(domain):
    resolver = StubResolver(
        {
            "s1._domainkey.acme.example": [split_quoted(domain.record_value)],
            "acme.example": [
                '"v=spf1 mx include:sendgrid.net ~all"',
                '"google-site-verification=x"',
            ],
            "_dmarc.acme.example": ['"v=DMARC1; p=quarantine"'],
        }
    )
    checks = dkim_keys.check_sending_domain(sending_domain=domain, resolver=resolver)
    dkim, spf, dmarc = checks
    assert (dkim.status, spf.status, dmarc.status) == ("found", "found", "found")
    assert dkim.message.startswith("Found: the published DKIM record matches this key.")
    assert "policy: quarantine" in dmarc.message
    assert ("s1._domainkey.acme.example", "TXT") in resolver.queries
    domain.refresh_from_db()
    assert domain.dkim_status == "found" and domain.is_verified
    assert domain.checked_at is not None
    assert AuditEntry.objects.filter(action="sending_domain.checked").count() == 1


def test_check_says_not_found_when_nothing_is_published(domain):
    dkim, spf, dmarc = dkim_keys.check_sending_domain(
        sending_domain=domain, resolver=StubResolver({})
    )
    assert dkim.status == "not_found"
    assert dkim.message.startswith("Not found: no DKIM record is published at this name yet.")
    assert spf.status == "not_found" and "No SPF record" in spf.message
    assert dmarc.status == "not_found" and "p=none" in dmarc.message
    domain.refresh_from_db()
    assert domain.dkim_status == "not_found" and not domain.is_verified


def test_check_says_mismatch_for_another_key(domain, workspace):
    other = dkim_keys.add_sending_domain(workspace=workspace, domain="other.example")
    resolver = StubResolver({"s1._domainkey.acme.example": [split_quoted(other.record_value)]})
    dkim = dkim_keys.check_sending_domain(sending_domain=domain, resolver=resolver)[0]
    assert dkim.status == "mismatch"
    assert dkim.message.startswith("Mismatch: a DKIM record is published at this name, but")
    assert dkim.found == [other.record_value]


def test_a_txt_record_without_a_key_is_not_a_dkim_record(domain):
    resolver = StubResolver({"s1._domainkey.acme.example": ['"v=spf1 -all"']})
    assert dkim_keys.check_sending_domain(sending_domain=domain, resolver=resolver)[0].status == (
        "not_found"
    )


def test_lookup_failures_are_not_mistaken_for_absence(domain):
    timeout = dns.resolver.LifetimeTimeout(timeout=5.0, errors=[])
    resolver = StubResolver(
        {
            "s1._domainkey.acme.example": timeout,
            "acme.example": dns.resolver.NoNameservers(),
            "_dmarc.acme.example": dns.resolver.NoAnswer(),
        }
    )
    dkim, spf, dmarc = dkim_keys.check_sending_domain(sending_domain=domain, resolver=resolver)
    assert dkim.status == "error" and "The lookup failed (LifetimeTimeout)" in dkim.message
    assert spf.status == "error"
    assert dmarc.status == "not_found"  # NoAnswer: the name exists without a TXT record


def test_several_spf_records_are_a_problem(domain):
    resolver = StubResolver({"acme.example": ['"v=spf1 mx ~all"', '"v=spf1 a -all"']})
    spf = dkim_keys.check_sending_domain(sending_domain=domain, resolver=resolver)[1]
    assert spf.status == "mismatch" and "Merge them into one" in spf.message


def test_spf_advice_names_the_provider_in_use(workspace, domain):
    delivery.save_delivery(
        workspace=workspace,
        mode="esp",
        esp_provider="amazon_ses",
        esp_region="eu-west-1",
        esp_access_key_id="AKIAIOSFODNN7EXAMPLE",
        esp_secret="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    records = {record.kind: record for record in dkim_keys.dns_records(domain)}
    assert records["spf"].expected == "v=spf1 mx include:amazonses.com ~all"
    assert records["dmarc"].name == "_dmarc.acme.example"
    assert records["dmarc"].expected.startswith("v=DMARC1; p=none; rua=mailto:")


def test_delete_is_audited(domain, owner):
    dkim_keys.delete_sending_domain(sending_domain=domain, actor=owner)
    assert not SendingDomain.objects.for_workspace(domain.workspace_id).exists()
    assert AuditEntry.objects.filter(action="sending_domain.deleted", actor=owner).exists()


def test_spf_advice_names_the_workspaces_own_smtp_servers(workspace, domain):
    for host in ("smtp.acme.example", "93.184.215.14", "127.0.0.1"):
        delivery.add_smtp_server(workspace=workspace, host=host, port=25, security="none")
    delivery.save_delivery(workspace=workspace, mode="smtp")
    records = {record.kind: record for record in dkim_keys.dns_records(domain)}
    # Loopback and private addresses mean nothing to receivers: left out.
    assert records["spf"].expected == "v=spf1 mx a:smtp.acme.example ip4:93.184.215.14 ~all"


def test_a_failed_lookup_keeps_a_verified_domain_verified(domain):
    found = StubResolver({"s1._domainkey.acme.example": [split_quoted(domain.record_value)]})
    dkim_keys.check_sending_domain(sending_domain=domain, resolver=found)
    down = StubResolver({"s1._domainkey.acme.example": dns.resolver.NoNameservers()})
    dkim = dkim_keys.check_sending_domain(sending_domain=domain, resolver=down)[0]
    assert dkim.status == "error"
    domain.refresh_from_db()
    assert domain.dkim_status == "found"
    assert "The lookup failed" in domain.check_detail


def test_recheck_finds_records_published_since_and_notices_removed_ones(workspace, domain):
    from datetime import timedelta

    from django.utils import timezone

    other = dkim_keys.add_sending_domain(workspace=workspace, domain="other.example")
    records = {"s1._domainkey.acme.example": [split_quoted(domain.record_value)]}
    assert dkim_keys.recheck_sending_domains(resolver=StubResolver(records)) == 2
    domain.refresh_from_db()
    other.refresh_from_db()
    assert (domain.dkim_status, other.dkim_status) == ("found", "not_found")
    # Checked just now: nothing is due.
    assert dkim_keys.recheck_sending_domains(resolver=StubResolver(records)) == 0
    later = timezone.now() + dkim_keys.RECHECK_EVERY + timedelta(minutes=1)
    records.clear()  # the record was removed from DNS
    assert dkim_keys.recheck_sending_domains(resolver=StubResolver(records), now=later) == 2
    domain.refresh_from_db()
    assert domain.dkim_status == "not_found"
    assert dkim_keys.workspace_signer(workspace.pk, "acme.example") is None


def test_the_recheck_is_a_periodic_job():
    from patron.core.scheduler import PERIODIC_JOBS
    from patron.mail import tasks

    job = PERIODIC_JOBS["patron.mail.tasks.recheck_sending_domains"]
    assert job.task is tasks.recheck_sending_domains


def test_a_machine_without_dns_configuration_gets_lookup_failed(domain, monkeypatch):
    def unconfigured(*args, **kwargs):
        raise dns.resolver.NoResolverConfiguration("no nameservers")

    monkeypatch.setattr(dns.resolver.Resolver, "__init__", unconfigured)
    dkim = dkim_keys.check_sending_domain(sending_domain=domain)[0]
    assert dkim.status == "error"
    assert "The lookup failed (NoResolverConfiguration)" in dkim.message
