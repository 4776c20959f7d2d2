"""Settings → Email delivery (the delivery method, SMTP servers, ESP credentials, a test
message) and Settings → Sending domains (DKIM keys, DNS records and their check)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import DELIVERY_MANAGE
from patron.core.signals import request_info
from patron.mail import delivery_config as delivery
from patron.mail import dkim_keys, esp_webhooks
from patron.mail.models import (
    BounceResult,
    DeliveryMode,
    EspProvider,
    ReceivedBounce,
    SmtpSecurity,
)

# --- Forms -----------------------------------------------------------------------------------


class DeliveryModeForm(forms.Form):
    mode = forms.ChoiceField(
        label=gettext_lazy("Delivery method"),
        choices=DeliveryMode.choices,
        widget=forms.Select(attrs={"data-reveals": "mode"}),
    )
    esp_provider = forms.ChoiceField(
        label=gettext_lazy("Provider"),
        choices=[("", "—"), *EspProvider.choices],
        required=False,
        widget=forms.Select(attrs={"data-reveals": "provider"}),
    )


def _secret_field(label: Any) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=delivery.SECRET_LIMIT,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


class AmazonSesForm(forms.Form):
    region = forms.CharField(
        label=gettext_lazy("AWS region"),
        required=False,
        max_length=40,
        help_text=gettext_lazy("Where your SES account sends from, e.g. eu-west-1."),
    )
    access_key_id = forms.CharField(
        label=gettext_lazy("Access key ID"), required=False, max_length=128
    )
    secret = _secret_field(gettext_lazy("Secret access key"))


class SendGridForm(forms.Form):
    secret = _secret_field(gettext_lazy("API key"))


class MailgunForm(forms.Form):
    region = forms.ChoiceField(
        label=gettext_lazy("Region"),
        choices=[
            ("us", gettext_lazy("US (api.mailgun.net)")),
            ("eu", gettext_lazy("EU (api.eu.mailgun.net)")),
        ],
        required=False,
    )
    domain = forms.CharField(
        label=gettext_lazy("Sending domain"),
        required=False,
        max_length=253,
        help_text=gettext_lazy("As set up in Mailgun, e.g. mg.example.com."),
    )
    secret = _secret_field(gettext_lazy("API key"))


class PostmarkForm(forms.Form):
    secret = _secret_field(gettext_lazy("Server token"))


PROVIDER_FORMS: dict[str, type[forms.Form]] = {
    "amazon_ses": AmazonSesForm,
    "sendgrid": SendGridForm,
    "mailgun": MailgunForm,
    "postmark": PostmarkForm,
}


class SmtpServerForm(forms.Form):
    host = forms.CharField(
        label=gettext_lazy("Host"),
        max_length=253,
        help_text=gettext_lazy("e.g. smtp.example.com"),
    )
    port = forms.IntegerField(label=gettext_lazy("Port"), initial=587, min_value=1, max_value=65535)
    security = forms.ChoiceField(
        label=gettext_lazy("Security"), choices=SmtpSecurity.choices, initial="starttls"
    )
    username = forms.CharField(label=gettext_lazy("Username"), max_length=254, required=False)
    password = forms.CharField(
        label=gettext_lazy("Password"),
        required=False,
        max_length=delivery.SECRET_LIMIT,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    weight = forms.IntegerField(
        label=gettext_lazy("Weight"),
        initial=1,
        min_value=1,
        max_value=delivery.MAX_WEIGHT,
        help_text=gettext_lazy("Share of the mail among active servers (1 to 100)."),
    )
    position = forms.IntegerField(
        label=gettext_lazy("Order"),
        required=False,
        min_value=0,
        help_text=gettext_lazy("Lower is tried first when a server fails; empty puts it last."),
    )
    verify_certificate = forms.BooleanField(
        label=gettext_lazy("Verify the server's TLS certificate"), required=False, initial=True
    )
    is_active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)


class WebhookKeyForm(forms.Form):
    key = forms.CharField(
        label=gettext_lazy("Webhook signing key"),
        required=False,
        max_length=2000,
        widget=forms.PasswordInput(render_value=False),
        help_text=gettext_lazy(
            "Mailgun: the HTTP webhook signing key. SendGrid: the verification key of "
            "the signed event webhook. Leave blank to remove it."
        ),
    )


class TestMessageForm(forms.Form):
    to_email = forms.CharField(
        label=gettext_lazy("Send a test message to"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class SendingDomainForm(forms.Form):
    domain = forms.CharField(
        label=gettext_lazy("Domain"),
        max_length=253,
        help_text=gettext_lazy("The domain of your From addresses, e.g. example.com."),
    )
    selector = forms.CharField(
        label=gettext_lazy("Selector"),
        max_length=63,
        required=False,
        help_text=gettext_lazy("Optional; a name for this key. Empty: patron + year and month."),
    )


# --- Helpers ---------------------------------------------------------------------------------


def _add_errors(form: forms.Form, errors: dict[str, str], prefix: str = "") -> None:
    for name, message in errors.items():
        field_name = name.removeprefix(prefix) if prefix else name
        form.add_error(field_name if field_name in form.fields else None, message)


def _provider_forms(
    request: WorkspaceRequest, config: Any, bound_provider: str | None
) -> dict[str, forms.Form]:
    """One form per provider, the chosen one bound to the POST; secrets never filled in."""
    result = {}
    for provider, form_class in PROVIDER_FORMS.items():
        initial: dict[str, str] = {}
        if config is not None and config.esp_provider == provider:
            initial = {
                "region": config.esp_region,
                "access_key_id": config.esp_access_key_id,
                "domain": config.esp_domain,
            }
        data = request.POST if provider == bound_provider else None
        form = form_class(data, initial=initial, prefix=provider)
        stored = (
            delivery.masked_secret(config.esp_secret)
            if config is not None and config.esp_provider == provider
            else ""
        )
        if stored:
            form.fields["secret"].help_text = _("Stored: %(mask)s. Leave blank to keep it.") % {
                "mask": stored
            }
        result[provider] = form
    return result


def _delivery_page(
    request: WorkspaceRequest,
    *,
    mode_form: DeliveryModeForm | None = None,
    provider_forms: dict[str, forms.Form] | None = None,
    server_form: SmtpServerForm | None = None,
    test_form: TestMessageForm | None = None,
    test_result: Any = None,
    status: int = 200,
) -> HttpResponse:
    workspace = request.workspace
    config = delivery.delivery_config(workspace)
    if mode_form is None:
        mode_form = DeliveryModeForm(
            initial={
                "mode": config.mode if config else DeliveryMode.DEFAULT,
                "esp_provider": config.esp_provider if config else "",
            }
        )
    names = dict(EspProvider.choices)
    servers = [
        (server, delivery.masked_secret(server.password))
        for server in delivery.smtp_servers(workspace)
    ]
    context = {
        "tab": "delivery",
        "config": config,
        "mode": config.mode if config else DeliveryMode.DEFAULT,
        "mode_form": mode_form,
        "esp_sections": [
            (provider, names[provider], form)
            for provider, form in (provider_forms or _provider_forms(request, config, None)).items()
        ],
        "servers": servers,
        "server_form": server_form or SmtpServerForm(),
        "test_form": test_form or TestMessageForm(initial={"to_email": request.user.email}),
        "test_result": test_result,
        "installation_transport": settings.EMAIL_TRANSPORT,
        "webhook": _webhook_context(config),
    }
    return render(request, "mail/delivery_settings.html", context, status=status)


def _webhook_context(config: Any) -> dict[str, Any] | None:
    """The provider's event webhook address (and whether its signing key is kept)."""
    if config is None or config.mode != DeliveryMode.ESP or not config.esp_provider:
        return None
    return {
        "url": esp_webhooks.webhook_url(config.workspace_id, config.esp_provider),
        "signed": config.esp_provider in (EspProvider.MAILGUN, EspProvider.SENDGRID),
        "has_key": bool(config.esp_webhook_key),
        "form": WebhookKeyForm(),
    }


