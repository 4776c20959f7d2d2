from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms
from django.conf.locale import LANG_INFO
from django.core.validators import validate_email
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patron.core.models import User, Workspace
from patron.core.selectors import active_users
from patron.crm import custom_fields
from patron.crm.custom_fields import FORM_PREFIX, CustomFieldInvalid
from patron.crm.models import (
    CallDirection,
    CallOutcome,
    Company,
    Contact,
    CustomField,
    CustomFieldObject,
    Deal,
    FieldType,
    LifecycleStage,
    Meeting,
    MeetingOutcome,
    Pipeline,
    Stage,
    TaskPriority,
    Ticket,
)


def _owner_field(workspace: Workspace) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        label=_("Owner"),
        queryset=active_users(workspace),
        required=False,
    )


class CustomFieldsForm(forms.Form):
    """A form that also carries the workspace's custom fields of one record type.

    The custom fields are named ``cf_<key>``; ``service_values()`` gives the
    cleaned data in the shape the services take (custom values under
    ``custom``), and ``add_custom_errors()`` puts a service's verdict back on
    the right fields.
    """

    object_type: str = ""

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.custom_field_definitions: list[CustomField] = list(
            CustomField.objects.for_workspace(workspace)
            .filter(object_type=self.object_type)
            .order_by("position", "id")
        )
        for field in self.custom_field_definitions:
            self.fields[FORM_PREFIX + field.key] = custom_fields.form_field(field)

    def service_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for name, value in self.cleaned_data.items():
            if name.startswith(FORM_PREFIX):
                custom[name.removeprefix(FORM_PREFIX)] = value
            else:
                values[name] = value
        if self.custom_field_definitions:
            values["custom"] = custom
        return values

    def add_custom_errors(self, exc: CustomFieldInvalid) -> None:
        for key, message in exc.errors.items():
            name = FORM_PREFIX + key
            self.add_error(name if name in self.fields else None, message)

    @staticmethod
    def custom_initial(record: Contact | Company | Deal | Ticket) -> dict[str, Any]:
        definitions = CustomField.objects.for_workspace(record.workspace_id).filter(
            object_type=record._meta.model_name
        )
        return {
            FORM_PREFIX + field.key: custom_fields.initial_for_form(
                field, record.custom.get(field.key)
            )
            for field in definitions
        }


def _time_zone_choices() -> list[tuple[str, str]]:
    return [("", "—"), *[(name, name) for name in sorted(zoneinfo.available_timezones())]]


def _language_choices() -> list[tuple[str, str]]:
    names = {
        code: str(info["name"])
        for code, info in LANG_INFO.items()
        if "name" in info and "-" not in code
    }
    return [("", "—"), *sorted(names.items(), key=lambda item: item[1])]


