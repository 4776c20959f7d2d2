"""API: lists, their subscriptions, and each contact's subscriptions with consent history.

Subscribing through the API records ``api`` as the consent source, with the
consent text, IP address and browser the caller passes (what the person saw
and where they were when they agreed). On a double opt-in list the contacts
are pending and get the confirmation email, unless the call says they
confirmed already (``"confirmed": true``), which needs a ``consent_text``.
"""

from __future__ import annotations

from datetime import datetime
from ipaddress import ip_address as parse_ip
from typing import Any, Literal

from django.db.models.functions import Lower
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status

from patron.api.errors import ApiError
from patron.api.pagination import paginate
from patron.audience import lists
from patron.audience.models import (
    ConsentRecord,
    ConsentSource,
    MailingList,
    Subscription,
    SubscriptionStatus,
)
from patron.core.http import ApiRequest
from patron.crm.models import Contact

router = Router(tags=["audience"])
MAX_CONTACTS = 1000


class ListOut(Schema):
    id: int
    name: str
    public_name: str
    description: str
    double_opt_in: bool
    confirmation_subject: str
    confirmation_body: str
    created_at: datetime


class ListPage(Schema):
    items: list[ListOut]
    next_cursor: str | None


class ListIn(Schema):
    name: str
    public_name: str = ""
    description: str = ""
    double_opt_in: bool = False
    confirmation_subject: str | None = None
    confirmation_body: str | None = None


class ListPatch(Schema):
    name: str | None = None
    public_name: str | None = None
    description: str | None = None
    double_opt_in: bool | None = None
    confirmation_subject: str | None = None
    confirmation_body: str | None = None


class ConsentOut(Schema):
    id: int
    list_id: int | None = Field(None, alias="mailing_list_id")
    list_name: str
    status: str
    source: str
    consent_text: str
    ip_address: str | None
    user_agent: str
    actor_id: int | None
    details: dict[str, Any]
    occurred_at: datetime


class SubscriptionOut(Schema):
    id: int
    list_id: int = Field(..., alias="mailing_list_id")
    contact_id: int
    email: str
    status: str
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None

    @staticmethod
    def resolve_email(subscription: Subscription) -> str:
        return subscription.contact.email


class SubscriptionPage(Schema):
    items: list[SubscriptionOut]
    next_cursor: str | None


class ContactSubscriptionOut(SubscriptionOut):
    list_name: str
    consent_history: list[ConsentOut]

    @staticmethod
    def resolve_list_name(subscription: Subscription) -> str:
        return subscription.mailing_list.name

    @staticmethod
    def resolve_consent_history(subscription: Subscription) -> list[ConsentRecord]:
        return getattr(subscription, "history", [])


class ContactSubscriptions(Schema):
    items: list[ContactSubscriptionOut]
    # Records of lists since deleted (they keep the list's name).
    other_consent: list[ConsentOut]


class SubscribeIn(Schema):
    contact_ids: list[int] = []
    emails: list[str] = []
    status: Literal["subscribed", "unsubscribed", "cleaned"] = "subscribed"
    confirmed: bool = False
    resubscribe: bool = False
    consent_text: str = ""
    ip_address: str | None = None
    user_agent: str = ""


class SubscribeOut(Schema):
    status: str
    changed: int
    opted_out: int
    items: list[SubscriptionOut]


class SubscriptionFilters(Schema):
    status: str = ""
    cursor: str | None = None
    limit: int = 50


class ListFilters(Schema):
    cursor: str | None = None
    limit: int = 50


def _lists(request: ApiRequest) -> Any:
    return MailingList.objects.for_workspace(request.workspace).select_related("workspace")


def _invalid(exc: lists.ListInvalid) -> ApiError:
    if isinstance(exc, lists.ListNameTaken):
        return ApiError(409, "conflict", str(exc), {exc.field: [str(exc)]})
    return ApiError(422, "invalid", str(exc), {exc.field: [str(exc)]})


@router.get("/lists", response=ListPage)
def list_lists(request: ApiRequest, filters: Query[ListFilters]) -> dict[str, Any]:
    return paginate(_lists(request), cursor=filters.cursor, limit=filters.limit)


@router.post("/lists", response={201: ListOut})
def create_list(request: ApiRequest, payload: ListIn) -> Status:
    try:
        mailing_list = lists.create_list(workspace=request.workspace, **payload.dict())
    except lists.ListInvalid as exc:
        raise _invalid(exc) from exc
    return Status(201, mailing_list)


@router.get("/lists/{list_id}", response=ListOut)
def get_list(request: ApiRequest, list_id: int) -> MailingList:
    return get_object_or_404(_lists(request), pk=list_id)


@router.patch("/lists/{list_id}", response=ListOut)
def update_list(request: ApiRequest, list_id: int, payload: ListPatch) -> MailingList:
    mailing_list = get_object_or_404(_lists(request), pk=list_id)
    try:
        return lists.update_list(mailing_list=mailing_list, **payload.dict(exclude_unset=True))
    except lists.ListInvalid as exc:
        raise _invalid(exc) from exc