@workspace_view(DELIVERY_MANAGE)
@require_POST
def webhook_key(request: WorkspaceRequest) -> HttpResponse:
    form = WebhookKeyForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The key is too long."))
        return redirect("delivery:settings")
    esp_webhooks.set_webhook_key(
        workspace=request.workspace, key=form.cleaned_data["key"], actor=request.user
    )
    if form.cleaned_data["key"].strip():
        messages.success(request, _("The webhook signing key is saved."))
    else:
        messages.success(request, _("The webhook signing key is removed."))
    return redirect("delivery:settings")


# --- Email delivery --------------------------------------------------------------------------


@workspace_view(DELIVERY_MANAGE)
def delivery_settings(request: WorkspaceRequest) -> HttpResponse:
    if request.method != "POST":
        return _delivery_page(request)
    config = delivery.delivery_config(request.workspace)
    mode_form = DeliveryModeForm(request.POST)
    provider = request.POST.get("esp_provider", "")
    bound = provider if request.POST.get("mode") == DeliveryMode.ESP else None
    provider_forms = _provider_forms(request, config, bound)
    if not mode_form.is_valid():
        return _delivery_page(
            request, mode_form=mode_form, provider_forms=provider_forms, status=400
        )
    mode = mode_form.cleaned_data["mode"]
    esp_values: dict[str, str] = {}
    if mode == DeliveryMode.ESP:
        provider = mode_form.cleaned_data["esp_provider"]
        if not provider:
            mode_form.add_error("esp_provider", _("Choose the email service provider."))
            return _delivery_page(
                request, mode_form=mode_form, provider_forms=provider_forms, status=400
            )
        form = provider_forms[provider]
        if not form.is_valid():
            return _delivery_page(
                request, mode_form=mode_form, provider_forms=provider_forms, status=400
            )
        esp_values = {f"esp_{name}": value for name, value in form.cleaned_data.items()}
        esp_values["esp_provider"] = provider
    try:
        config = delivery.save_delivery(
            workspace=request.workspace,
            mode=mode,
            actor=request.user,
            request_info=request_info(request),
            **esp_values,
        )
    except delivery.DeliveryInvalid as exc:
        errors = dict(exc.errors)
        for name in ("mode", "esp_provider"):
            if name in errors:
                mode_form.add_error(name, errors.pop(name))
        if errors and provider in provider_forms:
            _add_errors(provider_forms[provider], errors, prefix="esp_")
        return _delivery_page(
            request, mode_form=mode_form, provider_forms=provider_forms, status=400
        )
    label = str(config.get_mode_display())
    if mode == DeliveryMode.ESP:
        label = str(config.get_esp_provider_display())
    messages.success(request, _("Mail is now delivered with: %(mode)s.") % {"mode": label})
    return redirect("delivery:settings")


