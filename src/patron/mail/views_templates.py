"""Email template pages (Marketing > Email templates): list, new from a starter, edit in
the builder or the code view, duplicate, delete; and the editor component's endpoints
(preview, checks, plain text, contact picker), shared with every page that embeds it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import MARKETING_EDIT
from patron.core.signals import request_info
from patron.crm.models import Contact
from patron.mail import editor, starters, templates_service
from patron.mail.models import EmailTemplate, TemplateKind
from patron.mail.rendering import HTML, Problem, TemplateError, compile_template, html_to_text
from patron.mail.views import sandboxed_html

CONTACT_CHOICES = 20


def _templates(request: WorkspaceRequest) -> Any:
    return templates_service.templates_for(request.workspace)


@workspace_view(MARKETING_EDIT)
def template_list(request: WorkspaceRequest) -> HttpResponse:
    kind = request.GET.get("kind", TemplateKind.MARKETING)
    if kind not in TemplateKind.values:
        kind = TemplateKind.MARKETING
    rows = _templates(request).filter(kind=kind).select_related("created_by")
    return render(
        request,
        "mail/template_list.html",
        {"templates": rows, "kind": kind, "kinds": TemplateKind.choices},
    )


@workspace_view(MARKETING_EDIT)
def template_new(request: WorkspaceRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            template = templates_service.create_from_starter(
                request.workspace,
                user=request.user,
                key=request.POST.get("starter", ""),
                name=request.POST.get("name", ""),
                request_info=request_info(request),
            )
        except templates_service.TemplateInvalid as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("Template “%(name)s” created.") % {"name": template.name})
            return redirect("email_templates:edit", template_id=template.pk)
    return render(
        request,
        "mail/template_new.html",
        {
            "marketing": starters.for_kind(TemplateKind.MARKETING),
            "personal": starters.for_kind(TemplateKind.PERSONAL),
        },
    )


@workspace_view(MARKETING_EDIT)
def template_edit(request: WorkspaceRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(_templates(request), pk=template_id)
    errors: dict[str, str] = {}
    invalid_block = 0
    if request.method == "POST":
        values = editor.content_from_post(request.POST)
        values["name"] = request.POST.get("name", "")
        values["kind"] = request.POST.get("kind", template.kind)
        if request.POST.get("action") == "to_code":
            # The one-way switch: keep the generated MJML as the body, drop the design.
            values.pop("blocks", None)
            values.pop("body", None)
            try:
                values.update(
                    templates_service.clean_content(
                        request.workspace,
                        {"blocks": editor.content_from_post(request.POST).get("blocks")},
                    )
                )
            except templates_service.TemplateInvalid as error:
                errors, invalid_block = error.errors, error.block
            values["blocks"] = {}
        if not errors:
            try:
                templates_service.update_template(
                    template, user=request.user, values=values, request_info=request_info(request)
                )
            except templates_service.TemplateInvalid as error:
                errors, invalid_block = error.errors, error.block
            else:
                messages.success(request, _("Template “%(name)s” saved.") % {"name": template.name})
                return redirect("email_templates:edit", template_id=template.pk)
        # Show what was typed, with the errors.
        template = SimpleNamespace(**{**_fields(template), **values, "pk": template.pk})  # type: ignore[assignment]
        if "blocks" in values and not isinstance(values["blocks"], dict):
            template.blocks = {}
    return render(
        request,
        "mail/template_edit.html",
        {
            "template": template,
            "editor": editor.editor_context(
                request.workspace, template, errors=errors, invalid_block=invalid_block
            ),
            "errors": errors,
            "kinds": TemplateKind.choices,
            "test_form": _test_form(request),
        },
        status=422 if errors else 200,
    )


def _test_form(request: WorkspaceRequest, data: Any = None) -> Any:
    from patron.mail.views_campaigns import TestSendForm

    return TestSendForm(data, initial={"addresses": request.user.email})


@workspace_view(MARKETING_EDIT)
@require_POST
def template_test(request: WorkspaceRequest, template_id: int) -> HttpResponse:
    """Send the saved template, marked [Test], to a few addresses (the campaigns' test path)."""
    from patron.mail.views_campaigns import find_contact

    template = get_object_or_404(_templates(request), pk=template_id)
    form = _test_form(request, request.POST)
    back = reverse("email_templates:edit", args=[template.pk]) + "#test"
    if not form.is_valid():
        for field_errors in form.errors.values():
            for error in field_errors:
                messages.error(request, str(error))
        return redirect(back)
    contact = None
    wanted = form.cleaned_data["contact"].strip()
    if wanted:
        contact = find_contact(request.workspace, wanted)
        if contact is None:
            messages.error(request, _("No contact matches “%(query)s”.") % {"query": wanted})
            return redirect(back)
    try:
        sent = templates_service.send_test(
            template,
            user=request.user,
            addresses=form.address_list(),
            contact=contact,
            request_info=request_info(request),
        )
    except templates_service.TemplateInvalid as error:
        for message in error.errors.values():
            messages.error(request, message)
    else:
        messages.success(request, _("Test sent to %(addresses)s.") % {"addresses": ", ".join(sent)})
    return redirect(back)


def _fields(template: EmailTemplate) -> dict[str, Any]:
    return {
        name: getattr(template, name) for name in (*templates_service.TEMPLATE_FIELDS, "starter")
    }


@workspace_view(MARKETING_EDIT)
@require_POST
def template_duplicate(request: WorkspaceRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(_templates(request), pk=template_id)
    copy = templates_service.duplicate_template(
        template, user=request.user, request_info=request_info(request)
    )
    messages.success(request, _("Copied as “%(name)s”.") % {"name": copy.name})
    return redirect("email_templates:edit", template_id=copy.pk)


@workspace_view(MARKETING_EDIT)
def template_delete(request: WorkspaceRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(_templates(request), pk=template_id)
    if request.method == "POST":
        templates_service.delete_template(
            template, user=request.user, request_info=request_info(request)
        )
        messages.success(request, _("Template “%(name)s” deleted.") % {"name": template.name})
        return redirect(f"{_list_url()}?kind={template.kind}")
    return render(request, "mail/template_delete.html", {"template": template})


def _list_url() -> str:
    return reverse("email_templates:list")


# --- The editor component's endpoints ----------------------------------------------------------


def _posted_content(request: WorkspaceRequest) -> tuple[SimpleNamespace, Problem | None, int]:
    """The posted content as an object with the content fields, or the problem that
    stops it (a builder document that does not validate) and the block at fault."""
    values = editor.content_from_post(request.POST)
    content = SimpleNamespace(subject="", preheader="", text="", body="", format=HTML, blocks={})
    problem, block = None, 0
    try:
        cleaned = templates_service.clean_content(request.workspace, values)
    except templates_service.TemplateInvalid as error:
        field, message = next(iter(error.errors.items()))
        problem = Problem(field or "content", message, part=field or "body")
        block = error.block
        cleaned = {k: v for k, v in values.items() if k not in error.errors and k != "blocks"}
    for name, value in cleaned.items():
        setattr(content, name, value)
    return content, problem, block


def _preview_contact(request: WorkspaceRequest) -> Contact | None:
    value = request.POST.get("preview_contact") or request.GET.get("preview_contact") or ""
    if not value.isdigit():
        return None
    return (
        Contact.objects.for_workspace(request.workspace)
        .select_related("company", "owner")
        .filter(pk=int(value))
        .first()
    )


@xframe_options_sameorigin
@workspace_view(MARKETING_EDIT)
@require_POST
def preview(request: WorkspaceRequest) -> HttpResponse:
    """The rendered HTML for the sandboxed preview frame (posted into it by the editor)."""
    content, problem, _block = _posted_content(request)
    rendered = None
    if problem is None:
        rendered, problem = templates_service.render_preview(
            request.workspace, content, _preview_contact(request)
        )
    if rendered is not None:
        html = rendered.html
    else:
        html = render(request, "mail/_preview_problem.html", {"problem": problem}).content.decode()
    return sandboxed_html(html)


@workspace_view(MARKETING_EDIT)
@require_POST
def checks(request: WorkspaceRequest) -> HttpResponse:
    """The checks beside the editor, re-run as the design changes."""
    content, problem, invalid_block = _posted_content(request)
    problems = [problem] if problem else templates_service.check_content(request.workspace, content)
    rendered = None
    if problem is None:
        rendered, _problem = templates_service.render_preview(
            request.workspace, content, _preview_contact(request)
        )
    return render(
        request,
        "mail/_checks.html",
        {
            "problems": problems,
            "blocking": any(p.blocking for p in problems),
            "subject": rendered.subject if rendered else "",
            "size": len(rendered.html.encode()) if rendered else 0,
            "invalid_block": invalid_block,
        },
    )


@workspace_view(MARKETING_EDIT)
@require_POST
def plain_text(request: WorkspaceRequest) -> HttpResponse:
    """The plain-text part generated from the design, for the editor's text box."""
    content, problem, _block = _posted_content(request)
    text = request.POST.get("text", "")
    if problem is None:
        content.text = ""
        try:
            text = html_to_text(compile_template(templates_service.template_source(content)).html)
        except TemplateError as error:
            problem = error.problem  # the checks panel says the same; the box keeps its text
    return render(request, "mail/_plain_text.html", {"text": text, "generated": problem is None})


@workspace_view(MARKETING_EDIT)
@require_POST
def source(request: WorkspaceRequest) -> HttpResponse:
    """The MJML the server writes for the posted design (read-only, beside the builder)."""
    content, problem, _block = _posted_content(request)
    return render(request, "mail/_source.html", {"body": content.body, "problem": problem})


@workspace_view(MARKETING_EDIT)
def contact_options(request: WorkspaceRequest) -> HttpResponse:
    """Contacts to preview as: the ``<option>`` list of the picker, searched by name or email."""
    query = request.GET.get("q", "").strip()
    rows = Contact.objects.for_workspace(request.workspace)
    if query:
        rows = (
            rows.filter(first_name__icontains=query)
            | rows.filter(last_name__icontains=query)
            | rows.filter(email__icontains=query)
        )
    rows = rows.order_by("first_name", "last_name", "id")[:CONTACT_CHOICES]
    return render(request, "mail/_contact_options.html", {"contacts": rows, "query": query})
