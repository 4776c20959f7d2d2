"""Marketing → Forms: the list, the builder, publishing, and the submissions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db.models import Count
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from patron.audience.models import MailingList
from patron.capture import services
from patron.capture.models import DownloadFile, FollowUp, Form
from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.models import User
from patron.core.paging import SeekPage
from patron.core.roles import DATA_EXPORT, MARKETING_EDIT
from patron.crm.models import Stage, TicketPriority
from patron.crm.services import key_from_label

PAGE_SIZE = 50


class SettingsForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    title = forms.CharField(
        label=gettext_lazy("Heading"),
        max_length=200,
        required=False,
        help_text=gettext_lazy("Shown above the form on its hosted page and in the snippet."),
    )
    submit_label = forms.CharField(label=gettext_lazy("Button text"), max_length=60)
    consent_text = forms.CharField(
        label=gettext_lazy("Consent text"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy(
            "Shown next to a checkbox and recorded with each subscription. Needed to subscribe "
            "people to lists."
        ),
    )
    consent_required = forms.BooleanField(
        label=gettext_lazy("The box must be ticked to send the form"), required=False
    )
    lists = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Subscribe to lists"),
        queryset=MailingList.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "Only people who tick the consent box are subscribed. On a double opt-in list they "
            "get the confirmation email and stay pending until they confirm."
        ),
    )
    tags = forms.CharField(
        label=gettext_lazy("Tags to apply"),
        required=False,
        help_text=gettext_lazy("Separated by commas."),
    )
    success_message = forms.CharField(
        label=gettext_lazy("Message after sending"), widget=forms.Textarea(attrs={"rows": 2})
    )
    redirect_url = forms.URLField(
        label=gettext_lazy("Or redirect to"),
        required=False,
        max_length=2000,
        assume_scheme="https",
        help_text=gettext_lazy("A page people are sent to after the form, instead of the message."),
    )
    notify_user = forms.ModelChoiceField(
        label=gettext_lazy("Notify"),
        queryset=User.objects.none(),
        required=False,
        empty_label=gettext_lazy("Nobody"),
        help_text=gettext_lazy("This member gets a notification for each submission."),
    )
    download_file = forms.ModelChoiceField(
        label=gettext_lazy("Deliver a file"),
        queryset=DownloadFile.objects.none(),
        required=False,
        empty_label=gettext_lazy("No file"),
        help_text=gettext_lazy(
            "The thank-you answer gives a personal download link to a file of the Downloads "
            "library (gated content)."
        ),
    )
    download_days = forms.IntegerField(
        label=gettext_lazy("The download link works for (days)"),
        min_value=1,
        max_value=365,
        required=False,
        help_text=gettext_lazy("Empty: 7 days."),
    )
    email_download = forms.BooleanField(
        label=gettext_lazy("Also email the download link"), required=False
    )
    follow_up = forms.ChoiceField(
        label=gettext_lazy("Also"),
        choices=FollowUp.choices,
        required=False,
        help_text=gettext_lazy("Open a deal or a ticket for the person who sent the form."),
    )
    deal_stage = forms.ModelChoiceField(
        label=gettext_lazy("Deal pipeline and stage"),
        queryset=Stage.objects.none(),
        required=False,
        empty_label=gettext_lazy("The first stage of the first pipeline"),
    )
    ticket_priority = forms.ChoiceField(
        label=gettext_lazy("Ticket priority"), choices=TicketPriority.choices, required=False
    )
    allowed_origins = forms.CharField(
        label=gettext_lazy("Sites that may embed the form"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy(
            "One address per line, like https://www.example.com. The hosted page always works."
        ),
    )

    def __init__(self, *args: Any, workspace: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lists"].queryset = MailingList.objects.for_workspace(workspace)  # type: ignore[attr-defined]
        self.fields["notify_user"].queryset = User.objects.filter(  # type: ignore[attr-defined]
            memberships__workspace=workspace, memberships__is_active=True
        ).order_by("name", "email")
        self.fields["download_file"].queryset = DownloadFile.objects.for_workspace(workspace)  # type: ignore[attr-defined]
        stages = self.fields["deal_stage"]
        stages.queryset = (  # type: ignore[attr-defined]
            Stage.objects.for_workspace(workspace)
            .select_related("pipeline")
            .order_by("pipeline__position", "pipeline_id", "position")
        )
        stages.label_from_instance = lambda stage: f"{stage.pipeline.name} → {stage.name}"  # type: ignore[attr-defined]


class FieldRow(forms.Form):
    label = forms.CharField(label=gettext_lazy("Label"), max_length=200, required=False)
    key = forms.CharField(label=gettext_lazy("Key"), max_length=50, required=False)
    maps_to = forms.ChoiceField(label=gettext_lazy("Saved to"), required=False)
    required = forms.BooleanField(label=gettext_lazy("Required"), required=False)
    hidden = forms.BooleanField(label=gettext_lazy("Hidden"), required=False)
    placeholder = forms.CharField(label=gettext_lazy("Placeholder"), max_length=200, required=False)
    default = forms.CharField(label=gettext_lazy("Default value"), max_length=2000, required=False)
    source = forms.CharField(
        label=gettext_lazy("From URL parameter"), max_length=50, required=False
    )

    def __init__(self, *args: Any, choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["maps_to"].choices = choices  # type: ignore[attr-defined]


FieldFormSet = forms.formset_factory(FieldRow, extra=1, can_delete=True, can_order=True)

STARTER_FIELDS: list[dict[str, Any]] = [
    {"label": "Email", "key": "email", "maps_to": "contact.email", "required": True},
    {"label": "First name", "key": "first_name", "maps_to": "contact.first_name"},
]


def _form(request: WorkspaceRequest, form_id: int) -> Form:
    return get_object_or_404(
        Form.objects.for_workspace(request.workspace).select_related("workspace"), pk=form_id
    )


@workspace_view(MARKETING_EDIT)
def form_list(request: WorkspaceRequest) -> HttpResponse:
    rows = Form.objects.for_workspace(request.workspace).annotate(count=Count("submissions"))
    return render(request, "capture/form_list.html", {"rows": rows})


@workspace_view(MARKETING_EDIT)
def form_new(request: WorkspaceRequest) -> HttpResponse:
    return _builder(request, None)


@workspace_view(MARKETING_EDIT)
def form_edit(request: WorkspaceRequest, form_id: int) -> HttpResponse:
    return _builder(request, _form(request, form_id))


def _rows(formset: Any) -> list[dict[str, Any]]:
    """The builder's rows in their chosen order, without blank and removed ones."""
    kept = []
    for index, row in enumerate(formset.forms):
        data = row.cleaned_data
        if not data or data.get("DELETE"):
            continue
        if not (data.get("label") or data.get("key")):
            continue
        order = data.get("ORDER")
        kept.append((order if order is not None else 10_000, index, data))
    kept.sort(key=lambda item: (item[0], item[1]))
    rows = []
    for _order, _index, data in kept:
        key = data["key"] or key_from_label(data["label"])
        rows.append({**{k: v for k, v in data.items() if k not in {"ORDER", "DELETE"}}, "key": key})
    return rows