@workspace_view(DELIVERY_MANAGE)
@require_POST
def smtp_server_add(request: WorkspaceRequest) -> HttpResponse:
    form = SmtpServerForm(request.POST)
    if form.is_valid():
        try:
            server = delivery.add_smtp_server(
                workspace=request.workspace,
                actor=request.user,
                request_info=request_info(request),
                **form.cleaned_data,
            )
        except delivery.DeliveryInvalid as exc:
            _add_errors(form, exc.errors)
        else:
            messages.success(request, _("SMTP server %(server)s added.") % {"server": str(server)})
            return redirect("delivery:settings")
    return _delivery_page(request, server_form=form, status=400)


@workspace_view(DELIVERY_MANAGE)
def smtp_server_edit(request: WorkspaceRequest, smtp_server_id: int) -> HttpResponse:
    server = get_object_or_404(delivery.smtp_servers(request.workspace), pk=smtp_server_id)
    initial = {
        name: getattr(server, name)
        for name in (
            "host",
            "port",
            "security",
            "username",
            "weight",
            "position",
            "verify_certificate",
            "is_active",
        )
    }
    form = SmtpServerForm(request.POST or None, initial=initial)
    if server.password:
        form.fields["password"].help_text = _("Stored: %(mask)s. Leave blank to keep it.") % {
            "mask": delivery.masked_secret(server.password)
        }
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        if values.get("position") is None:
            values["position"] = server.position
        try:
            server = delivery.update_smtp_server(
                server=server, actor=request.user, request_info=request_info(request), **values
            )
        except delivery.DeliveryInvalid as exc:
            _add_errors(form, exc.errors)
        else:
            messages.success(request, _("SMTP server %(server)s saved.") % {"server": str(server)})
            return redirect("delivery:settings")
    return render(
        request,
        "mail/smtp_server_form.html",
        {"tab": "delivery", "form": form, "server": server},
        status=400 if form.is_bound and form.errors else 200,
    )


@workspace_view(DELIVERY_MANAGE)
@require_POST
def smtp_server_delete(request: WorkspaceRequest, smtp_server_id: int) -> HttpResponse:
    server = get_object_or_404(delivery.smtp_servers(request.workspace), pk=smtp_server_id)
    try:
        delivery.delete_smtp_server(
            server=server, actor=request.user, request_info=request_info(request)
        )
    except delivery.DeliveryInvalid as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("SMTP server %(server)s deleted.") % {"server": str(server)})
    return redirect("delivery:settings")


