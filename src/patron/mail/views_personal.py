"""The composer of one-to-one email on a contact's page."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import EMAIL_SEND, SENDERS_MANAGE
from patron.crm.models import Contact
from patron.mail import personal


class ComposeForm(forms.Form):
    to = forms.ChoiceField(label=gettext_lazy("To"))
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=personal.SUBJECT_LIMIT)
    body = forms.CharField(
        label=gettext_lazy("Message"),
        max_length=personal.BODY_LIMIT,
        widget=forms.Textarea(attrs={"rows": 12}),
        strip=False,
        help_text=gettext_lazy(
            "Merge fields work as in campaigns: {{ contact.first_name }}, "
            '{{ company.name }}, {{ contact.first_name | default: "there" }}.'
        ),
    )
    acknowledge_suppressed = forms.BooleanField(
        label=gettext_lazy("Write to this address although it is suppressed"), required=False
    )
    send_key = forms.CharField(widget=forms.HiddenInput, required=False)
    # The received email (an event of this contact) this message answers.
    answering = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)

    def __init__(self, *args: Any, addresses: list[str], suppressed: dict[str, str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        labels = {
            address: _("%(address)s (suppressed: %(reason)s)") % {"address": address, "reason": why}
            for address, why in suppressed.items()
        }
        to_field = self.fields["to"]
        assert isinstance(to_field, forms.ChoiceField)
        to_field.choices = [(a, labels.get(a, a)) for a in addresses]
        if not suppressed:
            del self.fields["acknowledge_suppressed"]


@workspace_view(EMAIL_SEND)
def compose(request: WorkspaceRequest, contact_id: int) -> HttpResponse:
    workspace = request.workspace
    contact = get_object_or_404(Contact.objects.for_workspace(workspace), pk=contact_id)
    addresses = personal.recipient_choices(contact)
    suppressed = personal.suppressed_recipients(workspace, contact)
    sender = personal.sender_for(workspace, request.user)
    answering = personal.received_message(
        contact, request.POST.get("answering") or request.GET.get("answering")
    )
    initial: dict[str, Any] = {
        "send_key": personal.new_send_key(),
        "to": addresses[0] if addresses else "",
    }
    chosen = None
    if request.method == "GET" and request.GET.get("template", "").isdigit():
        chosen = personal.personal_templates(workspace).filter(pk=int(request.GET["template"]))
        chosen = chosen.first()
        if chosen is None:
            messages.error(request, _("That template is not among this workspace's templates."))
        else:
            initial["subject"], initial["body"] = personal.message_from_template(chosen)
    if answering is not None:
        initial["answering"] = answering.pk
        initial["subject"] = personal.reply_subject(answering.properties.get("subject", ""))
        sender_address = parseaddr(str(answering.properties.get("from", "")))[1]
        matching = [a for a in addresses if a.lower() == sender_address.lower()]
        if matching:
            initial["to"] = matching[0]
    form = ComposeForm(
        request.POST or None, addresses=addresses, suppressed=suppressed, initial=initial
    )
    if request.method == "POST" and form.is_valid() and sender is not None:
        values = form.cleaned_data
        try:
            personal.send_personal_email(
                workspace=workspace,
                contact=contact,
                user=request.user,
                to_email=values["to"],
                subject=values["subject"],
                body=values["body"],
                send_key=values["send_key"],
                acknowledge_suppressed=values.get("acknowledge_suppressed", False),
                in_reply_to=str(answering.properties.get("message_id", "")) if answering else "",
            )
        except personal.EmailInvalid as exc:
            for field_name, message in exc.errors.items():
                form.add_error(field_name if field_name in form.fields else None, message)
        except personal.EmailNotSent as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Email sent to %(address)s.") % {"address": values["to"]})
            return redirect("crm:contact_detail", contact_id=contact.pk)
    return render(
        request,
        "mail/compose.html",
        {
            "contact": contact,
            "form": form,
            "sender": sender,
            "answering": answering,
            "suppressed": suppressed,
            "templates": personal.personal_templates(workspace).values_list("pk", "name"),
            "chosen": chosen,
            "can_manage_senders": request.membership.can(SENDERS_MANAGE),
        },
    )
