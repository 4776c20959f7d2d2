"""Lists, subscriptions and their consent history; double opt-in.

A contact's place on a list is one ``Subscription`` row with a status:

* **subscribed** — mailed with the list;
* **pending** — asked to confirm (double opt-in), not mailed until confirmed;
* **unsubscribed** — said no (or was taken off); never re-added by an import,
  a bulk action or a workflow unless asked explicitly (``resubscribe``);
* **cleaned** — the address does not work; only ``resubscribe`` brings it back.

Every change of status appends a ``ConsentRecord`` (source, time, IP address,
browser, the text the person was shown) and records ``list.<status>`` on the
contact's timeline. Records are never changed or deleted: the history of who
agreed to what survives unsubscribes, re-subscriptions and merges.

Writes are set-based whatever the number of contacts: one ``UPDATE ...
RETURNING`` for the rows that change, one ``INSERT ... SELECT ... ON CONFLICT
DO NOTHING RETURNING`` for the contacts that were not on the list, one bulk
insert of their consent records and one of their events. A contact set is a
queryset (the whole filtered contact list) or ids.

**Double opt-in.** On a list with double opt-in, a subscription by a form, the
API, a user or an import is *pending*, and the confirmation email goes out:
the list's own Liquid template (subject and body) with a signed, expiring
``confirm_url``. An import or an API call may say the contacts confirmed
elsewhere already (``confirmed=True``) and must then give the consent text
they agreed to. The link opens a page with a button: confirming is a POST, so
link scanners that fetch every URL of a message confirm nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import EmptyResultSet
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import Count, F, QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import linebreaks, urlize
from django.utils.translation import gettext as _
from liquid import Environment, StrictUndefined, Undefined
from liquid.exceptions import LiquidError

from patron.activity.services import record_for_contacts
from patron.audience.models import (
    ConsentRecord,
    ConsentSource,
    MailingList,
    Subscription,
    SubscriptionStatus,
)
from patron.core import bulk
from patron.core.models import User, Workspace
from patron.core.services import WORKSPACE_HEADER, record_audit
from patron.crm.models import Contact, CustomField, CustomFieldObject

CONFIRM_SALT = "patron.audience.confirm"  # a signing namespace, not a secret
CONFIRMATION_LIFETIME = timedelta(days=int(getattr(settings, "CONFIRMATION_LINK_DAYS", 7)))
# Contacts per statement when a set is given as ids (SQLite's parameter limit).
ID_CHUNK = 5000
# Confirmation emails per background task.
MAIL_CHUNK = 500

STATUS_EVENT = {
    SubscriptionStatus.SUBSCRIBED: "list.subscribed",
    SubscriptionStatus.PENDING: "list.pending",
    SubscriptionStatus.UNSUBSCRIBED: "list.unsubscribed",
    SubscriptionStatus.CLEANED: "list.cleaned",
}
# Sources where people act for themselves: asking again is a fresh opt-in.
SELF_SERVICE = {ConsentSource.FORM, ConsentSource.PREFERENCES}
# Sources that may say "confirmed elsewhere already" on a double opt-in list.
MAY_SKIP_CONFIRMATION = {ConsentSource.IMPORT, ConsentSource.API}
# A merge keeps the safer status: the higher rank wins.
SAFETY_RANK = {
    SubscriptionStatus.PENDING: 0,
    SubscriptionStatus.SUBSCRIBED: 1,
    SubscriptionStatus.UNSUBSCRIBED: 2,
    SubscriptionStatus.CLEANED: 3,
}


class ListInvalid(ValueError):
    """A list's values were refused; ``field`` names the one at fault."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class ListNameTaken(ListInvalid):
    pass


class SubscriptionInvalid(ValueError):
    pass


