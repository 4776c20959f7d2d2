"""The suppression pages: the list (search, reason filter, add, remove), import and export.

The list filters as one types (htmx swaps the rows in place and keeps the URL
in step); without JavaScript the same form submits the page. Removing an
address goes through a confirmation page, so it works without JavaScript too.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from patron.audience import suppression
from patron.audience.models import Suppression, SuppressionReason
from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.models import AuditAction
from patron.core.paging import SeekPage
from patron.core.roles import CONTACTS_VIEW, DATA_EXPORT, MARKETING_EDIT
from patron.core.services import record_audit, set_suppress_role_addresses
from patron.core.signals import request_info
from patron.crm import exporter

PAGE_SIZE = 50
REPORT_PREVIEW = 50


class AddForm(forms.Form):
    addresses = forms.CharField(
        label=gettext_lazy("Addresses"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy(
            "One address, or many: one a line, or separated by commas or semicolons."
        ),
    )
    reason = forms.ChoiceField(
        label=gettext_lazy("Reason"),
        choices=SuppressionReason.choices,
        initial=SuppressionReason.MANUAL,
    )
    note = forms.CharField(
        label=gettext_lazy("Note"), max_length=suppression.NOTE_LIMIT, required=False
    )


class ImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy(
            "Columns: email, and optionally reason and note; the first row names them. "
            "Comma, semicolon or tab separated; at most 5 MB and 50,000 rows."
        ),
    )
    reason = forms.ChoiceField(
        label=gettext_lazy("Reason for rows without one"),
        choices=SuppressionReason.choices,
        initial=SuppressionReason.MANUAL,
    )


def _filters(request: WorkspaceRequest) -> tuple[str, str]:
    reason = request.GET.get("reason", "")
    if reason not in SuppressionReason.values:
        reason = ""
    return request.GET.get("q", "").strip()[:254], reason


def _list_context(request: WorkspaceRequest) -> dict[str, Any]:
    search, reason = _filters(request)
    page = SeekPage(
        suppression.suppressions(request.workspace, search=search, reason=reason),
        request.GET.get("page"),
        PAGE_SIZE,
    )
    params = {key: value for key, value in (("q", search), ("reason", reason)) if value}
    return {
        "page_obj": page,
        "query": search,
        "reason": reason,
        "reasons": SuppressionReason.choices,
        "query_string": urlencode(params),
        "filtered": bool(params),
        "can_edit": request.membership.can(MARKETING_EDIT),
    }


def _list_page(
    request: WorkspaceRequest, form: AddForm | None = None, status: int = 200
) -> HttpResponse:
    if request.htmx and request.htmx.target == "suppression-rows":
        return render(request, "audience/suppression_rows.html", _list_context(request))
    context = {
        **_list_context(request),
        "form": form or AddForm(),
        "can_export": request.membership.can(DATA_EXPORT),
        "role_local_parts": sorted(suppression.ROLE_LOCAL_PARTS),
    }
    return render(request, "audience/suppression_list.html", context, status=status)


@workspace_view(CONTACTS_VIEW)
def suppression_list(request: WorkspaceRequest) -> HttpResponse:
    return _list_page(request)


@workspace_view(MARKETING_EDIT)
@require_POST
def suppression_add(request: WorkspaceRequest) -> HttpResponse:
    form = AddForm(request.POST)
    if not form.is_valid():
        return _list_page(request, form, status=400)
    parts = suppression.split_addresses(form.cleaned_data["addresses"])
    if len(parts) > suppression.MAX_ADDRESSES:
        form.add_error(
            "addresses",
            _("Add at most %(limit)d addresses at once; import a CSV file for more.")
            % {"limit": suppression.MAX_ADDRESSES},
        )
        return _list_page(request, form, status=400)
    valid, invalid = suppression.parse_addresses(parts)
    if not valid and not invalid:
        form.add_error("addresses", _("Enter at least one email address."))
        return _list_page(request, form, status=400)
    result = suppression.suppress_addresses(
        workspace=request.workspace,
        emails=valid,
        reason=form.cleaned_data["reason"],
        note=form.cleaned_data["note"],
        actor=request.user,
        request_info=request_info(request),
    )
    if result.added:
        messages.success(
            request,
            ngettext(
                "%(count)d address suppressed.",
                "%(count)d addresses suppressed.",
                len(result.added),
            )
            % {"count": len(result.added)},
        )
    if result.already:
        messages.info(
            request,
            ngettext(
                "%(count)d address was suppressed already and keeps its reason.",
                "%(count)d addresses were suppressed already and keep their reasons.",
                len(result.already),
            )
            % {"count": len(result.already)},
        )
    if invalid:
        # Keep what was not added in the box, with what is wrong, to be corrected.
        form = AddForm(
            {
                "addresses": "\n".join(value for value, _message in invalid),
                "reason": form.cleaned_data["reason"],
                "note": form.cleaned_data["note"],
            }
        )
        form.is_valid()
        form.add_error("addresses", [message for _value, message in invalid])
        return _list_page(request, form, status=400 if not valid else 200)
    return redirect("audience:suppression_list")


@workspace_view(MARKETING_EDIT)
def suppression_remove(request: WorkspaceRequest, suppression_id: int) -> HttpResponse:
    row = get_object_or_404(
        Suppression.objects.for_workspace(request.workspace).select_related("created_by"),
        pk=suppression_id,
    )
    if request.method != "POST":
        return render(
            request,
            "audience/suppression_remove.html",
            {
                "row": row,
                "role_rule": request.workspace.suppress_role_addresses
                and suppression.is_role_address(row.email),
            },
        )
    suppression.unsuppress(
        workspace=request.workspace,
        ids=[row.pk],
        actor=request.user,
        request_info=request_info(request),
    )
    messages.success(request, _("%(email)s is no longer suppressed.") % {"email": row.email})
    return redirect("audience:suppression_list")


@workspace_view(MARKETING_EDIT)
@require_POST
def suppression_role_setting(request: WorkspaceRequest) -> HttpResponse:
    enabled = request.POST.get("suppress_role_addresses") == "on"
    set_suppress_role_addresses(workspace=request.workspace, enabled=enabled, actor=request.user)
    messages.success(
        request,
        _("Role addresses are now treated as suppressed.")
        if enabled
        else _("Role addresses are mailed like any other address."),
    )
    return redirect("audience:suppression_list")


@workspace_view(MARKETING_EDIT)
def suppression_import(request: WorkspaceRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    context: dict[str, Any] = {"form": form}
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload.size > suppression.MAX_IMPORT_BYTES:
                raise suppression.ImportInvalid(
                    _("The file is larger than %(size)d MB; split it into smaller files.")
                    % {"size": suppression.MAX_IMPORT_BYTES >> 20}
                )
            report = suppression.import_csv(
                workspace=request.workspace,
                data=upload.read(),
                default_reason=form.cleaned_data["reason"],
                actor=request.user,
                file_name=upload.name or "",
                request_info=request_info(request),
            )
        except (suppression.ImportInvalid, suppression.SuppressionInvalid) as exc:
            form.add_error("file", str(exc))
        else:
            context.update(
                {
                    "report": report,
                    "file_name": upload.name,
                    "rejected_preview": report.rejected[:REPORT_PREVIEW],
                    "report_token": suppression.report_token(request.workspace, report)
                    if report.rejected
                    else "",
                    "form": ImportForm(initial={"reason": form.cleaned_data["reason"]}),
                }
            )
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "audience/suppression_import.html", context, status=status)


@workspace_view(MARKETING_EDIT)
@require_POST
def suppression_import_report(request: WorkspaceRequest) -> HttpResponseBase:
    """The rejected rows of an import as CSV (the report travels signed in the form)."""
    rows = suppression.report_rows(request.workspace, request.POST.get("report", ""))
    if rows is None:
        return HttpResponse(_("This report is not valid here."), status=400)
    response = StreamingHttpResponse(
        exporter.csv_lines(rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="suppression-import-report.csv"'
    return response


@workspace_view(DATA_EXPORT)
def suppression_export(request: WorkspaceRequest) -> StreamingHttpResponse:
    """The list as filtered on screen, with spreadsheet formulas neutralised; audited."""
    search, reason = _filters(request)
    rows = suppression.suppressions(request.workspace, search=search, reason=reason)
    record_audit(
        action=AuditAction.DATA_EXPORTED,
        workspace=request.workspace,
        actor=request.user,
        target="suppressions",
        request_info=request_info(request),
        data={"filters": {"q": search, "reason": reason}, "rows": rows.count()},
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(
        exporter.csv_lines(suppression.export_rows(rows)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="suppressions-{stamp}.csv"'
    return response
