"""Automation → Workflows: the list with templates, the builder, test mode, enrolments.

The builder is one page: the flow on the left, a side panel on the right
holding whatever is being edited (a step, the trigger, a test run). The panel
is chosen by query parameters (``?add_after=<step>``, ``?edit=<step>``,
``?trigger=1``), so every link works without JavaScript; with htmx the panel
alone is fetched and swapped (``hx-select``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from patron.automation import workflow_forms, workflows
from patron.automation import workflow_schema as schema
from patron.automation.models import Enrolment, EnrolmentStatus, Workflow, WorkflowStatus
from patron.automation.workflow_templates import TEMPLATES, install_template
from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import MARKETING_EDIT
from patron.crm.models import Contact

PAGE_SIZE = 100


class NewWorkflowForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=150)


class TestForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Contact's email address"))


def _workflow(request: WorkspaceRequest, workflow_id: int) -> Workflow:
    return get_object_or_404(
        Workflow.objects.for_workspace(request.workspace).select_related("published", "workspace"),
        pk=workflow_id,
    )


@workspace_view(MARKETING_EDIT)
def workflow_list(request: WorkspaceRequest) -> HttpResponse:
    rows = (
        Workflow.objects.for_workspace(request.workspace)
        .select_related("published")
        .annotate(
            enrolled=Count("enrolments"),
            active=Count("enrolments", filter=Q(enrolments__status=EnrolmentStatus.ACTIVE)),
            goal=Count("enrolments", filter=Q(enrolments__status=EnrolmentStatus.GOAL)),
        )
    )
    return render(
        request,
        "automation/workflows/list.html",
        {"rows": rows, "templates": TEMPLATES.values(), "new_form": NewWorkflowForm()},
    )


@require_POST
@workspace_view(MARKETING_EDIT)
def workflow_new(request: WorkspaceRequest) -> HttpResponse:
    form = NewWorkflowForm(request.POST)
    if form.is_valid():
        try:
            workflow = workflows.create_workflow(
                workspace=request.workspace, name=form.cleaned_data["name"], actor=request.user
            )
        except workflows.WorkflowInvalid as error:
            messages.error(request, str(error))
            return redirect("workflows:list")
        return redirect(reverse("workflows:builder", args=[workflow.pk]) + "?trigger=1")
    messages.error(request, _("Give the workflow a name."))
    return redirect("workflows:list")


@require_POST
@workspace_view(MARKETING_EDIT)
def workflow_install(request: WorkspaceRequest) -> HttpResponse:
    try:
        workflow = install_template(
            workspace=request.workspace, key=request.POST.get("template", ""), actor=request.user
        )
    except workflows.WorkflowInvalid as error:
        messages.error(request, str(error))
        return redirect("workflows:list")
    messages.success(
        request,
        _("“%(name)s” is installed as a draft with its emails. Review it, then publish.")
        % {"name": workflow.name},
    )
    return redirect("workflows:builder", workflow.pk)


def _panel_url(workflow: Workflow, **params: str) -> str:
    return reverse("workflows:builder", args=[workflow.pk]) + (
        "?" + urlencode(params) if params else ""
    )


@workspace_view(MARKETING_EDIT)
def workflow_builder(request: WorkspaceRequest, workflow_id: int) -> HttpResponse:
    workflow = _workflow(request, workflow_id)
    workspace = request.workspace
    params = request.GET
    panel: dict[str, Any] = {"kind": "help"}
    steps = schema.step_index(workflow.draft["steps"])
    if params.get("trigger"):
        panel = _trigger_panel(request, workflow)
        if isinstance(panel, HttpResponse):
            return panel
    elif params.get("edit") or params.get("add_after") is not None or params.get("branch_of"):
        panel = _step_panel(request, workflow, steps)
        if isinstance(panel, HttpResponse):
            return panel
    elif params.get("test"):
        panel = {"kind": "test", "form": TestForm()}
    stats = workflows.step_stats(workflow) if workflow.published else {}
    return render(
        request,
        "automation/workflows/builder.html",
        {
            "workflow": workflow,
            "flow": _flow(workspace, workflow.draft["steps"], stats),
            "trigger_text": _trigger_text(workflow),
            "panel": panel,
            "totals": workflows.workflow_stats(workflow),
            "changed": workflow.has_unpublished_changes,
        },
    )


def _step_panel(request: WorkspaceRequest, workflow: Workflow, steps: dict[str, Any]) -> Any:
    params = request.GET
    editing = steps.get(params.get("edit", ""))
    if params.get("edit") and editing is None:
        messages.error(request, _("That step is no longer in the workflow."))
        return redirect("workflows:builder", workflow.pk)
    step_type = params.get("type") or (editing["type"] if editing else "")
    if step_type and step_type not in schema.STEP_TYPES:
        step_type = ""
    data = request.POST if request.method == "POST" else None
    initial = (
        workflow_forms.step_initial(editing)
        if editing
        else {"step_type": step_type, **workflows.default_settings(step_type)}
    )
    if step_type:
        initial["step_type"] = step_type
    form = workflow_forms.StepForm(
        data,
        initial=initial,
        workspace=request.workspace,
        exclude_workflow=workflow.pk,
        current=editing,
    )
    error = ""
    if data is not None and form.is_valid():
        values = form.step_values()
        try:
            if editing:
                saved = workflows.update_step(
                    workflow=workflow, step_id=editing["id"], values=values
                )
            else:
                if values["type"] in schema.BRANCHES:
                    values.update({b: [] for b in schema.BRANCHES[values["type"]]})
                saved = workflows.add_step(
                    workflow=workflow,
                    step=values,
                    after=params.get("add_after", ""),
                    branch_of=params.get("branch_of", ""),
                    branch=params.get("branch", ""),
                )
        except workflows.WorkflowInvalid as invalid:
            error = str(invalid)
        else:
            messages.success(
                request,
                _("Step saved: %(what)s")
                % {"what": workflows.describe_step(request.workspace, saved)},
            )
            return redirect(
                reverse("workflows:builder", args=[workflow.pk]) + f"#step-{saved['id']}"
            )
    elif data is not None:
        error = _("Check the values below.")
    return {
        "kind": "step",
        "form": form,
        "step_type": step_type,
        "step_label": schema.STEP_TYPES.get(step_type, ""),
        "fields": form.fields_for(step_type) if step_type else [],
        "editing": editing,
        "error": error,
        "types": [
            (
                key,
                label,
                _panel_url(
                    workflow,
                    **{**{k: str(v) for k, v in params.items() if k != "type"}, "type": key},
                ),
            )
            for key, label in schema.STEP_TYPES.items()
        ],
        "action": request.get_full_path(),
    }


def _trigger_panel(request: WorkspaceRequest, workflow: Workflow) -> Any:
    graph = workflow.draft
    trigger_type = request.GET.get("type") or graph["trigger"]["type"]
    if trigger_type not in schema.TRIGGER_TYPES:
        trigger_type = "manual"
    data = request.POST if request.method == "POST" else None
    initial = workflow_forms.trigger_initial(graph)
    initial["trigger_type"] = trigger_type
    form = workflow_forms.TriggerForm(
        data,
        initial=initial,
        workspace=request.workspace,
        current_goal=graph["settings"].get("goal"),
    )
    error = ""
    if data is not None and form.is_valid():
        trigger, settings = form.graph_parts(request.workspace)
        try:
            workflows.set_trigger(workflow=workflow, trigger=trigger, settings=settings)
        except workflows.WorkflowInvalid as invalid:
            error = str(invalid)
        else:
            messages.success(request, _("Trigger and enrolment settings saved."))
            return redirect("workflows:builder", workflow.pk)
    elif data is not None:
        error = _("Check the values below.")
    return {
        "kind": "trigger",
        "form": form,
        "trigger_type": trigger_type,
        "fields": form.fields_for(trigger_type),
        "error": error,
        "types": [
            (key, label, _panel_url(workflow, trigger="1", type=key))
            for key, label in schema.TRIGGER_TYPES.items()
        ],
        "action": request.get_full_path(),
    }


def _trigger_text(workflow: Workflow) -> str:
    return workflows.describe_trigger(workflow.workspace, workflow.draft["trigger"])


def _flow(
    workspace: Any, steps: list[dict[str, Any]], stats: dict[str, Any]
) -> list[dict[str, Any]]:
    """The steps as the template draws them: text, stats, branches."""
    drawn = []
    for step in steps:
        item: dict[str, Any] = {
            "step": step,
            "label": schema.step_label(step),
            "text": workflows.describe_step(workspace, step),
            "stats": stats.get(step["id"]),
            "branches": [],
        }
        for branch in schema.BRANCHES.get(step["type"], ()):
            names = {"yes": _("Yes"), "no": _("No"), "a": _("Path A"), "b": _("Path B")}
            item["branches"].append(
                {
                    "key": branch,
                    "label": names[branch],
                    "steps": _flow(workspace, step.get(branch) or [], stats),
                }
            )
        drawn.append(item)
    return drawn


@require_POST
@workspace_view(MARKETING_EDIT)
def workflow_step_delete(request: WorkspaceRequest, workflow_id: int) -> HttpResponse:
    workflow = _workflow(request, workflow_id)
    try:
        workflows.delete_step(workflow=workflow, step_id=request.POST.get("step", ""))
    except workflows.WorkflowInvalid as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Step removed (publish to apply it to new contacts)."))
    return redirect("workflows:builder", workflow.pk)


@require_POST
@workspace_view(MARKETING_EDIT)
def workflow_publish(request: WorkspaceRequest, workflow_id: int) -> HttpResponse:
    workflow = _workflow(request, workflow_id)
    try:
        version = workflows.publish_workflow(workflow=workflow, actor=request.user)
    except workflows.WorkflowInvalid as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _(
                "Version %(number)s published. Contacts already inside finish on the version "
                "they entered."
            )
            % {"number": version.number},
        )
    return redirect("workflows:builder", workflow.pk)


@require_POST
@workspace_view(MARKETING_EDIT)
def workflow_pause(request: WorkspaceRequest, workflow_id: int) -> HttpResponse:
    workflow = _workflow(request, workflow_id)
    try:
        if workflow.status == WorkflowStatus.PAUSED:
            workflows.resume_workflow(workflow=workflow, actor=request.user)
            messages.success(request, _("Resumed: waits that ended meanwhile run now."))
        else:
            workflows.pause_workflow(workflow=workflow, actor=request.user)
            messages.success(request, _("Paused: no step runs and nobody enters until you resume."))
    except workflows.WorkflowInvalid as error:
        messages.error(request, str(error))
    return redirect("workflows:builder", workflow.pk)


@workspace_view(MARKETING_EDIT)
def workflow_test(request: WorkspaceRequest, workflow_id: int) -> HttpResponse:
    workflow = _workflow(request, workflow_id)
    form = TestForm(request.POST or None)
    result = None
    error = ""
    if request.method == "POST" and form.is_valid():
        contact = (
            Contact.objects.for_workspace(request.workspace)
            .filter(email__iexact=form.cleaned_data["email"])
            .first()
        )
        if contact is None:
            error = _("No contact has this email address.")
        else:
            try:
                result = workflows.test_run(workflow=workflow, contact=contact)
            except workflows.WorkflowInvalid as invalid:
                error = str(invalid)
    stats = workflows.step_stats(workflow) if workflow.published else {}
    return render(
        request,
        "automation/workflows/builder.html",
        {
            "workflow": workflow,
            "flow": _flow(request.workspace, workflow.draft["steps"], stats),
            "trigger_text": _trigger_text(workflow),
            "panel": {"kind": "test", "form": form, "result": result, "error": error},
            "totals": workflows.workflow_stats(workflow),
            "changed": workflow.has_unpublished_changes,
        },
    )


@workspace_view(MARKETING_EDIT)
def workflow_enrolments(request: WorkspaceRequest, workflow_id: int) -> HttpResponse:
    workflow = _workflow(request, workflow_id)
    status = request.GET.get("status", "")
    rows = (
        Enrolment.objects.for_workspace(request.workspace)
        .filter(workflow=workflow)
        .select_related("version")
    )
    if status in EnrolmentStatus.values:
        rows = rows.filter(status=status)
    elif status == "errors":
        rows = rows.filter(Q(status=EnrolmentStatus.FAILED) | ~Q(last_error=""))
    page = list(rows.order_by("-id")[:PAGE_SIZE])
    names = {
        c.pk: c
        for c in Contact.objects.for_workspace(request.workspace).filter(
            pk__in=[e.contact_id for e in page]
        )
    }
    history: dict[int, list[Any]] = {}
    for run in workflows.history_for(request.workspace, [e.pk for e in page]):
        history.setdefault(run.enrolment_id, []).append(run)
    return render(
        request,
        "automation/workflows/enrolments.html",
        {
            "workflow": workflow,
            "rows": [(e, names.get(e.contact_id), history.get(e.pk, [])) for e in page],
            "status": status,
            "statuses": [*EnrolmentStatus.choices, ("errors", _("With errors"))],
        },
    )


@require_POST
@workspace_view(MARKETING_EDIT)
def workflow_enrolment_remove(
    request: WorkspaceRequest, workflow_id: int, enrolment_id: int
) -> HttpResponse:
    workflow = _workflow(request, workflow_id)
    enrolment = get_object_or_404(
        Enrolment.objects.for_workspace(request.workspace).filter(workflow=workflow),
        pk=enrolment_id,
    )
    try:
        workflows.remove_enrolment(enrolment=enrolment, actor=request.user)
        messages.success(request, _("Removed from the workflow."))
    except workflows.WorkflowInvalid as error:
        messages.error(request, str(error))
    return redirect("workflows:enrolments", workflow.pk)


@workspace_view(MARKETING_EDIT)
def workflow_enrol(request: WorkspaceRequest, workflow_id: int) -> HttpResponse:
    """Enrol one contact by hand (by email address)."""
    workflow = _workflow(request, workflow_id)
    if request.method == "POST":
        form = TestForm(request.POST)
        if form.is_valid():
            contact = (
                Contact.objects.for_workspace(request.workspace)
                .filter(email__iexact=form.cleaned_data["email"])
                .first()
            )
            if contact is None:
                messages.error(request, _("No contact has this email address."))
            else:
                try:
                    workflows.enrol_contact(workflow=workflow, contact=contact)
                    messages.success(request, _("%(email)s enrolled.") % {"email": contact.email})
                except workflows.WorkflowInvalid as error:
                    messages.error(request, str(error))
    return redirect("workflows:enrolments", workflow.pk)


@require_POST
@workspace_view(MARKETING_EDIT)
def workflow_delete(request: WorkspaceRequest, workflow_id: int) -> HttpResponse:
    workflow = _workflow(request, workflow_id)
    workflows.delete_workflow(workflow=workflow, actor=request.user)
    messages.success(request, _("Workflow deleted."))
    return redirect("workflows:list")
