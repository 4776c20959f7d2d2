"""Import pages (upload, mapping with preview, progress, rejected rows) and CSV export."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseBase, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.models import AuditAction
from patron.core.roles import CONTACTS_EDIT, DATA_EXPORT
from patron.core.services import record_audit
from patron.core.signals import request_info
from patron.crm import exporter, importer
from patron.crm.models import CustomFieldObject, ImportJob, ImportStatus

IMPORTABLE = [
    (CustomFieldObject.CONTACT, gettext_lazy("Contacts")),
    (CustomFieldObject.COMPANY, gettext_lazy("Companies")),
]


class UploadForm(forms.Form):
    object_type = forms.ChoiceField(label=gettext_lazy("Import into"), choices=IMPORTABLE)
    file = forms.FileField(
        label=gettext_lazy("CSV or Excel file"),
        help_text=gettext_lazy(
            "The first row names the columns. CSV: comma, semicolon or tab separated, UTF-8 "
            "or Windows encoding. Excel (.xlsx): the first sheet."
        ),
    )


class MappingForm(forms.Form):
    tags = forms.CharField(
        label=gettext_lazy("Tag every imported record with"),
        required=False,
        help_text=gettext_lazy("Separate tags with commas."),
    )
    update_existing = forms.BooleanField(
        label=gettext_lazy("Update records that already exist (same email or domain)"),
        required=False,
        initial=True,
    )

    subscribe_list: forms.ModelChoiceField = forms.ModelChoiceField(
        label=gettext_lazy("Subscribe the imported contacts to"),
        queryset=None,
        required=False,
        empty_label=gettext_lazy("— No list —"),
    )
    subscribe_confirmed = forms.BooleanField(
        label=gettext_lazy(
            "They confirmed already (double opt-in done elsewhere): do not send the "
            "confirmation email"
        ),
        required=False,
    )
    consent_text = forms.CharField(
        label=gettext_lazy("What they agreed to (consent text)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy(
            "Kept in each contact's consent history; needed to skip the confirmation."
        ),
    )

    def __init__(self, *args: Any, job: ImportJob, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from patron.audience.models import MailingList

        if job.object_type == CustomFieldObject.CONTACT:
            self.fields["subscribe_list"].queryset = MailingList.objects.for_workspace(  # type: ignore[attr-defined]
                job.workspace_id
            ).select_related("workspace")
        else:
            for name in ("subscribe_list", "subscribe_confirmed", "consent_text"):
                del self.fields[name]
        choices = [
            ("", _("— Do not import —")),
            *importer.targets(job.workspace_id, job.object_type).items(),
        ]
        self.columns = []
        for index, header in enumerate(job.headers):
            name = f"column_{index}"
            self.fields[name] = forms.ChoiceField(
                label=header or _("Column %(n)d") % {"n": index + 1},
                choices=choices,
                required=False,
                initial=job.mapping.get(str(index), ""),
            )
            self.columns.append(name)

    def mapping(self) -> dict[str, str]:
        return {
            name.removeprefix("column_"): self.cleaned_data.get(name, "") for name in self.columns
        }

    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data.get("tags", "").split(",") if t.strip()]


def _job(request: WorkspaceRequest, import_id: int) -> ImportJob:
    return get_object_or_404(ImportJob.objects.for_workspace(request.workspace), pk=import_id)


@workspace_view(CONTACTS_EDIT)
def import_list(request: WorkspaceRequest) -> HttpResponse:
    jobs = ImportJob.objects.for_workspace(request.workspace).select_related("created_by")[:50]
    return render(request, "crm/imports/list.html", {"jobs": jobs})


@workspace_view(CONTACTS_EDIT)
def import_upload(request: WorkspaceRequest) -> HttpResponse:
    initial = {"object_type": request.GET.get("type", CustomFieldObject.CONTACT)}
    form = UploadForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            job = importer.store_upload(
                workspace=request.workspace,
                object_type=form.cleaned_data["object_type"],
                upload=form.cleaned_data["file"],
                actor=request.user,
            )
        except importer.ImportInvalid as exc:
            form.add_error("file", str(exc))
        else:
            return redirect("crm:import_detail", import_id=job.pk)
    return render(request, "crm/imports/upload.html", {"form": form})


@workspace_view(CONTACTS_EDIT)
def import_detail(request: WorkspaceRequest, import_id: int) -> HttpResponse:
    job = _job(request, import_id)
    if job.status != ImportStatus.MAPPING:
        template = "crm/imports/_progress.html" if request.htmx else "crm/imports/detail.html"
        rejections = job.rejections.order_by("row_number")[:20]
        return render(request, template, {"job": job, "rejections": rejections})
    form = MappingForm(request.POST or None, job=job)
    rows: list[dict[str, Any]] = []
    if request.method == "POST" and form.is_valid():
        try:
            mapping = importer.check_mapping(job, form.mapping())
            if "start" in request.POST:
                importer.start_import(
                    job=job,
                    mapping=mapping,
                    tags=form.tag_list(),
                    update_existing=form.cleaned_data["update_existing"],
                    actor=request.user,
                    subscribe_list=form.cleaned_data.get("subscribe_list"),
                    subscribe_confirmed=form.cleaned_data.get("subscribe_confirmed", False),
                    consent_text=form.cleaned_data.get("consent_text", ""),
                )
                return redirect("crm:import_detail", import_id=job.pk)
            rows = importer.preview(job, mapping)
        except importer.ImportInvalid as exc:
            form.add_error(None, str(exc))
    elif request.method != "POST":
        try:
            rows = importer.preview(job, importer.check_mapping(job, job.mapping))
        except importer.ImportInvalid:
            rows = []
    return render(request, "crm/imports/mapping.html", {"job": job, "form": form, "rows": rows})


@workspace_view(CONTACTS_EDIT)
def import_rejections(request: WorkspaceRequest, import_id: int) -> StreamingHttpResponse:
    job = _job(request, import_id)
    response = StreamingHttpResponse(
        exporter.csv_lines(importer.rejection_rows(job)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="rejected-rows-{job.pk}.csv"'
    return response


@workspace_view(CONTACTS_EDIT)
@require_POST
def import_cancel(request: WorkspaceRequest, import_id: int) -> HttpResponse:
    job = _job(request, import_id)
    if job.status == ImportStatus.MAPPING:
        job.delete()
        messages.info(request, _("Import discarded."))
    return redirect("crm:import_list")


def export_csv(
    request: WorkspaceRequest, kind: str, rows: Any, count: int
) -> StreamingHttpResponse:
    """The rows as a CSV download, audited with what chose them: the list's filters (a
    bulk export posts them as ``query_string``) and, for ticked rows, their ids."""
    if request.method == "POST":
        filters = QueryDict(request.POST.get("query_string", "")).dict()
        ticked = request.POST.getlist("ids") if request.POST.get("scope") != "all" else []
        chosen: dict[str, Any] = {"filters": filters, "ids": ticked[:1000]}
    else:
        chosen = {"filters": request.GET.dict()}
    record_audit(
        action=AuditAction.DATA_EXPORTED,
        workspace=request.workspace,
        actor=request.user,
        target=kind,
        request_info=request_info(request),
        data={**chosen, "rows": count},
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(
        exporter.csv_lines(rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{kind}-{stamp}.csv"'
    return response


@workspace_view(DATA_EXPORT)
def contact_export(request: WorkspaceRequest) -> StreamingHttpResponse:
    """The contacts of the list as filtered and sorted on screen."""
    from patron.crm.list_views import contact_query

    contacts, _context = contact_query(request)
    return export_contacts(request, contacts)


def export_contacts(request: WorkspaceRequest, contacts: Any) -> StreamingHttpResponse:
    return export_csv(
        request,
        "contacts",
        exporter.contact_rows(contacts, request.workspace.pk),
        contacts.count(),
    )


@workspace_view(DATA_EXPORT)
def company_export(request: WorkspaceRequest) -> StreamingHttpResponse:
    """The companies of the list as filtered and sorted on screen."""
    from patron.crm.list_views import company_query

    companies, _context = company_query(request)
    return export_companies(request, companies)


def export_companies(request: WorkspaceRequest, companies: Any) -> StreamingHttpResponse:
    return export_csv(
        request,
        "companies",
        exporter.company_rows(companies, request.workspace.pk),
        companies.count(),
    )


@workspace_view(DATA_EXPORT)
def deal_export(request: WorkspaceRequest) -> HttpResponseBase:
    """The deals of the list as filtered on screen."""
    from patron.core.roles import DEALS_VIEW
    from patron.crm.list_views import deal_query

    if not request.membership.can(DEALS_VIEW):
        raise PermissionDenied
    deals, _context = deal_query(request)
    return export_csv(
        request, "deals", exporter.deal_rows(deals, request.workspace.pk), deals.count()
    )
