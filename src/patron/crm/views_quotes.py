"""Quote pages: the editor with its lines, the quote as the team sees it, and the public page."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import DEALS_EDIT, DEALS_VIEW
from patron.core.signals import request_info
from patron.crm import quotes
from patron.crm.models import Contact, Deal, Quote, QuoteStatus, workspace_today


class QuoteForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    contact = forms.ModelChoiceField(
        label=gettext_lazy("Addressed to"), queryset=Contact.objects.none()
    )
    valid_until = forms.DateField(
        label=gettext_lazy("Valid until"), widget=forms.DateInput(attrs={"type": "date"})
    )
    terms = forms.CharField(
        label=gettext_lazy("Terms and notes"),
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, deal: Deal, quote: Quote | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The deal's people, and whoever the quote already goes to (the API may
        # address it to any contact of the workspace); everyone when the deal has nobody.
        contacts = Contact.objects.for_workspace(deal.workspace_id)
        people = contacts.filter(Q(deals=deal) | Q(pk=quote.contact_id if quote else None))
        if not deal.contacts.exists():
            people = contacts
        self.fields["contact"].queryset = people.distinct().order_by(  # type: ignore[attr-defined]
            "last_name", "first_name", "pk"
        )


class LineForm(forms.Form):
    description = forms.CharField(label=gettext_lazy("Description"), max_length=300, required=False)
    quantity = forms.DecimalField(
        label=gettext_lazy("Quantity"), max_digits=12, decimal_places=2, min_value=0, required=False
    )
    unit_price = forms.DecimalField(
        label=gettext_lazy("Unit price"),
        max_digits=14,
        decimal_places=2,
        min_value=0,
        required=False,
    )
    discount_percent = forms.DecimalField(
        label=gettext_lazy("Discount %"),
        max_digits=5,
        decimal_places=2,
        min_value=0,
        max_value=100,
        required=False,
    )
    tax_percent = forms.DecimalField(
        label=gettext_lazy("Tax %"),
        max_digits=5,
        decimal_places=2,
        min_value=0,
        max_value=100,
        required=False,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("DELETE"):
            return data
        numbers = ("quantity", "unit_price", "discount_percent", "tax_percent")
        if data.get("description"):
            if not data.get("quantity") or data.get("unit_price") is None:
                raise forms.ValidationError(_("A line needs a quantity and a unit price."))
        elif any(data.get(name) is not None for name in numbers):
            raise forms.ValidationError(_("A line needs a description."))
        return data


class BaseLineFormSet(forms.BaseFormSet):  # type: ignore[type-arg]
    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        form.fields["DELETE"].label = gettext_lazy("Remove")


# One empty line to fill; "Add a line" (quotes.js) adds more, "Remove" ticks DELETE.
LineFormSet = forms.formset_factory(
    LineForm,
    formset=BaseLineFormSet,
    extra=1,
    can_delete=True,
    max_num=quotes.MAX_LINES,
    validate_max=True,
)


def _lines(formset: Any) -> list[dict[str, Any]]:
    """The lines to keep, in the order shown: filled in and not removed."""
    return [
        form.cleaned_data
        for form in formset.forms
        if form.cleaned_data.get("description") and not form.cleaned_data.get("DELETE")
    ]


def _deal(request: WorkspaceRequest, deal_id: int) -> Deal:
    return get_object_or_404(Deal.objects.for_workspace(request.workspace), pk=deal_id)


def _quote(request: WorkspaceRequest, quote_id: int) -> Quote:
    return get_object_or_404(
        Quote.objects.for_workspace(request.workspace).select_related(
            "workspace", "deal", "contact", "created_by"
        ),
        pk=quote_id,
    )


def _editor(request: WorkspaceRequest, deal: Deal, quote: Quote | None) -> HttpResponse:
    if quote is not None:
        initial = {
            "title": quote.title,
            "contact": quote.contact_id,
            "valid_until": quote.valid_until,
            "terms": quote.terms,
        }
        line_initial = [
            {
                "description": line.description,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "discount_percent": line.discount_percent,
                "tax_percent": line.tax_percent,
            }
            for line in quote.lines.all()
        ]
    else:
        initial = {
            "title": deal.name,
            "valid_until": workspace_today(request.workspace) + quotes.DEFAULT_VALIDITY,
            "contact": deal.contacts.order_by("pk").values_list("pk", flat=True).first(),
        }
        line_initial = []
    form = QuoteForm(request.POST or None, deal=deal, quote=quote, initial=initial)
    formset = LineFormSet(request.POST or None, initial=line_initial, prefix="lines")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        data = form.cleaned_data
        try:
            if quote is None:
                quote = quotes.create_quote(
                    deal=deal,
                    title=data["title"],
                    valid_until=data["valid_until"],
                    contact=data["contact"],
                    terms=data["terms"],
                    lines=_lines(formset),
                    actor=request.user,
                )
            else:
                quotes.update_quote(
                    quote=quote,
                    title=data["title"],
                    valid_until=data["valid_until"],
                    contact=data["contact"],
                    terms=data["terms"],
                    lines=_lines(formset),
                )
        except quotes.QuoteInvalid as exc:
            if exc.field in form.fields:
                form.add_error(exc.field, str(exc))
            else:
                form.add_error(None, str(exc))
        else:
            messages.success(request, _("Quote %(number)s saved.") % {"number": quote.number})
            return redirect("crm:quote_detail", quote_id=quote.pk)
    return render(
        request,
        "crm/quote_form.html",
        {"form": form, "formset": formset, "deal": deal, "quote": quote},
    )


@workspace_view(DEALS_EDIT)
def quote_create(request: WorkspaceRequest, deal_id: int) -> HttpResponse:
    return _editor(request, _deal(request, deal_id), None)


@workspace_view(DEALS_EDIT)
def quote_edit(request: WorkspaceRequest, quote_id: int) -> HttpResponse:
    quote = _quote(request, quote_id)
    if quote.status != QuoteStatus.DRAFT:
        messages.error(
            request,
            _(
                "Quote %(number)s was sent and can no longer change: "
                "copy it as a new draft to make a new offer."
            )
            % {"number": quote.number},
        )
        return redirect("crm:quote_detail", quote_id=quote.pk)
    return _editor(request, quote.deal, quote)


@workspace_view(DEALS_EDIT)
@require_POST
def quote_delete(request: WorkspaceRequest, quote_id: int) -> HttpResponse:
    quote = _quote(request, quote_id)
    try:
        quotes.delete_quote(quote=quote)
    except quotes.QuoteInvalid as exc:
        messages.error(request, str(exc))
        return redirect("crm:quote_detail", quote_id=quote.pk)
    messages.success(request, _("Draft %(number)s deleted.") % {"number": quote.number})
    return redirect("crm:deal_detail", deal_id=quote.deal_id)


@workspace_view(DEALS_EDIT)
@require_POST
def quote_copy(request: WorkspaceRequest, quote_id: int) -> HttpResponse:
    """A new draft from any quote, for a new offer after the customer saw the old one."""
    copy = quotes.copy_quote(quote=_quote(request, quote_id), actor=request.user)
    messages.success(
        request,
        _("Draft %(number)s made from the quote; change it and send it.") % {"number": copy.number},
    )
    return redirect("crm:quote_edit", quote_id=copy.pk)


def _document(quote: Quote) -> dict[str, Any]:
    lines = list(quote.lines.all())
    return {
        "quote": quote,
        "lines": [(line, quotes.line_amounts(line)) for line in lines],
        "totals": quotes.totals(lines),
    }


@workspace_view(DEALS_VIEW)
def quote_detail(request: WorkspaceRequest, quote_id: int) -> HttpResponse:
    quote = _quote(request, quote_id)
    context = _document(quote)
    context["public_url"] = quotes.public_url(quote) if quote.status != QuoteStatus.DRAFT else ""
    return render(request, "crm/quote_detail.html", context)


@workspace_view(DEALS_EDIT)
@require_POST
def quote_send(request: WorkspaceRequest, quote_id: int) -> HttpResponse:
    quote = _quote(request, quote_id)
    try:
        quotes.send_quote(quote=quote, actor=request.user)
    except quotes.QuoteInvalid as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("Quote sent to %(email)s.") % {"email": quote.contact.email if quote.contact else ""},
        )
    return redirect("crm:quote_detail", quote_id=quote.pk)


def _answer(request: HttpRequest, quote: Quote) -> Quote:
    answer = request.POST.get("answer")
    if answer not in {"accept", "decline"}:
        raise quotes.QuoteInvalid("answer", _("Choose to accept or to decline the quote."))
    info = request_info(request)
    return quotes.answer_quote(
        quote=quote,
        accept=answer == "accept",
        name=request.POST.get("name", ""),
        reason=request.POST.get("reason", ""),
        ip_address=info.ip_address,
        user_agent=info.user_agent,
    )


def _is_member(request: HttpRequest, quote: Quote) -> bool:
    memberships = getattr(request, "memberships", [])
    return any(membership.workspace_id == quote.workspace_id for membership in memberships)


def _workspace_zone(quote: Quote) -> ZoneInfo:
    try:
        return ZoneInfo(quote.workspace.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@never_cache
@require_http_methods(["GET", "POST"])
def quote_public(request: HttpRequest, token: str) -> HttpResponse:
    """The customer's page: no login, reached only through the signed link.

    Shown in the workspace's language and time zone, like the email that
    carried the link. A view by a member of the workspace (a salesperson
    checking the link) is not recorded as the customer's first view.
    """
    quote = quotes.quote_for_token(token)
    if quote is None or quote.status == QuoteStatus.DRAFT:
        raise Http404
    with translation.override(quote.workspace.language), timezone.override(_workspace_zone(quote)):
        error = ""
        if request.method == "POST":
            try:
                quote = _answer(request, quote)
            except quotes.QuoteInvalid as exc:
                error = str(exc)
                quote = quotes.quote_for_token(token) or quote  # answered meanwhile?
            else:
                return redirect("crm:quote_public", token=token)
        elif not _is_member(request, quote):
            quotes.mark_viewed(quote=quote)
        context = _document(quote)
        context.update(
            {
                "workspace": quote.workspace,
                "error": error,
                "token": token,
                "LANGUAGE_CODE": quote.workspace.language,
            }
        )
        response = render(request, "crm/quote_public.html", context, status=400 if error else 200)
    # The link is the key to the page: never hand it to other sites in a Referer.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
