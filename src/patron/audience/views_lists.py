"""The list pages: lists with their counts, a list's members, the contact's Lists panel,
and the public double opt-in confirmation page.

Membership changes made here are recorded as ``manual`` consent by the user
who made them, with the request's IP address and browser.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from patron.audience import lists
from patron.audience.models import ConsentSource, MailingList, SubscriptionStatus
from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.paging import SeekPage
from patron.core.roles import CONTACTS_EDIT, CONTACTS_VIEW, DATA_EXPORT, MARKETING_EDIT
from patron.core.signals import request_info
from patron.crm.models import Contact

PAGE_SIZE = 50
SEARCH_RESULTS = 8


class ListForm(forms.ModelForm):
    class Meta:
        model = MailingList
        fields = [
            "name",
            "public_name",
            "description",
            "double_opt_in",
            "confirmation_subject",
            "confirmation_body",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "confirmation_body": forms.Textarea(attrs={"rows": 9, "class": "font-monospace"}),
        }
        help_texts = {
            "description": gettext_lazy("Shown to subscribers in the preference centre."),
            "confirmation_body": gettext_lazy(
                "Liquid: {{ contact.first_name }}, {{ contact.email }} and the other contact "
                "fields, {{ list.name }} (the public name), {{ workspace.name }}, and "
                "{{ confirm_url }}, the link that confirms."
            ),
        }

    def validate_unique(self) -> None:
        """The service checks the name (per workspace, ignoring case)."""


def _consent(request: WorkspaceRequest, **details: Any) -> lists.Consent:
    info = request_info(request)
    return lists.Consent(
        source=ConsentSource.MANUAL,
        ip_address=info.ip_address,
        user_agent=info.user_agent,
        actor=request.user,
        details=details,
    )


def _list(request: WorkspaceRequest, list_id: int) -> MailingList:
    return get_object_or_404(
        MailingList.objects.for_workspace(request.workspace).select_related("workspace"),
        pk=list_id,
    )


def _contact(request: WorkspaceRequest, contact_id: Any) -> Contact:
    if not str(contact_id).isdigit():
        raise Http404
    return get_object_or_404(Contact.objects.for_workspace(request.workspace), pk=int(contact_id))


# --- Lists -------------------------------------------------------------------------------


@workspace_view(CONTACTS_VIEW)
def list_index(request: WorkspaceRequest) -> HttpResponse:
    counts = lists.status_counts(request.workspace)
    empty = dict.fromkeys(SubscriptionStatus.values, 0)
    rows = [
        (mailing_list, counts.get(mailing_list.pk, empty))
        for mailing_list in MailingList.objects.for_workspace(request.workspace)
    ]
    return render(
        request,
        "audience/list_index.html",
        {
            "rows": rows,
            "statuses": SubscriptionStatus.choices,
            "can_edit": request.membership.can(MARKETING_EDIT),
        },
    )


@workspace_view(MARKETING_EDIT)
def list_new(request: WorkspaceRequest) -> HttpResponse:
    return _list_form(request, None)


@workspace_view(MARKETING_EDIT)
def list_edit(request: WorkspaceRequest, list_id: int) -> HttpResponse:
    return _list_form(request, _list(request, list_id))


def _list_form(request: WorkspaceRequest, mailing_list: MailingList | None) -> HttpResponse:
    form = ListForm(
        request.POST or None,
        instance=mailing_list or MailingList(workspace=request.workspace),
    )
    if request.method == "POST" and form.is_valid():
        values = {name: form.cleaned_data[name] for name in ListForm.Meta.fields}
        try:
            if mailing_list is None:
                mailing_list = lists.create_list(
                    workspace=request.workspace, actor=request.user, **values
                )
                messages.success(request, _("List “%(name)s” created.") % {"name": values["name"]})
            else:
                lists.update_list(mailing_list=mailing_list, actor=request.user, **values)
                messages.success(request, _("List “%(name)s” saved.") % {"name": values["name"]})
        except lists.ListInvalid as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            return redirect("audience:list_detail", list_id=mailing_list.pk)
    return render(
        request,
        "audience/list_form.html",
        {"form": form, "mailing_list": mailing_list},
        status=400 if form.errors else 200,
    )


@workspace_view(MARKETING_EDIT)
@require_POST
def list_delete(request: WorkspaceRequest, list_id: int) -> HttpResponse:
    mailing_list = _list(request, list_id)
    if request.POST.get("confirm") != "yes":
        messages.error(request, _("Tick the box to confirm the deletion."))
        return redirect("audience:list_detail", list_id=mailing_list.pk)
    name = mailing_list.name
    lists.delete_list(mailing_list=mailing_list, actor=request.user)
    messages.success(request, _("List “%(name)s” deleted.") % {"name": name})
    return redirect("audience:list_index")


# --- Members -----------------------------------------------------------------------------


def _member_filters(request: WorkspaceRequest) -> tuple[str, str]:
    status = request.GET.get("status", "")
    return (status if status in SubscriptionStatus.values else ""), request.GET.get("q", "").strip()


@workspace_view(CONTACTS_VIEW)
def list_detail(request: WorkspaceRequest, list_id: int) -> HttpResponse:
    mailing_list = _list(request, list_id)
    status, query = _member_filters(request)
    rows = lists.members(mailing_list, status)
    if query:
        rows = rows.filter(
            Q(contact__email__istartswith=query)
            | Q(contact__first_name__istartswith=query)
            | Q(contact__last_name__istartswith=query)
        )
    counts = lists.status_counts(request.workspace).get(
        mailing_list.pk, dict.fromkeys(SubscriptionStatus.values, 0)
    )
    query_string = "&".join(
        part
        for part in (f"status={status}" if status else "", f"q={query}" if query else "")
        if part
    )
    context = {
        "mailing_list": mailing_list,
        "page_obj": SeekPage(rows, request.GET.get("page"), PAGE_SIZE),
        "status": status,
        "query": query,
        "query_string": query_string,
        "tabs": [(value, label, counts[value]) for value, label in SubscriptionStatus.choices],
        "total": sum(counts.values()),
        "can_edit": request.membership.can(CONTACTS_EDIT),
        "can_manage": request.membership.can(MARKETING_EDIT),
        "can_export": request.membership.can(DATA_EXPORT),
    }
    template = "audience/_list_members.html" if request.htmx else "audience/list_detail.html"
    return render(request, template, context)


@workspace_view(CONTACTS_EDIT)
def list_contact_search(request: WorkspaceRequest, list_id: int) -> HttpResponse:
    """Contacts whose email (or name) starts with what was typed, to add to the list."""
    mailing_list = _list(request, list_id)
    query = request.GET.get("email", "").strip()
    found: list[tuple[Contact, Any]] = []
    if len(query) >= 2:
        contacts = list(
            Contact.objects.for_workspace(request.workspace)
            .exclude(email="")
            .filter(
                Q(email__istartswith=query)
                | Q(first_name__istartswith=query)
                | Q(last_name__istartswith=query)
            )
            .order_by("email")[:SEARCH_RESULTS]
        )
        statuses = dict(
            mailing_list.subscriptions.filter(contact__in=contacts).values_list(
                "contact_id", "status"
            )
        )
        labels = dict(SubscriptionStatus.choices)
        found = [
            (contact, labels[statuses[contact.pk]] if contact.pk in statuses else "")
            for contact in contacts
        ]
    return render(
        request,
        "audience/_list_search.html",
        {"mailing_list": mailing_list, "found": found, "query": query},
    )


@workspace_view(CONTACTS_EDIT)
@require_POST
def list_add(request: WorkspaceRequest, list_id: int) -> HttpResponse:
    """Subscribe one contact, chosen from the search or by exact email."""
    mailing_list = _list(request, list_id)
    contact_id = request.POST.get("contact", "")
    email = request.POST.get("email", "").strip()
    contacts = Contact.objects.for_workspace(request.workspace)
    if contact_id.isdigit():
        contact = contacts.filter(pk=int(contact_id)).first()
    else:
        contact = contacts.filter(email__iexact=email).first() if email else None
    if contact is None:
        messages.error(request, _("No contact has this email address."))
        return redirect("audience:list_detail", list_id=mailing_list.pk)
    _subscribe_one(request, mailing_list, contact)
    return redirect("audience:list_detail", list_id=mailing_list.pk)


def _subscribe_one(request: WorkspaceRequest, mailing_list: MailingList, contact: Contact) -> None:
    try:
        outcome = lists.subscribe(
            mailing_list=mailing_list, contact=contact, consent=_consent(request)
        )
    except lists.SubscriptionInvalid as exc:
        messages.error(request, str(exc))
        return
    names = {"contact": str(contact), "list": mailing_list.name}
    if outcome.opted_out:
        messages.warning(
            request,
            _(
                "%(contact)s unsubscribed from %(list)s or was cleaned; "
                "only they can subscribe again."
            )
            % names,
        )
    elif not outcome.changed:
        messages.info(request, _("%(contact)s is on %(list)s already.") % names)
    elif outcome.status == SubscriptionStatus.PENDING:
        messages.success(
            request,
            _("%(contact)s was sent the confirmation email for %(list)s.") % names,
        )
    else:
        messages.success(request, _("%(contact)s subscribed to %(list)s.") % names)


@workspace_view(CONTACTS_EDIT)
@require_POST
def list_member_change(request: WorkspaceRequest, list_id: int) -> HttpResponse:
    """Unsubscribe, remove, or resend the confirmation to one member."""
    mailing_list = _list(request, list_id)
    contact = _contact(request, request.POST.get("contact", ""))
    action = request.POST.get("action", "")
    names = {"contact": str(contact), "list": mailing_list.name}
    if action == "unsubscribe":
        outcome = lists.unsubscribe(
            mailing_list=mailing_list, contact=contact, consent=_consent(request)
        )
        if outcome.changed:
            messages.success(request, _("%(contact)s unsubscribed from %(list)s.") % names)
        else:
            messages.info(request, _("%(contact)s was not subscribed to %(list)s.") % names)
    elif action == "remove":
        outcome = lists.remove_contacts(
            mailing_list=mailing_list, contacts=[contact.pk], consent=_consent(request)
        )
        if outcome.changed:
            messages.success(request, _("%(contact)s removed from %(list)s.") % names)
        else:
            messages.error(
                request,
                _(
                    "%(contact)s unsubscribed or was cleaned: they stay on the list so they are "
                    "never added back by mistake."
                )
                % names,
            )
    elif action == "resend":
        if lists.resend_confirmations(mailing_list=mailing_list, contact_ids=[contact.pk]):
            messages.success(request, _("Confirmation email sent to %(contact)s again.") % names)
        else:
            messages.error(request, _("%(contact)s is not waiting for confirmation.") % names)
    else:
        messages.error(request, _("Choose what to do."))
    back = reverse("audience:list_detail", args=[mailing_list.pk])
    query = QueryDict(request.POST.get("query_string", ""))
    return redirect(f"{back}?{query.urlencode()}" if query else back)


@workspace_view(MARKETING_EDIT)
@require_POST
def list_resend_all(request: WorkspaceRequest, list_id: int) -> HttpResponse:
    mailing_list = _list(request, list_id)
    sent = lists.resend_confirmations(mailing_list=mailing_list)
    messages.success(
        request,
        ngettext(
            "The confirmation email goes again to %(count)d pending subscriber.",
            "The confirmation email goes again to %(count)d pending subscribers.",
            sent,
        )
        % {"count": sent},
    )
    return redirect("audience:list_detail", list_id=mailing_list.pk)


@workspace_view(DATA_EXPORT)
def list_export(request: WorkspaceRequest, list_id: int) -> StreamingHttpResponse:
    """The members (as filtered by status) with their status and dates, as CSV."""
    from patron.crm.views_imports import export_csv

    mailing_list = _list(request, list_id)
    status, _query = _member_filters(request)
    rows = lists.members(mailing_list, status).order_by("contact__email", "id")

    def lines() -> Any:
        yield ["email", "first_name", "last_name", "status", "subscribed_since", "confirmed_at"]
        for subscription in rows.iterator(chunk_size=2000):
            contact = subscription.contact
            yield [
                contact.email,
                contact.first_name,
                contact.last_name,
                subscription.status,
                subscription.created_at.isoformat(),
                subscription.confirmed_at.isoformat() if subscription.confirmed_at else "",
            ]

    return export_csv(request, f"list-{mailing_list.pk}", lines(), rows.count())


# --- The contact's Lists panel ----------------------------------------------------------------


def contact_panel_context(request: WorkspaceRequest, contact: Contact) -> dict[str, Any]:
    subscriptions = lists.contact_subscriptions(contact)
    on = {subscription.mailing_list_id for subscription, _history in subscriptions}
    return {
        "contact": contact,
        "subscriptions": subscriptions,
        "other_lists": [
            mailing_list
            for mailing_list in MailingList.objects.for_workspace(request.workspace)
            if mailing_list.pk not in on
        ],
    }


def _panel(request: WorkspaceRequest, contact: Contact) -> HttpResponse:
    if request.htmx:
        return render(
            request, "audience/_contact_lists.html", contact_panel_context(request, contact)
        )
    return redirect("crm:contact_detail", contact_id=contact.pk)


@workspace_view(CONTACTS_EDIT)
@require_POST
def contact_subscribe(request: WorkspaceRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    list_id = request.POST.get("list", "")
    mailing_list = (
        MailingList.objects.for_workspace(request.workspace)
        .select_related("workspace")
        .filter(pk=int(list_id) if list_id.isdigit() else 0)
        .first()
    )
    if mailing_list is None:
        messages.error(request, _("Choose a list."))
    else:
        _subscribe_one(request, mailing_list, contact)
    return _panel(request, contact)


@workspace_view(CONTACTS_EDIT)
@require_POST
def contact_unsubscribe(request: WorkspaceRequest, contact_id: int, list_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    mailing_list = _list(request, list_id)
    outcome = lists.unsubscribe(
        mailing_list=mailing_list, contact=contact, consent=_consent(request)
    )
    if outcome.changed:
        messages.success(
            request,
            _("%(contact)s unsubscribed from %(list)s.")
            % {"contact": str(contact), "list": mailing_list.name},
        )
    return _panel(request, contact)


# --- The public confirmation page -----------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def subscription_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Where the confirmation link leads: a button, so that opening the link confirms nothing."""
    context: dict[str, Any] = {"token": token, "state": "ask"}
    status = 200
    try:
        subscription = lists.subscription_for_token(token)
        mailing_list = subscription.mailing_list
        if request.method == "POST":
            info = request_info(request)
            subscription, changed = lists.confirm_subscription(
                token=token, ip_address=info.ip_address, user_agent=info.user_agent
            )
            context["state"] = "confirmed" if changed else "already"
        elif subscription.status == SubscriptionStatus.SUBSCRIBED:
            context["state"] = "already"
        elif subscription.status != SubscriptionStatus.PENDING:
            raise lists.ConfirmationInvalid("cancelled", mailing_list)
    except lists.ConfirmationInvalid as exc:
        mailing_list = exc.mailing_list  # type: ignore[assignment]
        context["state"] = exc.reason
        status = 400 if exc.reason == "invalid" else 410
    context["mailing_list"] = mailing_list
    language = mailing_list.workspace.language if mailing_list else translation.get_language()
    if mailing_list is not None:
        context["consent_text"] = lists.confirmation_page_text(mailing_list)
    with translation.override(language), timezone.override(timezone.get_current_timezone()):
        context["LANGUAGE_CODE"] = language
        response = render(request, "audience/list_confirm.html", context, status=status)
    # The link is the key to the page: never hand it to other sites in a Referer.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
