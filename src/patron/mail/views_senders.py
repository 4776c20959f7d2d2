"""Sender addresses: the settings page (list, add, edit, delete, resend, default) and
the public page a verification link opens, which verifies only when its button is pressed."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import SENDERS_MANAGE
from patron.core.signals import request_info
from patron.mail import senders
from patron.mail.models import SenderIdentity


class SenderForm(forms.Form):
    """The service checks again (``senders.SenderInvalid``), shown on the field at fault."""

    from_name = forms.CharField(
        label=gettext_lazy("From name"),
        max_length=senders.NAME_LIMIT,
        help_text=gettext_lazy("What recipients see as the sender, e.g. your company."),
    )
    from_email = forms.CharField(
        label=gettext_lazy("From address"),
        max_length=254,
        help_text=gettext_lazy("We email a link to this address; it is used once confirmed."),
    )
    reply_to = forms.CharField(
        label=gettext_lazy("Reply-to address"),
        max_length=254,
        required=False,
        help_text=gettext_lazy("Where replies go, when not to the from address."),
    )
    postal_address = forms.CharField(
        label=gettext_lazy("Postal address"),
        max_length=senders.POSTAL_LIMIT,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Printed in every campaign sent from this address."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from_email"].widget.input_type = "email"
        self.fields["reply_to"].widget.input_type = "email"

    # The addresses are checked here too, so that every mistake shows at once.
    def clean_from_email(self) -> str:
        return self._address("from_email")

    def clean_reply_to(self) -> str:
        return self._address("reply_to") if self.cleaned_data.get("reply_to") else ""

    def _address(self, field_name: str) -> str:
        try:
            return senders.normalise_address(self.cleaned_data[field_name], field_name)
        except senders.SenderInvalid as exc:
            raise forms.ValidationError(str(exc)) from exc


def _identities(request: WorkspaceRequest) -> Any:
    return senders.sender_identities(request.workspace)


def _send(request: WorkspaceRequest, identity: SenderIdentity, done: str = "") -> None:
    """Send the verification link, saying so in one message (``done`` first, if given)."""
    try:
        senders.send_verification(identity=identity)
    except senders.VerificationNotSent as exc:
        messages.error(request, f"{done} {exc}".strip())
    else:
        sent = _("We sent a verification link to %(address)s. It works for %(days)s days.") % {
            "address": identity.from_email,
            "days": senders.VERIFICATION_LIFETIME.days,
        }
        messages.success(request, f"{done} {sent}".strip())


@workspace_view(SENDERS_MANAGE)
def sender_list(request: WorkspaceRequest) -> HttpResponse:
    form = SenderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            identity = senders.create_sender(
                workspace=request.workspace,
                actor=request.user,
                request_info=request_info(request),
                **form.cleaned_data,
            )
        except senders.SenderInvalid as exc:
            form.add_error(exc.field, str(exc))
        else:
            _send(
                request,
                identity,
                _("Sender address %(address)s added.") % {"address": identity.from_email},
            )
            return redirect("senders:list")
    return render(
        request,
        "mail/sender_list.html",
        {"tab": "senders", "form": form, "identities": _identities(request)},
    )


@workspace_view(SENDERS_MANAGE)
def sender_edit(request: WorkspaceRequest, sender_id: int) -> HttpResponse:
    identity = get_object_or_404(_identities(request), pk=sender_id)
    initial = {name: getattr(identity, name) for name in senders.EDITABLE}
    form = SenderForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            identity, address_changed = senders.update_sender(
                identity=identity,
                actor=request.user,
                request_info=request_info(request),
                **form.cleaned_data,
            )
        except senders.SenderInvalid as exc:
            form.add_error(exc.field, str(exc))
        else:
            done = _("Sender address %(address)s saved.") % {"address": identity.from_email}
            if address_changed:
                _send(request, identity, done)
            else:
                messages.success(request, done)
            return redirect("senders:list")
    return render(
        request, "mail/sender_form.html", {"tab": "senders", "form": form, "identity": identity}
    )


@workspace_view(SENDERS_MANAGE)
@require_POST
def sender_delete(request: WorkspaceRequest, sender_id: int) -> HttpResponse:
    identity = get_object_or_404(_identities(request), pk=sender_id)
    senders.delete_sender(identity=identity, actor=request.user, request_info=request_info(request))
    messages.success(
        request, _("Sender address %(address)s deleted.") % {"address": identity.from_email}
    )
    return redirect("senders:list")


@workspace_view(SENDERS_MANAGE)
@require_POST
def sender_resend(request: WorkspaceRequest, sender_id: int) -> HttpResponse:
    identity = get_object_or_404(_identities(request), pk=sender_id)
    if identity.is_verified:
        messages.info(
            request, _("%(address)s is verified already.") % {"address": identity.from_email}
        )
    else:
        _send(request, identity)
    return redirect("senders:list")


@workspace_view(SENDERS_MANAGE)
@require_POST
def sender_make_default(request: WorkspaceRequest, sender_id: int) -> HttpResponse:
    identity = get_object_or_404(_identities(request), pk=sender_id)
    try:
        senders.set_default_sender(
            identity=identity, actor=request.user, request_info=request_info(request)
        )
    except senders.SenderNotVerified as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("Campaigns now start with %(address)s.") % {"address": identity.from_email},
        )
    return redirect("senders:list")


def sender_verify(request: HttpRequest, token: str) -> HttpResponse:
    """Where the verification link leads: a button, so that opening the link verifies nothing."""
    context: dict[str, Any] = {"state": "ask", "identity": None}
    status = 200
    try:
        identity = senders.identity_for_token(token)
        if request.method == "POST":
            identity, changed = senders.verify_sender(
                token=token, request_info=request_info(request)
            )
            context["state"] = "verified" if changed else "already"
        elif identity.is_verified:
            context["state"] = "already"
        context["identity"] = identity
    except senders.VerificationInvalid as exc:
        context["state"] = exc.reason
        context["identity"] = exc.identity
        status = 400 if exc.reason == "invalid" else 410
    identity = context["identity"]
    language = identity.workspace.language if identity else translation.get_language()
    with translation.override(language):
        context["LANGUAGE_CODE"] = language
        response = render(request, "mail/sender_verify.html", context, status=status)
    # The link is the key to the page: never hand it to other sites in a Referer.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