@router.delete("/lists/{list_id}", response={204: None})
def delete_list(request: ApiRequest, list_id: int) -> Status:
    lists.delete_list(mailing_list=get_object_or_404(_lists(request), pk=list_id))
    return Status(204, None)


@router.get("/lists/{list_id}/subscriptions", response=SubscriptionPage)
def list_subscriptions(
    request: ApiRequest, list_id: int, filters: Query[SubscriptionFilters]
) -> dict[str, Any]:
    mailing_list = get_object_or_404(_lists(request), pk=list_id)
    if filters.status and filters.status not in SubscriptionStatus.values:
        message = "status must be one of " + ", ".join(SubscriptionStatus.values) + "."
        raise ApiError(422, "invalid", message, {"status": [message]})
    rows = lists.members(mailing_list, filters.status)
    return paginate(rows, cursor=filters.cursor, limit=filters.limit)


def _contact_ids(request: ApiRequest, payload: SubscribeIn) -> list[int]:
    """The contacts a call names by id or email; 422 naming those that are not found."""
    if not payload.contact_ids and not payload.emails:
        raise ApiError(
            422,
            "invalid",
            "Name the contacts by contact_ids or emails.",
            {"contact_ids": ["give contact_ids or emails"]},
        )
    if len(payload.contact_ids) + len(payload.emails) > MAX_CONTACTS:
        message = f"At most {MAX_CONTACTS} contacts per call."
        raise ApiError(422, "invalid", message, {"contact_ids": [message]})
    contacts = Contact.objects.for_workspace(request.workspace)
    found_ids = set(contacts.filter(pk__in=payload.contact_ids).values_list("pk", flat=True))
    missing_ids = [pk for pk in payload.contact_ids if pk not in found_ids]
    wanted = {email.strip().lower() for email in payload.emails if email.strip()}
    by_email = dict(
        contacts.annotate(address=Lower("email"))
        .filter(address__in=wanted)
        .values_list("address", "pk")
    )
    missing_emails = sorted(wanted - set(by_email))
    fields: dict[str, list[str]] = {}
    if missing_ids:
        fields["contact_ids"] = [f"no contact {pk}" for pk in missing_ids]
    if missing_emails:
        fields["emails"] = [f"no contact with {email}" for email in missing_emails]
    if fields:
        raise ApiError(422, "invalid", "Some contacts do not exist.", fields)
    return sorted(found_ids | set(by_email.values()))


@router.post("/lists/{list_id}/subscriptions", response=SubscribeOut)
def change_subscriptions(request: ApiRequest, list_id: int, payload: SubscribeIn) -> dict[str, Any]:
    """Subscribe, unsubscribe or clean contacts named by id or email (up to 1000 a call)."""
    mailing_list = get_object_or_404(_lists(request), pk=list_id)
    ids = _contact_ids(request, payload)
    if payload.ip_address:
        try:
            parse_ip(payload.ip_address)
        except ValueError as exc:
            raise ApiError(
                422, "invalid", "Not an IP address.", {"ip_address": ["not an IP address"]}
            ) from exc
    consent = lists.Consent(
        source=ConsentSource.API,
        consent_text=payload.consent_text.strip()[:5000],
        ip_address=payload.ip_address or None,
        user_agent=payload.user_agent[:500],
        details={"api_key": request.auth.name},
    )
    try:
        if payload.status == SubscriptionStatus.SUBSCRIBED:
            outcome = lists.subscribe_contacts(
                mailing_list=mailing_list,
                contacts=ids,
                consent=consent,
                confirmed=payload.confirmed,
                resubscribe=payload.resubscribe,
            )
        elif payload.status == SubscriptionStatus.UNSUBSCRIBED:
            outcome = lists.unsubscribe_contacts(
                mailing_list=mailing_list, contacts=ids, consent=consent
            )
        else:
            outcome = lists.clean_contacts(mailing_list=mailing_list, contacts=ids, consent=consent)
    except lists.SubscriptionInvalid as exc:
        field = "consent_text" if payload.confirmed else "status"
        raise ApiError(422, "invalid", str(exc), {field: [str(exc)]}) from exc
    items = list(lists.members(mailing_list).filter(contact_id__in=ids).order_by("contact_id"))
    return {
        "status": outcome.status,
        "changed": outcome.count,
        "opted_out": outcome.opted_out,
        "items": items,
    }


@router.get("/contacts/{contact_id}/subscriptions", response=ContactSubscriptions)
def contact_subscriptions(request: ApiRequest, contact_id: int) -> dict[str, Any]:
    """Every list the contact is on, each with its consent history (newest first)."""
    contact = get_object_or_404(Contact.objects.for_workspace(request.workspace), pk=contact_id)
    items = []
    for subscription, history in lists.contact_subscriptions(contact):
        subscription.history = history  # type: ignore[attr-defined]
        items.append(subscription)
    on = {s.mailing_list_id for s in items}
    other = [r for r in lists.consent_history(contact) if r.mailing_list_id not in on]
    return {"items": items, "other_consent": other}