def _builder(request: WorkspaceRequest, form: Form | None) -> HttpResponse:
    workspace = request.workspace
    choices = [(target.value, target.label) for target in services.targets(workspace)]
    if form is None:
        initial: dict[str, Any] = {
            "submit_label": _("Send"),
            "success_message": _("Thank you! We received your message."),
            "consent_required": True,
            "download_days": 7,
            "ticket_priority": TicketPriority.NORMAL,
        }
        rows: list[dict[str, Any]] = STARTER_FIELDS
    else:
        initial = {
            "name": form.name,
            "title": form.title,
            "submit_label": form.submit_label,
            "consent_text": form.consent_text,
            "consent_required": form.consent_required,
            "lists": list(form.lists.all()),
            "tags": ", ".join(form.tags),
            "success_message": form.success_message,
            "redirect_url": form.redirect_url,
            "notify_user": form.notify_user,
            "allowed_origins": "\n".join(form.allowed_origins),
            "download_file": form.download_file,
            "download_days": form.download_days,
            "email_download": form.email_download,
            "follow_up": form.follow_up,
            "deal_stage": form.deal_stage,
            "ticket_priority": form.ticket_priority,
        }
        rows = form.fields
    data = request.POST if request.method == "POST" else None
    settings_form = SettingsForm(data, initial=initial, workspace=workspace)
    formset = FieldFormSet(
        data,
        # Bound, every row is compared with a blank one, so unchanged rows are kept too.
        initial=None
        if data is not None
        else [{**row, "ORDER": position + 1} for position, row in enumerate(rows)],
        prefix="fields",
        form_kwargs={"choices": choices},
    )
    field_errors: dict[str, str] = {}
    if request.method == "POST" and settings_form.is_valid() and formset.is_valid():
        values = dict(settings_form.cleaned_data)
        values["tags"] = [tag for tag in values["tags"].split(",") if tag.strip()]
        values["allowed_origins"] = values["allowed_origins"].splitlines()
        values["fields"] = _rows(formset)
        values["download_days"] = values["download_days"] or 7
        try:
            if form is None:
                form = services.create_form(workspace=workspace, created_by=request.user, **values)
                messages.success(request, _("Form “%(name)s” created.") % {"name": form.name})
            else:
                services.update_form(form=form, actor=request.user, **values)
                messages.success(request, _("Form “%(name)s” saved.") % {"name": form.name})
        except services.FormInvalid as exc:
            for key, message in exc.errors.items():
                if key in settings_form.fields:
                    settings_form.add_error(key, message)
                else:
                    field_errors[key] = message
        else:
            return redirect("capture:form_edit", form_id=form.pk)
    failed = request.method == "POST"
    return render(
        request,
        "capture/form_edit.html",
        {
            "form_obj": form,
            "settings_form": settings_form,
            "formset": formset,
            "field_errors": field_errors,
            "field_error_list": list(field_errors.values()),
            "tab": "build",
        },
        status=400 if failed else 200,
    )


