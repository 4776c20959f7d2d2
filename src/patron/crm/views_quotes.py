"""Quote pages: the editor with its lines, the quote as the team sees it, and the public page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import DEALS_EDIT, DEALS_VIEW
from patron.core.signals import request_info
from patron.crm import quotes
from patron.crm.models import Contact, Deal, Quote, QuoteStatus


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

    def __init__(self, *args: Any, deal: Deal, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        people = deal.contacts.order_by("last_name", "first_name")
        if not people.exists():
            people = Contact.objects.for_workspace(deal.workspace_id).order_by("last_name")
        self.fields["contact"].queryset = people  # type: ignore[attr-defined]


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
        if data.get("description") and (not data.get("quantity") or data.get("unit_price") is None):
            raise forms.ValidationError(_("A line needs a quantity and a unit price."))
        return data


LineFormSet = forms.formset_factory(LineForm, extra=3, max_num=quotes.MAX_LINES)


def _lines(formset: Any) -> list[dict[str, Any]]:
    return [form.cleaned_data for form in formset.forms if form.cleaned_data.get("description")]


def _deal(request: WorkspaceRequest, deal_id: int) -> Deal:
    return get_object_or_404(Deal.objects.for_workspace(request.workspace), pk=deal_id)


def _quote(request: WorkspaceRequest, quote_id: int) -> Quote:
    return get_object_or_404(
        Quote.objects.for_workspace(request.workspace).select_related("deal", "contact"),
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
            "valid_until": timezone.localdate() + timedelta(days=30),
            "contact": deal.contacts.order_by("pk").values_list("pk", flat=True).first(),
        }
        line_initial = []
    form = QuoteForm(request.POST or None, deal=deal, initial=initial)
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
        messages.error(request, _("A sent quote cannot change; make a new quote for a new offer."))
        return redirect("crm:quote_detail", quote_id=quote.pk)
    return _editor(request, quote.deal, quote)


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


def quote_public(request: HttpRequest, token: str) -> HttpResponse:
    """The customer's page: no login, reached only through the signed link."""
    quote = quotes.quote_for_token(token)
    if quote is None or quote.status == QuoteStatus.DRAFT:
        raise Http404
    error = ""
    if request.method == "POST":
        info = request_info(request)
        try:
            quote = quotes.answer_quote(
                quote=quote,
                accept=request.POST.get("answer") == "accept",
                name=request.POST.get("name", ""),
                reason=request.POST.get("reason", ""),
                ip_address=info.ip_address,
                user_agent=info.user_agent,
            )
        except quotes.QuoteInvalid as exc:
            error = str(exc)
        else:
            return redirect("crm:quote_public", token=token)
    else:
        quotes.mark_viewed(quote=quote)
    context = _document(quote)
    context.update({"workspace": quote.workspace, "error": error, "token": token})
    return render(request, "crm/quote_public.html", context)