class ContactForm(CustomFieldsForm):
    object_type = CustomFieldObject.CONTACT

    first_name = forms.CharField(label=_("First name"), max_length=100, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=100, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    other_emails = forms.CharField(
        label=_("Other emails"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One per line."),
    )
    phone = forms.CharField(label=_("Phone"), max_length=50, required=False)
    mobile_phone = forms.CharField(label=_("Mobile phone"), max_length=50, required=False)
    job_title = forms.CharField(label=_("Job title"), max_length=150, required=False)
    company = forms.ModelChoiceField(
        label=_("Company"), queryset=Company.objects.none(), required=False
    )
    other_companies = forms.ModelMultipleChoiceField(
        label=_("Other companies"), queryset=Company.objects.none(), required=False
    )
    lifecycle_stage = forms.ChoiceField(
        label=_("Lifecycle stage"),
        choices=LifecycleStage.choices,
        initial=LifecycleStage.SUBSCRIBER,
    )
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=User.objects.none(), required=False)
    source = forms.CharField(label=_("Source"), max_length=100, required=False)
    street = forms.CharField(label=_("Street address"), max_length=200, required=False)
    postal_code = forms.CharField(label=_("Postal code"), max_length=20, required=False)
    city = forms.CharField(label=_("City"), max_length=100, required=False)
    region = forms.CharField(label=_("State / region"), max_length=100, required=False)
    country = forms.CharField(label=_("Country"), max_length=100, required=False)
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=(), required=False)
    language = forms.ChoiceField(label=_("Language"), choices=(), required=False)
    birthday = forms.DateField(
        label=_("Birthday"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, workspace=workspace, **kwargs)
        companies = Company.objects.for_workspace(workspace).order_by("name")
        self.fields["company"] = forms.ModelChoiceField(
            label=_("Company"), queryset=companies, required=False
        )
        self.fields["other_companies"] = forms.ModelMultipleChoiceField(
            label=_("Other companies"), queryset=companies, required=False
        )
        self.fields["owner"] = _owner_field(workspace)
        self.fields["time_zone"].choices = _time_zone_choices()  # type: ignore[attr-defined]
        self.fields["language"].choices = _language_choices()  # type: ignore[attr-defined]

    def clean_other_emails(self) -> list[str]:
        emails = []
        for line in self.cleaned_data.get("other_emails", "").replace(",", "\n").splitlines():
            email = line.strip().lower()
            if not email:
                continue
            try:
                validate_email(email)
            except forms.ValidationError:
                raise forms.ValidationError(
                    _("“%(email)s” is not an email address.") % {"email": email}
                ) from None
            emails.append(email)
        return emails

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not (data.get("first_name") or data.get("last_name") or data.get("email")):
            raise forms.ValidationError(_("Give at least a name or an email address."))
        company = data.get("company")
        if company is not None and company in (data.get("other_companies") or []):
            data["other_companies"] = [c for c in data["other_companies"] if c != company]
        return data

    @classmethod
    def initial_for(cls, contact: Contact) -> dict[str, Any]:
        initial = {
            name: getattr(contact, name)
            for name in cls.base_fields
            if name not in {"other_emails", "other_companies"}
        }
        initial["other_emails"] = "\n".join(e.email for e in contact.other_emails.all())
        initial["other_companies"] = list(contact.other_companies.all())
        return {**initial, **cls.custom_initial(contact)}


class CompanyForm(CustomFieldsForm):
    object_type = CustomFieldObject.COMPANY

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
    street = forms.CharField(label=_("Street address"), max_length=200, required=False)
    postal_code = forms.CharField(label=_("Postal code"), max_length=20, required=False)
    city = forms.CharField(label=_("City"), max_length=100, required=False)
    region = forms.CharField(label=_("State / region"), max_length=100, required=False)
    country = forms.CharField(label=_("Country"), max_length=100, required=False)
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=User.objects.none(), required=False)

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, workspace=workspace, **kwargs)
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
        initial = {name: getattr(company, name) for name in cls.base_fields}
        return {**initial, **cls.custom_initial(company)}


class DealForm(CustomFieldsForm):
    object_type = CustomFieldObject.DEAL

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
        super().__init__(*args, workspace=workspace, **kwargs)
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