@workspace_view(MARKETING_EDIT)
@require_POST
def form_delete(request: WorkspaceRequest, form_id: int) -> HttpResponse:
    form = _form(request, form_id)
    name = form.name
    services.delete_form(form=form, actor=request.user)
    messages.success(request, _("Form “%(name)s” deleted.") % {"name": name})
    return redirect("capture:form_list")


@workspace_view(MARKETING_EDIT)
def form_publish(request: WorkspaceRequest, form_id: int) -> HttpResponse:
    """The three ways to publish: the hosted page, the snippet and plain HTML."""
    form = _form(request, form_id)
    base = settings.BASE_URL
    hosted_url = base + reverse("capture_public:hosted", args=[form.key])
    snippet = render_to_string(
        "capture/snippet.txt",
        {"form": form, "base": base, "script": base + settings.STATIC_URL + "patron/forms.js"},
    ).strip()
    from patron.capture.views_public import _page_fields

    plain_html = render_to_string(
        "capture/plain.html",
        {
            "form": form,
            "action": hosted_url,
            "fields": _page_fields(form, services.initial_values(form, {}), {}),
            "honeypot": services.HONEYPOT,
        },
    ).strip()
    return render(
        request,
        "capture/form_publish.html",
        {
            "form_obj": form,
            "hosted_url": hosted_url,
            "snippet": snippet,
            "plain_html": plain_html,
            "api_url": base + reverse("capture_api_submit", args=[form.key]),
            "embed_url": base + reverse("capture_public:embed", args=[form.key]),
            "tab": "publish",
        },
    )


@workspace_view(MARKETING_EDIT)
def form_submissions(request: WorkspaceRequest, form_id: int) -> HttpResponse:
    form = _form(request, form_id)
    page = SeekPage(services.submissions(form), request.GET.get("page"), PAGE_SIZE)
    columns = [(spec["key"], spec["label"]) for spec in form.fields]
    rows = [
        (submission, [submission.values.get(key, "") for key, _label in columns])
        for submission in page
    ]
    return render(
        request,
        "capture/form_submissions.html",
        {
            "form_obj": form,
            "page_obj": page,
            "rows": rows,
            "columns": columns,
            "can_export": request.membership.can(DATA_EXPORT),
            "tab": "submissions",
        },
    )


@workspace_view(DATA_EXPORT)
def form_submissions_export(request: WorkspaceRequest, form_id: int) -> StreamingHttpResponse:
    """Every submission of the form as CSV (cells that look like formulas neutralised)."""
    from patron.crm.views_imports import export_csv

    form = _form(request, form_id)
    if not request.membership.can(MARKETING_EDIT):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied
    rows = services.submissions(form)
    keys = [spec["key"] for spec in form.fields]

    def lines() -> Any:
        yield [
            "submitted_at",
            "contact_id",
            "contact_email",
            *keys,
            "consent_given",
            "page_url",
            "ip_address",
        ]
        for submission in rows.iterator(chunk_size=2000):
            values = submission.values
            yield [
                submission.submitted_at.isoformat(),
                submission.contact_id or "",
                submission.contact.email if submission.contact else "",
                *[_cell(values.get(key, "")) for key in keys],
                "yes" if submission.consent_given else "no",
                submission.page_url,
                submission.ip_address or "",
            ]

    return export_csv(request, f"form-{form.pk}-submissions", lines(), rows.count())


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value
