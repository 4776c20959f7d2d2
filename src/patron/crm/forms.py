from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from patron.core.models import User, Workspace
from patron.crm.models import (
    Company,
    Contact,
    Deal,
    LifecycleStage,
    Pipeline,
    Stage,
    TaskPriority,
)


def _owner_field(workspace: Workspace) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        label=_("Owner"),
        queryset=User.objects.filter(
            memberships__workspace=workspace, memberships__is_active=True
        ).order_by("name", "email"),
        required=False,
    )


class ContactForm(forms.Form):
    first_name = forms.CharField(label=_("First name"), max_length=100, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=100, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    phone = forms.CharField(label=_("Phone"), max_length=50, required=False)
    job_title = forms.CharField(label=_("Job title"), max_length=150, required=False)
    company = forms.ModelChoiceField(
        label=_("Company"), queryset=Company.objects.none(), required=False
    )
    lifecycle_stage = forms.ChoiceField(
        label=_("Lifecycle stage"),
        choices=LifecycleStage.choices,
        initial=LifecycleStage.SUBSCRIBER,
    )
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=User.objects.none(), required=False)
    source = forms.CharField(label=_("Source"), max_length=100, required=False)

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["company"] = forms.ModelChoiceField(
            label=_("Company"),
            queryset=Company.objects.for_workspace(workspace).order_by("name"),
            required=False,
        )
        self.fields["owner"] = _owner_field(workspace)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not (data.get("first_name") or data.get("last_name") or data.get("email")):
            raise forms.ValidationError(_("Give at least a name or an email address."))
        return data

    @classmethod
    def initial_for(cls, contact: Contact) -> dict[str, Any]:
        return {name: getattr(contact, name) for name in cls.base_fields}


class CompanyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    domain = forms.CharField(
        label=_("Domain"),
        max_length=253,
        required=False,
        help_text=_("The website's domain, e.g. example.com."),
    )
    industry = forms.CharField(label=_("Industry"), max_length=100, required=False)
    size = forms.IntegerField(label=_("Employees"), min_value=0, required=False)
    annual_revenue = forms.DecimalField(
        label=_("Annual revenue"), min_value=0, max_digits=16, decimal_places=2, required=False
    )
    phone = forms.CharField(label=_("Phone"), max_length=50, required=False)
    city = forms.CharField(label=_("City"), max_length=100, required=False)
    country = forms.CharField(label=_("Country"), max_length=100, required=False)
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=User.objects.none(), required=False)

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"] = _owner_field(workspace)

    def clean_domain(self) -> str:
        domain = self.cleaned_data.get("domain", "").strip().lower()
        for prefix in ("https://", "http://"):
            domain = domain.removeprefix(prefix)
        domain = domain.split("/")[0].removeprefix("www.")
        if domain and ("." not in domain or " " in domain):
            raise forms.ValidationError(_("Enter a domain such as example.com."))
        return domain

    @classmethod
    def initial_for(cls, company: Company) -> dict[str, Any]:
        return {name: getattr(company, name) for name in cls.base_fields}


class DealForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    stage = forms.ModelChoiceField(label=_("Stage"), queryset=Stage.objects.none())
    amount = forms.DecimalField(
        label=_("Amount"), min_value=0, max_digits=14, decimal_places=2, initial=0
    )
    currency = forms.CharField(label=_("Currency"), max_length=3, min_length=3)
    expected_close_date = forms.DateField(
        label=_("Expected close date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=User.objects.none(), required=False)
    company = forms.ModelChoiceField(
        label=_("Company"), queryset=Company.objects.none(), required=False
    )
    contacts = forms.ModelMultipleChoiceField(
        label=_("Contacts"),
        queryset=Contact.objects.none(),
        required=False,
        help_text=_("The people this deal is with."),
    )
    source = forms.CharField(label=_("Source"), max_length=100, required=False)

    def __init__(self, *args: Any, workspace: Workspace, pipeline: Pipeline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["stage"] = forms.ModelChoiceField(
            label=_("Stage"),
            queryset=Stage.objects.for_workspace(workspace).filter(pipeline=pipeline),
            empty_label=None,
        )
        self.fields["owner"] = _owner_field(workspace)
        self.fields["company"] = forms.ModelChoiceField(
            label=_("Company"),
            queryset=Company.objects.for_workspace(workspace).order_by("name"),
            required=False,
        )
        self.fields["contacts"] = forms.ModelMultipleChoiceField(
            label=_("Contacts"),
            queryset=Contact.objects.for_workspace(workspace).order_by("last_name", "first_name"),
            required=False,
            help_text=_("The people this deal is with."),
        )
        self.fields["currency"].initial = workspace.currency

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].upper()
        if not currency.isalpha():
            raise forms.ValidationError(_("Use a three-letter currency code such as USD."))
        return currency


class MoveDealForm(forms.Form):
    stage = forms.ModelChoiceField(label=_("Move to"), queryset=Stage.objects.none())
    position = forms.IntegerField(required=False, widget=forms.HiddenInput)
    lost_reason = forms.CharField(label=_("Reason lost"), max_length=300, required=False)

    def __init__(self, *args: Any, deal: Deal, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["stage"] = forms.ModelChoiceField(
            label=_("Move to"),
            queryset=Stage.objects.for_workspace(deal.workspace_id).filter(
                pipeline_id=deal.pipeline_id
            ),
        )


class NoteForm(forms.Form):
    body = forms.CharField(
        label=_("Note"),
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Plain text; bold, italics, lists and links in HTML are kept."),
    )


class TaskForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    due_at = forms.DateTimeField(
        label=_("Due"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("In your time zone."),
    )
    remind_at = forms.DateTimeField(
        label=_("Remind me at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("A reminder arrives in Patron and by email at this time."),
    )
    priority = forms.ChoiceField(
        label=_("Priority"), choices=TaskPriority.choices, initial=TaskPriority.NORMAL
    )
    assignee = forms.ModelChoiceField(
        label=_("Assigned to"), queryset=User.objects.none(), required=False
    )
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner_field = _owner_field(workspace)
        owner_field.label = _("Assigned to")
        self.fields["assignee"] = owner_field

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("remind_at") and not data.get("assignee"):
            self.add_error("assignee", _("A reminder needs someone to remind."))
        return data