@workspace_view(DELIVERY_MANAGE)
@require_POST
def delivery_test(request: WorkspaceRequest) -> HttpResponse:
    """Send a real message now and show what the server or provider answered."""
    form = TestMessageForm(request.POST)
    result: Any = None
    if form.is_valid():
        try:
            outcome = delivery.send_test_message(
                workspace=request.workspace,
                to_email=form.cleaned_data["to_email"],
                actor=request.user,
                request_info=request_info(request),
            )
        except delivery.DeliveryInvalid as exc:
            _add_errors(form, exc.errors)
        except delivery.DeliveryUnavailable as exc:
            result = {"sent": False, "code": None, "reply": str(exc), "outcome": "unavailable"}
        else:
            result = {
                "sent": str(outcome.outcome) == "sent",
                "outcome": str(outcome.outcome),
                "code": outcome.code,
                "reply": outcome.reply,
                "to": form.cleaned_data["to_email"],
            }
    return _delivery_page(
        request,
        test_form=form,
        test_result=result,
        status=200 if result is not None else 400,
    )


# --- Sending domains -------------------------------------------------------------------------


@workspace_view(DELIVERY_MANAGE)
def sending_domain_list(request: WorkspaceRequest) -> HttpResponse:
    form = SendingDomainForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            row = dkim_keys.add_sending_domain(
                workspace=request.workspace,
                actor=request.user,
                request_info=request_info(request),
                **form.cleaned_data,
            )
        except dkim_keys.SendingDomainInvalid as exc:
            form.add_error(exc.field, str(exc))
        else:
            messages.success(
                request,
                _("DKIM key created for %(domain)s: publish the records below.")
                % {"domain": row.domain},
            )
            return redirect("delivery:domain", sending_domain_id=row.pk)
    return render(
        request,
        "mail/sending_domain_list.html",
        {
            "tab": "delivery",
            "form": form,
            "domains": dkim_keys.sending_domains(request.workspace),
        },
        status=400 if form.is_bound and form.errors else 200,
    )


@workspace_view(DELIVERY_MANAGE)
def sending_domain_detail(request: WorkspaceRequest, sending_domain_id: int) -> HttpResponse:
    row = get_object_or_404(dkim_keys.sending_domains(request.workspace), pk=sending_domain_id)
    checked = False
    if request.method == "POST":
        records = dkim_keys.check_sending_domain(
            sending_domain=row, actor=request.user, request_info=request_info(request)
        )
        checked = True
    else:
        records = dkim_keys.dns_records(row)
    return render(
        request,
        "mail/sending_domain_detail.html",
        {"tab": "delivery", "domain": row, "records": records, "checked": checked},
    )


@workspace_view(DELIVERY_MANAGE)
@require_POST
def sending_domain_delete(request: WorkspaceRequest, sending_domain_id: int) -> HttpResponse:
    row = get_object_or_404(dkim_keys.sending_domains(request.workspace), pk=sending_domain_id)
    dkim_keys.delete_sending_domain(
        sending_domain=row, actor=request.user, request_info=request_info(request)
    )
    messages.success(
        request,
        _("%(domain)s deleted: mail from it is no longer signed with its key.")
        % {"domain": row.domain},
    )
    return redirect("delivery:domains")


# --- Received bounce and complaint reports ---------------------------------------------------


@workspace_view(DELIVERY_MANAGE)
def received_reports(request: WorkspaceRequest) -> HttpResponse:
    """The bounce and complaint reports that came back, newest first; ``?show=unread``:
    only those that could not be read (kept for a person to look at)."""
    reports = ReceivedBounce.objects.for_workspace(request.workspace).defer("raw")
    unread = request.GET.get("show") == "unread"
    if unread:
        reports = reports.filter(result=BounceResult.UNREADABLE)
    page = Paginator(reports.order_by("-received_at", "-id"), 50).get_page(request.GET.get("page"))
    unreadable = (
        ReceivedBounce.objects.for_workspace(request.workspace)
        .filter(result=BounceResult.UNREADABLE)
        .count()
    )
    return render(
        request,
        "mail/received_reports.html",
        {"page_obj": page, "unread": unread, "unreadable": unreadable},
    )


@workspace_view(DELIVERY_MANAGE)
def received_report_raw(request: WorkspaceRequest, received_bounce_id: int) -> HttpResponse:
    """One report exactly as it arrived, as a message file to open in a mail program."""
    report = get_object_or_404(
        ReceivedBounce.objects.for_workspace(request.workspace), pk=received_bounce_id
    )
    response = HttpResponse(bytes(report.raw), content_type="message/rfc822")
    response.headers["Content-Disposition"] = f'attachment; filename="report-{report.pk}.eml"'
    return response