class CustomFieldForm(forms.Form):
    """Define a custom field (Settings → Custom fields)."""

    label = forms.CharField(label=_("Label"), max_length=100)
    field_type = forms.ChoiceField(label=_("Type"), choices=FieldType.choices)
    key = forms.CharField(
        label=_("Key"),
        max_length=50,
        required=False,
        help_text=_(
            "Used in the API, imports and merge tags; made from the label when left empty. "
            "Cannot change later."
        ),
    )
    options = forms.CharField(
        label=_("Options"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("For select fields: one option per line."),
    )
    required = forms.BooleanField(label=_("Required"), required=False)
    help_text = forms.CharField(label=_("Help text"), max_length=200, required=False)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            # Key and type are fixed once values exist under them.
            del self.fields["key"]
            del self.fields["field_type"]

    def clean_options(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["options"].splitlines() if line.strip()]


class CallForm(forms.Form):
    """Log a call. ``contacts`` offers a choice of person (from a company or deal
    page; None when the contact is given); ``deals`` offers the deals to file it
    under (None when there is no choice to make)."""

    contact = forms.ModelChoiceField(label=_("With"), queryset=Contact.objects.none())
    outcome = forms.ChoiceField(label=_("Outcome"), choices=CallOutcome.choices)
    direction = forms.ChoiceField(
        label=_("Direction"), choices=CallDirection.choices, initial=CallDirection.OUTBOUND
    )
    occurred_at = forms.DateTimeField(
        label=_("When"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("In your time zone."),
    )
    duration_minutes = forms.IntegerField(
        label=_("Duration (minutes)"), min_value=0, max_value=24 * 60, initial=0
    )
    deal = forms.ModelChoiceField(label=_("Deal"), queryset=Deal.objects.none(), required=False)
    notes = forms.CharField(
        label=_("Notes"),
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def __init__(
        self,
        *args: Any,
        contacts: QuerySet[Contact] | None = None,
        deals: QuerySet[Deal] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if contacts is None:
            del self.fields["contact"]
        else:
            self.fields["contact"].queryset = contacts  # type: ignore[attr-defined]
        if deals is None:
            del self.fields["deal"]
        else:
            self.fields["deal"].queryset = deals  # type: ignore[attr-defined]


def _datetime_field(label: Any, help_text: Any = "") -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=help_text,
    )


class MeetingForm(forms.Form):
    """Schedule or edit a meeting. ``deals`` is None for roles without deals."""

    title = forms.CharField(label=_("Title"), max_length=200)
    starts_at = _datetime_field(_("Starts"), _("In your time zone."))
    ends_at = _datetime_field(_("Ends"))
    location = forms.CharField(label=_("Place or link"), max_length=300, required=False)
    organizer = forms.ModelChoiceField(label=_("Organizer"), queryset=User.objects.none())
    contacts = forms.ModelMultipleChoiceField(
        label=_("With"), queryset=Contact.objects.none(), required=False
    )
    company = forms.ModelChoiceField(
        label=_("Company"), queryset=Company.objects.none(), required=False
    )
    deal = forms.ModelChoiceField(label=_("Deal"), queryset=Deal.objects.none(), required=False)
    description = forms.CharField(
        label=_("Agenda"),
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(
        self, *args: Any, workspace: Workspace, deals: QuerySet[Deal] | None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        organizer = _owner_field(workspace)
        organizer.label = _("Organizer")
        organizer.required = True
        self.fields["organizer"] = organizer
        self.fields["contacts"].queryset = (  # type: ignore[attr-defined]
            Contact.objects.for_workspace(workspace).order_by("last_name", "first_name")
        )
        self.fields["company"].queryset = (  # type: ignore[attr-defined]
            Company.objects.for_workspace(workspace).order_by("name")
        )
        if deals is None:
            del self.fields["deal"]
        else:
            self.fields["deal"].queryset = deals  # type: ignore[attr-defined]

    @staticmethod
    def initial_for(meeting: Meeting) -> dict[str, Any]:
        return {
            "title": meeting.title,
            "starts_at": timezone.localtime(meeting.starts_at),
            "ends_at": timezone.localtime(meeting.ends_at),
            "location": meeting.location,
            "organizer": meeting.organizer_id,
            "contacts": list(meeting.contacts.values_list("pk", flat=True)),
            "company": meeting.company_id,
            "deal": meeting.deal_id,
            "description": meeting.description,
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        starts, ends = data.get("starts_at"), data.get("ends_at")
        # By timestamp: times of one zone compare by their wall clocks.
        if starts and ends and ends.timestamp() <= starts.timestamp():
            self.add_error("ends_at", _("A meeting ends after it starts."))
        return data


class MeetingOutcomeForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Outcome"), choices=MeetingOutcome.choices)
    notes = forms.CharField(
        label=_("Notes"),
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