class ConfirmationInvalid(ValueError):
    """A confirmation link that cannot confirm: ``reason`` is expired, invalid or cancelled."""

    def __init__(self, reason: str, mailing_list: MailingList | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mailing_list = mailing_list


@dataclass(frozen=True)
class Consent:
    """Where a change came from, as the consent record keeps it."""

    source: str
    consent_text: str = ""
    ip_address: str | None = None
    user_agent: str = ""
    actor: User | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a set-based change did: the contacts whose status changed, and to what."""

    status: str
    changed: list[int] = field(default_factory=list)
    # Subscribing only: contacts left alone because they unsubscribed or were cleaned.
    opted_out: int = 0

    @property
    def count(self) -> int:
        return len(self.changed)


# --- Lists -------------------------------------------------------------------------------


def _clean_name(workspace: Workspace, name: str, exclude: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise ListInvalid("name", _("Give the list a name."))
    if len(name) > 100:
        raise ListInvalid("name", _("Keep the name under 100 characters."))
    taken = MailingList.objects.for_workspace(workspace).filter(name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise ListNameTaken("name", _("A list named “%(name)s” exists already.") % {"name": name})
    return name


def _values(workspace: Workspace, mailing_list: MailingList, values: dict[str, Any]) -> MailingList:
    for name in ("public_name", "description", "confirmation_subject", "confirmation_body"):
        if name in values and values[name] is not None:
            setattr(mailing_list, name, str(values[name]).strip())
    if values.get("double_opt_in") is not None:
        mailing_list.double_opt_in = bool(values["double_opt_in"])
    if len(mailing_list.public_name) > 100:
        raise ListInvalid("public_name", _("Keep the public name under 100 characters."))
    if len(mailing_list.description) > 2000:
        raise ListInvalid("description", _("Keep the description under 2,000 characters."))
    validate_confirmation(
        workspace, mailing_list.confirmation_subject, mailing_list.confirmation_body
    )
    return mailing_list


@transaction.atomic
def create_list(
    *,
    workspace: Workspace,
    name: str,
    public_name: str = "",
    description: str = "",
    double_opt_in: bool = False,
    confirmation_subject: str | None = None,
    confirmation_body: str | None = None,
    actor: User | None = None,
) -> MailingList:
    mailing_list = MailingList(workspace=workspace, name=_clean_name(workspace, name))
    _values(
        workspace,
        mailing_list,
        {
            "public_name": public_name,
            "description": description,
            "double_opt_in": double_opt_in,
            "confirmation_subject": confirmation_subject,
            "confirmation_body": confirmation_body,
        },
    )
    mailing_list.save()
    record_audit(workspace=workspace, actor=actor, action="list.created", target=mailing_list.name)
    return mailing_list


@transaction.atomic
def update_list(
    *, mailing_list: MailingList, actor: User | None = None, **values: Any
) -> MailingList:
    """Change a list; ``values`` are the fields to change (name, public_name, ...)."""
    unknown = set(values) - {
        "name",
        "public_name",
        "description",
        "double_opt_in",
        "confirmation_subject",
        "confirmation_body",
    }
    if unknown:
        raise ListInvalid(sorted(unknown)[0], _("This field cannot be changed."))
    workspace = mailing_list.workspace
    if values.get("name") is not None:
        mailing_list.name = _clean_name(workspace, values["name"], exclude=mailing_list.pk)
    _values(workspace, mailing_list, values)
    mailing_list.save()
    record_audit(workspace=workspace, actor=actor, action="list.updated", target=mailing_list.name)
    return mailing_list


@transaction.atomic
def delete_list(*, mailing_list: MailingList, actor: User | None = None) -> None:
    """Delete a list and its subscriptions; the consent history stays, with the list's name."""
    record_audit(
        workspace=mailing_list.workspace,
        actor=actor,
        action="list.deleted",
        target=mailing_list.name,
    )
    mailing_list.delete()


def status_counts(workspace: Workspace) -> dict[int, dict[str, int]]:
    """List id -> {status: number of subscriptions}, every status present, in one query."""
    counts: dict[int, dict[str, int]] = {}
    rows = (
        Subscription.objects.for_workspace(workspace)
        .values("mailing_list_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts.setdefault(row["mailing_list_id"], dict.fromkeys(SubscriptionStatus.values, 0))
        counts[row["mailing_list_id"]][row["status"]] = row["n"]
    return counts


# --- The confirmation template -----------------------------------------------------------


class _SandboxEnvironment(Environment):
    """Liquid for templates written by users: no file access, bounded work and output."""

    context_depth_limit = 20
    loop_iteration_limit = 10_000
    local_namespace_limit = 10_000
    output_stream_limit = 100_000

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for tag in ("include", "render"):
            self.tags.pop(tag, None)


_STRICT = _SandboxEnvironment(undefined=StrictUndefined)
_LENIENT = _SandboxEnvironment(undefined=Undefined)
SAMPLE_CONFIRM_URL = "https://example.invalid/subscribe/confirm/SAMPLE/"
CONTACT_VARIABLES = (
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "mobile_phone",
    "job_title",
    "company",
    "city",
    "region",
    "country",
    "language",
)


def _liquid_error(field_name: str, what: str, source: str, exc: LiquidError) -> ListInvalid:
    message = str(exc.message or exc.__class__.__name__)
    index = exc.token.start_index if exc.token is not None else -1
    text = source.rstrip("\n")
    # A block left open is found at the end of the text (no position): its last line.
    line = text.count("\n", 0, index if 0 <= index < len(text) else len(text)) + 1
    return ListInvalid(
        field_name,
        _("%(what)s, line %(line)d: %(message)s")
        % {"what": what, "line": line, "message": message},
    )


def validate_confirmation(workspace: Workspace | int, subject: str, body: str) -> None:
    """Parse and trial-render the confirmation template; raise ``ListInvalid`` naming the line.

    Unknown variables are errors here (a typo would otherwise send an empty
    greeting), and the body must contain ``{{ confirm_url }}``.
    """
    if not subject.strip():
        raise ListInvalid("confirmation_subject", _("Give the confirmation email a subject."))
    if len(subject) > 200 or "\n" in subject or "\r" in subject:
        raise ListInvalid(
            "confirmation_subject", _("Keep the subject on one line, under 200 characters.")
        )
    if not body.strip():
        raise ListInvalid("confirmation_body", _("Write the confirmation message."))
    if len(body) > 20_000:
        raise ListInvalid("confirmation_body", _("Keep the message under 20,000 characters."))
    sample = _sample_context(workspace)
    for field_name, what, source in (
        ("confirmation_subject", _("Subject"), subject),
        ("confirmation_body", _("Message"), body),
    ):
        try:
            rendered = _STRICT.from_string(source).render(**sample)
        except LiquidError as exc:
            raise _liquid_error(field_name, str(what), source, exc) from exc
        if field_name == "confirmation_body" and SAMPLE_CONFIRM_URL not in rendered:
            raise ListInvalid(
                field_name,
                _("Put the confirmation link in the message: {{ confirm_url }}."),
            )


def _custom_keys(workspace: Workspace | int) -> list[str]:
    return list(
        CustomField.objects.for_workspace(workspace)
        .filter(object_type=CustomFieldObject.CONTACT)
        .values_list("key", flat=True)
    )


def _sample_context(workspace: Workspace | int) -> dict[str, Any]:
    contact: dict[str, Any] = dict.fromkeys(CONTACT_VARIABLES, "")
    contact.update({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"})
    contact["full_name"] = "Ada Lovelace"
    contact["custom"] = dict.fromkeys(_custom_keys(workspace), "")
    return {
        "contact": contact,
        "list": {"name": "Newsletter", "description": ""},
        "workspace": {"name": "Workspace"},
        "confirm_url": SAMPLE_CONFIRM_URL,
    }


def confirmation_context(
    mailing_list: MailingList, contact: Contact, custom_keys: Sequence[str], confirm_url: str
) -> dict[str, Any]:
    """The variables of a confirmation email: contact fields, the list, the link."""
    values: dict[str, Any] = {name: getattr(contact, name, "") or "" for name in CONTACT_VARIABLES}
    values["company"] = contact.company.name if contact.company else ""
    values["full_name"] = contact.full_name
    values["custom"] = {
        key: "" if contact.custom.get(key) is None else contact.custom.get(key)
        for key in custom_keys
    }
    return {
        "contact": values,
        "list": {"name": mailing_list.display_name, "description": mailing_list.description},
        "workspace": {"name": mailing_list.workspace.name},
        "confirm_url": confirm_url,
    }


# --- Tokens ----------------------------------------------------------------------------------


def confirmation_token(subscription: Subscription | tuple[int, int, int]) -> str:
    """The signed token of a confirmation link: workspace, list, contact, and when it was made."""
    if isinstance(subscription, Subscription):
        parts = (subscription.workspace_id, subscription.mailing_list_id, subscription.contact_id)
    else:
        parts = subscription
    workspace_id, list_id, contact_id = parts
    return signing.dumps(
        {"w": workspace_id, "l": list_id, "c": contact_id}, salt=CONFIRM_SALT, compress=True
    )


def confirmation_url(subscription: Subscription | tuple[int, int, int]) -> str:
    token = confirmation_token(subscription)
    return settings.BASE_URL + reverse("audience:subscription_confirm", args=[token])


def subscription_for_token(token: str) -> Subscription:
    """The subscription a confirmation link names; ``ConfirmationInvalid`` when it cannot."""
    try:
        data = signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRMATION_LIFETIME)
        workspace_id, list_id, contact_id = int(data["w"]), int(data["l"]), int(data["c"])
    except signing.SignatureExpired as exc:
        raise ConfirmationInvalid("expired", _list_of_token(token)) from exc
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise ConfirmationInvalid("invalid") from exc
    subscription = (
        Subscription.objects.for_workspace(workspace_id)
        .select_related("mailing_list__workspace", "contact")
        .filter(mailing_list_id=list_id, contact_id=contact_id)
        .first()
    )
    if subscription is None:
        raise ConfirmationInvalid("invalid")
    return subscription


def _list_of_token(token: str) -> MailingList | None:
    """The list an expired (but genuine) token names, to offer its name on the page."""
    try:
        data = signing.loads(token, salt=CONFIRM_SALT)
        return (
            MailingList.objects.for_workspace(int(data["w"]))
            .select_related("workspace")
            .filter(pk=int(data["l"]))
            .first()
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def confirmation_page_text(mailing_list: MailingList) -> str:
    """What the confirmation page says next to its button: kept as the consent text."""
    with translation.override(mailing_list.workspace.language):
        return _("Yes, subscribe me to %(list)s from %(workspace)s.") % {
            "list": mailing_list.display_name,
            "workspace": mailing_list.workspace.name,
        }


@transaction.atomic
def confirm_subscription(
    *, token: str, ip_address: str | None = None, user_agent: str = ""
) -> tuple[Subscription, bool]:
    """Confirm the pending subscription a link names; returns it and whether it changed.

    A subscription confirmed already stays as it is (a second click changes
    nothing); one that was unsubscribed or cleaned since is not brought back by
    an old link.
    """
    subscription = subscription_for_token(token)
    subscription = (
        Subscription.objects.for_workspace(subscription.workspace_id)
        .select_for_update()
        .select_related("mailing_list__workspace", "contact")
        .get(pk=subscription.pk)
    )
    if subscription.status == SubscriptionStatus.SUBSCRIBED:
        return subscription, False
    if subscription.status != SubscriptionStatus.PENDING:
        raise ConfirmationInvalid("cancelled", subscription.mailing_list)
    mailing_list = subscription.mailing_list
    outcome = subscribe_contacts(
        mailing_list=mailing_list,
        contacts=[subscription.contact_id],
        consent=Consent(
            source=ConsentSource.CONFIRMATION,
            consent_text=confirmation_page_text(mailing_list),
            ip_address=ip_address or None,
            user_agent=(user_agent or "")[:500],
        ),
    )
    subscription.refresh_from_db()
    return subscription, bool(outcome.changed)


# --- Subscribing -----------------------------------------------------------------------------


def _contact_sets(workspace: Workspace, contacts: QuerySet[Contact] | Iterable[int]) -> list[Any]:
    """The contact set as querysets of this workspace (ids in chunks of ID_CHUNK)."""
    scoped = Contact.objects.for_workspace(workspace)
    if isinstance(contacts, QuerySet):
        return [scoped.filter(pk__in=contacts.order_by().values("pk"))]
    ids = sorted({int(pk) for pk in contacts})
    return [scoped.filter(pk__in=ids[i : i + ID_CHUNK]) for i in range(0, len(ids), ID_CHUNK)]


def _select_sql(contacts: Any) -> tuple[str, tuple[Any, ...]] | None:
    try:
        return (  # type: ignore[no-any-return]
            contacts.order_by()
            .annotate(row_id=F("pk"))
            .values_list("row_id")
            .query.sql_with_params()
        )
    except EmptyResultSet:
        return None


def _moment(value: Any) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _update_status(
    mailing_list: MailingList,
    contacts: Any,
    *,
    from_statuses: Sequence[str],
    to_status: str,
    now: Any,
    confirmed: bool = False,
) -> list[int]:
    """UPDATE the subscriptions of ``contacts`` in ``from_statuses``; returns their contact ids."""
    select = _select_sql(contacts)
    if select is None or not from_statuses:
        return []
    select_sql, params = select
    table = connection.ops.quote_name(Subscription._meta.db_table)
    statuses = ", ".join(["%s"] * len(from_statuses))
    confirmed_at = "confirmed_at = %s, " if confirmed else ""
    sql = (
        f"UPDATE {table} SET status = %s, {confirmed_at}updated_at = %s "  # noqa: S608
        f"WHERE workspace_id = %s AND mailing_list_id = %s AND status IN ({statuses}) "
        f"AND contact_id IN (SELECT chosen.row_id FROM ({select_sql}) AS chosen) "
        "RETURNING contact_id"
    )
    moment = _moment(now)
    values: list[Any] = [to_status, *([moment] if confirmed else []), moment]
    values += [mailing_list.workspace_id, mailing_list.pk, *from_statuses, *params]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return [row[0] for row in cursor.fetchall()]


def _insert_new(
    mailing_list: MailingList, contacts: Any, *, status: str, now: Any, confirmed: bool
) -> list[int]:
    """INSERT subscriptions for the contacts not on the list yet; returns their ids."""
    select = _select_sql(contacts)
    if select is None:
        return []
    select_sql, params = select
    table = connection.ops.quote_name(Subscription._meta.db_table)
    sql = (
        f"INSERT INTO {table} "  # noqa: S608
        "(workspace_id, mailing_list_id, contact_id, status, created_at, updated_at, "
        "confirmed_at) "
        f"SELECT %s, %s, chosen.row_id, %s, %s, %s, %s FROM ({select_sql}) AS chosen "
        "ON CONFLICT DO NOTHING RETURNING contact_id"
    )
    if connection.vendor == "sqlite":
        # SQLite reads "SELECT ... ON CONFLICT" as a join constraint without a WHERE.
        sql = sql.replace("AS chosen ON CONFLICT", "AS chosen WHERE true ON CONFLICT")
    moment = _moment(now)
    values = [
        mailing_list.workspace_id,
        mailing_list.pk,
        status,
        moment,
        moment,
        moment if confirmed else None,
        *params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return [row[0] for row in cursor.fetchall()]


def _record_changes(
    mailing_list: MailingList,
    contact_ids: Sequence[int],
    status: str,
    consent: Consent,
    now: Any,
    extra: dict[str, Any] | None = None,
) -> None:
    """Append the consent records and timeline events of one set-based change."""
    if not contact_ids:
        return
    details = {**consent.details, **(extra or {})}
    columns = [
        "workspace_id",
        "contact_id",
        "mailing_list_id",
        "list_name",
        "status",
        "source",
        "consent_text",
        "ip_address",
        "user_agent",
        "actor_id",
        "details",
        "occurred_at",
    ]
    fixed = [
        mailing_list.pk,
        mailing_list.name,
        status,
        consent.source,
        consent.consent_text,
        consent.ip_address or None,
        (consent.user_agent or "")[:500],
        consent.actor.pk if consent.actor else None,
        details,
        now,
    ]
    bulk.insert_rows(
        ConsentRecord,
        columns,
        [[mailing_list.workspace_id, contact_id, *fixed] for contact_id in contact_ids],
    )
    properties = {"list": mailing_list.name, "list_id": mailing_list.pk, "source": consent.source}
    if extra:
        properties.update(extra)
    for start in range(0, len(contact_ids), ID_CHUNK):
        record_for_contacts(
            workspace=mailing_list.workspace_id,
            kind=STATUS_EVENT[SubscriptionStatus(status)],
            contact_ids=list(contact_ids[start : start + ID_CHUNK]),
            actor=consent.actor,
            source=("audience.list", mailing_list.pk),
            properties=properties,
        )


def _target_status(mailing_list: MailingList, consent: Consent, confirmed: bool) -> str:
    if consent.source == ConsentSource.CONFIRMATION:
        return SubscriptionStatus.SUBSCRIBED
    if not mailing_list.double_opt_in:
        return SubscriptionStatus.SUBSCRIBED
    if confirmed:
        if consent.source not in MAY_SKIP_CONFIRMATION:
            raise SubscriptionInvalid(
                _("Only an import or the API may mark subscribers as confirmed already.")
            )
        if not consent.consent_text.strip():
            raise SubscriptionInvalid(
                _("Say what the subscribers agreed to (the consent text) to skip confirmation.")
            )
        return SubscriptionStatus.SUBSCRIBED
    if consent.source == ConsentSource.PREFERENCES:
        # The preference centre is reached from a mail to the address: it is confirmed.
        return SubscriptionStatus.SUBSCRIBED
    return SubscriptionStatus.PENDING


def subscribe_contacts(
    *,
    mailing_list: MailingList,
    contacts: QuerySet[Contact] | Iterable[int],
    consent: Consent,
    confirmed: bool = False,
    resubscribe: bool = False,
) -> Outcome:
    """Subscribe a set of contacts; on a double opt-in list they are pending and get the mail.

    Subscribed contacts stay subscribed; pending ones become subscribed when
    the subscription is confirmed (by the link, or ``confirmed``). Contacts
    who unsubscribed or were cleaned are left alone (counted in
    ``opted_out``) unless ``resubscribe`` is given or they ask themselves (a
    form, the preference centre). Contacts without an email address are left
    out.
    """
    with transaction.atomic():
        target = _target_status(mailing_list, consent, confirmed)
        now = timezone.now()
        confirmed_now = target == SubscriptionStatus.SUBSCRIBED and (
            confirmed or consent.source == ConsentSource.CONFIRMATION
        )
        from_statuses = [SubscriptionStatus.PENDING] if target == "subscribed" else []
        opted_out = [SubscriptionStatus.UNSUBSCRIBED, SubscriptionStatus.CLEANED]
        may_return = resubscribe or consent.source in SELF_SERVICE
        if may_return:
            from_statuses += opted_out
        outcome = Outcome(status=target)
        for chunk in _contact_sets(mailing_list.workspace, contacts):
            chunk = chunk.exclude(email="")
            outcome.changed += _update_status(
                mailing_list,
                chunk,
                from_statuses=from_statuses,
                to_status=target,
                now=now,
                confirmed=confirmed_now,
            )
            outcome.changed += _insert_new(
                mailing_list, chunk, status=target, now=now, confirmed=confirmed_now
            )
            if not may_return:
                outcome.opted_out += (
                    Subscription.objects.for_workspace(mailing_list.workspace_id)
                    .filter(
                        mailing_list=mailing_list,
                        status__in=opted_out,
                        contact_id__in=chunk.values("pk"),
                    )
                    .count()
                )
        _record_changes(mailing_list, outcome.changed, target, consent, now)
        if target == SubscriptionStatus.PENDING and outcome.changed:
            send_confirmations_later(mailing_list, outcome.changed)
    return outcome


def _leave(
    mailing_list: MailingList,
    contacts: QuerySet[Contact] | Iterable[int],
    consent: Consent,
    *,
    to_status: str,
    from_statuses: Sequence[str],
) -> Outcome:
    with transaction.atomic():
        now = timezone.now()
        outcome = Outcome(status=to_status)
        for chunk in _contact_sets(mailing_list.workspace, contacts):
            outcome.changed += _update_status(
                mailing_list, chunk, from_statuses=from_statuses, to_status=to_status, now=now
            )
        _record_changes(mailing_list, outcome.changed, to_status, consent, now)
    return outcome


def unsubscribe_contacts(
    *,
    mailing_list: MailingList,
    contacts: QuerySet[Contact] | Iterable[int],
    consent: Consent,
) -> Outcome:
    """Unsubscribe subscribed and pending contacts (cleaned ones stay cleaned)."""
    return _leave(
        mailing_list,
        contacts,
        consent,
        to_status=SubscriptionStatus.UNSUBSCRIBED,
        from_statuses=[SubscriptionStatus.SUBSCRIBED, SubscriptionStatus.PENDING],
    )


def clean_contacts(
    *,
    mailing_list: MailingList,
    contacts: QuerySet[Contact] | Iterable[int],
    consent: Consent,
) -> Outcome:
    """Mark contacts whose address does not work as cleaned (whatever their status)."""
    return _leave(
        mailing_list,
        contacts,
        consent,
        to_status=SubscriptionStatus.CLEANED,
        from_statuses=[
            SubscriptionStatus.SUBSCRIBED,
            SubscriptionStatus.PENDING,
            SubscriptionStatus.UNSUBSCRIBED,
        ],
    )


@transaction.atomic
def remove_contacts(
    *, mailing_list: MailingList, contacts: Iterable[int], consent: Consent
) -> Outcome:
    """Take subscribed or pending contacts off the list entirely (added by mistake, say).

    Unsubscribed and cleaned subscriptions are kept: they are how the list
    remembers not to take those people back. The removal is recorded in the
    consent history as an unsubscribe marked ``removed``.
    """
    now = timezone.now()
    outcome = Outcome(status=SubscriptionStatus.UNSUBSCRIBED)
    for chunk in _contact_sets(mailing_list.workspace, contacts):
        removed = Subscription.objects.for_workspace(mailing_list.workspace_id).filter(
            mailing_list=mailing_list,
            status__in=[SubscriptionStatus.SUBSCRIBED, SubscriptionStatus.PENDING],
            contact_id__in=chunk.values("pk"),
        )
        ids = list(removed.select_for_update().values_list("contact_id", flat=True))
        removed.filter(contact_id__in=ids).delete()
        outcome.changed += ids
    _record_changes(
        mailing_list,
        outcome.changed,
        SubscriptionStatus.UNSUBSCRIBED,
        consent,
        now,
        extra={"removed": True},
    )
    return outcome


# One contact at a time: the same rules, for pages and API calls about one person.


def subscribe(
    *,
    mailing_list: MailingList,
    contact: Contact,
    consent: Consent,
    confirmed: bool = False,
    resubscribe: bool = False,
) -> Outcome:
    if not contact.email:
        raise SubscriptionInvalid(_("Give the contact an email address first."))
    return subscribe_contacts(
        mailing_list=mailing_list,
        contacts=[contact.pk],
        consent=consent,
        confirmed=confirmed,
        resubscribe=resubscribe,
    )


def unsubscribe(*, mailing_list: MailingList, contact: Contact, consent: Consent) -> Outcome:
    return unsubscribe_contacts(mailing_list=mailing_list, contacts=[contact.pk], consent=consent)


def clean(*, mailing_list: MailingList, contact: Contact, consent: Consent) -> Outcome:
    return clean_contacts(mailing_list=mailing_list, contacts=[contact.pk], consent=consent)


# --- Confirmation emails ---------------------------------------------------------------------


def send_confirmations_later(mailing_list: MailingList, contact_ids: Sequence[int]) -> None:
    """Send the confirmation emails once the transaction commits, in background chunks."""
    from patron.audience.tasks import send_confirmation_emails

    list_id = mailing_list.pk
    chunks = [list(contact_ids[i : i + MAIL_CHUNK]) for i in range(0, len(contact_ids), MAIL_CHUNK)]
    for chunk in chunks:
        transaction.on_commit(
            lambda chunk=chunk: send_confirmation_emails.enqueue(list_id, chunk)  # type: ignore[misc]
        )


def resend_confirmations(
    *, mailing_list: MailingList, contact_ids: Sequence[int] | None = None
) -> int:
    """Send the confirmation email again to pending subscribers (some, or all); returns how many."""
    pending = Subscription.objects.for_workspace(mailing_list.workspace_id).filter(
        mailing_list=mailing_list, status=SubscriptionStatus.PENDING
    )
    if contact_ids is not None:
        pending = pending.filter(contact_id__in=list(contact_ids))
    ids = list(pending.order_by("contact_id").values_list("contact_id", flat=True))
    send_confirmations_later(mailing_list, ids)
    return len(ids)


def send_confirmation_emails(mailing_list: MailingList, contact_ids: Sequence[int]) -> int:
    """Render and send the confirmation email to those of ``contact_ids`` still pending
    whose address the sending gate lets through.

    The template is parsed once; per contact only the render and the signed
    link remain. Returns the number of messages sent.
    """
    from patron.audience.sending import sendable_contacts

    workspace = mailing_list.workspace
    # The gate every automatic mail passes: a suppressed address gets no confirmation
    # either (the list is not asked: pending is what the mail is for).
    reachable = sendable_contacts(
        workspace, Contact.objects.for_workspace(workspace).filter(pk__in=list(contact_ids))
    )
    pending = (
        Subscription.objects.for_workspace(workspace)
        .filter(
            mailing_list=mailing_list,
            status=SubscriptionStatus.PENDING,
            contact_id__in=reachable.values("pk"),
        )
        .select_related("contact__company")
        .order_by("contact_id")
    )
    subject_template = _LENIENT.from_string(mailing_list.confirmation_subject)
    body_template = _LENIENT.from_string(mailing_list.confirmation_body)
    custom_keys = _custom_keys(workspace)
    messages = []
    for subscription in pending:
        contact = subscription.contact
        context = confirmation_context(
            mailing_list, contact, custom_keys, confirmation_url(subscription)
        )
        subject = " ".join(subject_template.render(**context).split())[:300]
        text = body_template.render(**context)
        message = EmailMultiAlternatives(
            subject=subject,
            body=text,
            to=[contact.email],
            headers={WORKSPACE_HEADER: str(workspace.pk)},
        )
        message.attach_alternative(
            linebreaks(urlize(text, autoescape=True), autoescape=False), "text/html"
        )
        messages.append(message)
    if not messages:
        return 0
    with get_connection() as mail:
        return int(mail.send_messages(messages) or 0)


# --- Reads -----------------------------------------------------------------------------------


def members(mailing_list: MailingList, status: str = "") -> QuerySet[Subscription]:
    """The list's subscriptions with their contacts, newest change first."""
    rows = (
        Subscription.objects.for_workspace(mailing_list.workspace_id)
        .filter(mailing_list=mailing_list)
        .select_related("contact")
    )
    if status in SubscriptionStatus.values:
        rows = rows.filter(status=status)
    return rows.order_by("-updated_at", "-id")


def contact_subscriptions(contact: Contact) -> list[tuple[Subscription, list[ConsentRecord]]]:
    """Each of a contact's subscriptions with its consent history (newest first): two queries."""
    subscriptions = list(
        Subscription.objects.for_workspace(contact.workspace_id)
        .filter(contact=contact)
        .select_related("mailing_list", "contact")
        .order_by("mailing_list__name", "id")
    )
    history: dict[int | None, list[ConsentRecord]] = {}
    for record in (
        ConsentRecord.objects.for_workspace(contact.workspace_id)
        .filter(contact=contact)
        .select_related("actor")
    ):
        history.setdefault(record.mailing_list_id, []).append(record)
    return [(s, history.get(s.mailing_list_id, [])) for s in subscriptions]


def consent_history(contact: Contact) -> QuerySet[ConsentRecord]:
    return (
        ConsentRecord.objects.for_workspace(contact.workspace_id)
        .filter(contact=contact)
        .select_related("actor")
    )


# --- Merging contacts ------------------------------------------------------------------------


def safer_status(first: str, second: str) -> str:
    """The status a merged subscription keeps: cleaned > unsubscribed > subscribed > pending."""
    return first if SAFETY_RANK[first] >= SAFETY_RANK[second] else second  # type: ignore[index]


def move_subscriptions(
    *, workspace: Workspace | int, from_contact_id: int, to_contact_id: int
) -> int:
    """Give one contact's subscriptions and consent history to another (a merge).

    Where both are on the same list, the safer status is kept (see
    ``safer_status``), with the earlier creation and the later confirmation.
    Consent records all move: both histories stay, in time order. Returns how
    many subscriptions were moved or combined. Call inside the merge's
    transaction.
    """
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    scoped = Subscription.objects.for_workspace(workspace_id)
    theirs = {s.mailing_list_id: s for s in scoped.filter(contact_id=from_contact_id)}
    ours = {
        s.mailing_list_id: s
        for s in scoped.filter(contact_id=to_contact_id, mailing_list_id__in=list(theirs))
    }
    combined = []
    for list_id, kept in ours.items():
        other = theirs[list_id]
        kept.status = safer_status(kept.status, other.status)
        kept.created_at = min(kept.created_at, other.created_at)
        confirmations = [c for c in (kept.confirmed_at, other.confirmed_at) if c is not None]
        kept.confirmed_at = max(confirmations) if confirmations else None
        kept.updated_at = max(kept.updated_at, other.updated_at)
        combined.append([kept.pk, kept.status, kept.created_at, kept.confirmed_at, kept.updated_at])
    bulk.update_rows(Subscription, ["status", "created_at", "confirmed_at", "updated_at"], combined)
    scoped.filter(contact_id=from_contact_id, mailing_list_id__in=list(ours)).delete()
    moved = scoped.filter(contact_id=from_contact_id).update(contact_id=to_contact_id)
    ConsentRecord.objects.for_workspace(workspace_id).filter(contact_id=from_contact_id).update(
        contact_id=to_contact_id
    )
    return moved + len(combined)
