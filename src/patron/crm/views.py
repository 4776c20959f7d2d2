"""Contact and company pages: lists with search, detail with the timeline, forms."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBase, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from patron.activity import selectors as activity
from patron.activity.kinds import EVENT_KINDS
from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.models import User
from patron.core.roles import (
    ACTIVITY_VIEW,
    CALLS_MEETINGS_VIEW,
    CONTACTS_EDIT,
    CONTACTS_VIEW,
    DATA_EXPORT,
    DEALS_EDIT,
    DEALS_VIEW,
    NOTES_VIEW,
    SETTINGS_MANAGE,
    TICKETS_VIEW,
)
from patron.crm import bulk_actions, custom_fields, meetings, selectors, services
from patron.crm.custom_fields import CustomFieldInvalid
from patron.crm.forms import (
    CompanyForm,
    ContactForm,
    CustomFieldForm,
    DealForm,
    MoveDealForm,
    NoteForm,
    TaskForm,
)
from patron.crm.list_views import (
    BulkList,
    Column,
    ListSpec,
    bulk_form,
    choice_value,
    day,
    member_value,
    moment,
    no_value,
    owner_filter,
    person,
    read_list,
    related,
    render_list,
    run_bulk,
    view_endpoints,
)
from patron.crm.models import (
    Company,
    Contact,
    CustomField,
    CustomFieldObject,
    Deal,
    Note,
    Pipeline,
    Task,
    TaskPriority,
    Ticket,
)

PAGE_SIZE = 50


def _timeline(
    request: WorkspaceRequest, contact_ids: Any, sources: tuple[str, Any] | None = None
) -> dict[str, Any]:
    if not request.membership.can(ACTIVITY_VIEW):
        return {"events": None}
    kind = request.GET.get("kind") or ""
    if kind not in EVENT_KINDS:
        kind = ""
    events = activity.timeline_for_contacts(
        request.workspace,
        contact_ids,
        kind=kind or None,
        sources=sources,
    )
    page = Paginator(events, 25).get_page(request.GET.get("page"))
    return {
        "events": page,
        "kind": kind,
        "kinds": activity.kind_choices(),
        "query_string": urlencode({"kind": kind}) if kind else "",
    }


def _notes(request: WorkspaceRequest, notes: Any) -> Any:
    """The notes, or None for roles that may not read notes (agencies)."""
    if not request.membership.can(NOTES_VIEW):
        return None
    return notes.select_related("author")[:50]


def _calls_and_meetings(
    request: WorkspaceRequest,
    *,
    contact: Contact | None = None,
    company: Company | None = None,
    deal: Deal | None = None,
) -> dict[str, Any]:
    """Recent calls and coming meetings of a record, or None for roles without them."""
    if not request.membership.can(CALLS_MEETINGS_VIEW):
        return {"calls": None, "upcoming_meetings": None}
    row = contact or company or deal
    assert row is not None
    name = "contact" if contact else "company" if company else "deal"
    calls = meetings.calls_for(request.workspace, contact=contact, company=company, deal=deal)
    upcoming = meetings.meetings_for(
        request.workspace, contact=contact, company=company, deal=deal
    ).filter(ends_at__gte=timezone.now())
    return {
        "about": urlencode({name: row.pk}),
        "calls": calls[:5],
        "upcoming_meetings": upcoming[:5],
    }


def _custom_rows(request: WorkspaceRequest, record_: Contact | Company | Deal) -> Any:
    fields = services.field_definitions(request.workspace, record_._meta.model_name or "")
    return custom_fields.rows_for(fields, record_.custom)


# --- Contacts ---------------------------------------------------------------------


def _contact(request: WorkspaceRequest, contact_id: int) -> Contact:
    return get_object_or_404(
        Contact.objects.for_workspace(request.workspace).select_related("company", "owner"),
        pk=contact_id,
    )


@workspace_view(CONTACTS_VIEW)
def contact_detail(request: WorkspaceRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    deals = None
    if request.membership.can(DEALS_VIEW):
        deals = contact.deals.select_related("stage").order_by("-created_at")
    context = {
        "contact": contact,
        "custom_rows": _custom_rows(request, contact),
        "other_emails": contact.other_emails.all(),
        **_calls_and_meetings(request, contact=contact),
        "tickets": contact.tickets.order_by("-created_at")[:10]
        if request.membership.can(TICKETS_VIEW)
        else None,
        "other_companies": contact.other_companies.order_by("name"),
        "deals": deals,
        "tags": contact.tags.all(),
        "notes": _notes(request, contact.notes.all()),
        "tasks": contact.tasks.filter(completed_at__isnull=True)
        .select_related("assignee")
        .order_by("due_at"),
        **_timeline(request, [contact.pk]),
    }
    from patron.audience.views_lists import contact_panel_context

    context["lists_panel"] = contact_panel_context(request, contact)
    return render(request, "crm/contact_detail.html", context)


def _duplicate_error(form: ContactForm, exc: services.DuplicateContact) -> None:
    link = reverse("crm:contact_detail", args=[exc.existing.pk])
    form.add_error(
        "email",
        format_html(
            '{} <a href="{}">{}</a>',
            _("A contact with this email already exists:"),
            link,
            str(exc.existing),
        ),
    )


@workspace_view(CONTACTS_EDIT)
def contact_create(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    form = ContactForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        try:
            contact = services.create_contact(
                workspace=workspace, actor=request.user, **form.service_values()
            )
        except services.DuplicateContact as exc:
            _duplicate_error(form, exc)
        except CustomFieldInvalid as exc:
            form.add_custom_errors(exc)
        else:
            messages.success(request, _("Contact %(name)s created.") % {"name": contact})
            return redirect("crm:contact_detail", contact_id=contact.pk)
    return render(request, "crm/contact_form.html", {"form": form, "contact": None})


@workspace_view(CONTACTS_EDIT)
def contact_edit(request: WorkspaceRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    form = ContactForm(
        request.POST or None,
        workspace=request.workspace,
        initial=ContactForm.initial_for(contact),
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.update_contact(contact=contact, actor=request.user, **form.service_values())
        except services.DuplicateContact as exc:
            _duplicate_error(form, exc)
        except CustomFieldInvalid as exc:
            form.add_custom_errors(exc)
        else:
            messages.success(request, _("Contact saved."))
            return redirect("crm:contact_detail", contact_id=contact.pk)
    return render(request, "crm/contact_form.html", {"form": form, "contact": contact})


@workspace_view(CONTACTS_EDIT)
@require_POST
def contact_delete(request: WorkspaceRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    name = str(contact)
    services.delete_contact(contact=contact, actor=request.user)
    messages.success(request, _("Contact %(name)s deleted.") % {"name": name})
    return redirect("crm:contact_list")


# --- Companies --------------------------------------------------------------------


def _company(request: WorkspaceRequest, company_id: int) -> Company:
    return get_object_or_404(
        Company.objects.for_workspace(request.workspace).select_related("owner"),
        pk=company_id,
    )


@workspace_view(CONTACTS_VIEW)
def company_detail(request: WorkspaceRequest, company_id: int) -> HttpResponse:
    company = _company(request, company_id)
    contacts = list(selectors.company_contacts(company)[:200])
    context = {
        "company": company,
        "custom_rows": _custom_rows(request, company),
        "contacts": contacts,
        "tags": company.tags.all(),
        "notes": _notes(request, company.notes.all()),
        **_calls_and_meetings(request, company=company),
        "tickets": company.tickets.select_related("contact").order_by("-created_at")[:10]
        if request.membership.can(TICKETS_VIEW)
        else None,
        **_timeline(
            request,
            selectors.company_contacts(company).values_list("pk", flat=True),
            sources=("crm.ticket", selectors.company_ticket_source_ids(company)),
        ),
    }
    return render(request, "crm/company_detail.html", context)


@workspace_view(CONTACTS_EDIT)
def company_create(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    form = CompanyForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        domain = form.cleaned_data.get("domain")
        same = (
            Company.objects.for_workspace(workspace).filter(domain=domain).first()
            if domain
            else None
        )
        if same is not None and not request.POST.get("create_anyway"):
            # Offer the existing company instead of silently making a duplicate.
            form.add_error(
                "domain",
                format_html(
                    '{} <a href="{}">{}</a>',
                    _("A company with this domain exists already:"),
                    reverse("crm:company_detail", args=[same.pk]),
                    same.name,
                ),
            )
            form.fields["create_anyway"] = forms.BooleanField(
                label=_("Create another company with this domain anyway"), required=False
            )
            return render(request, "crm/company_form.html", {"form": form, "company": None})
        try:
            company = services.create_company(
                workspace=workspace, actor=request.user, **form.service_values()
            )
        except CustomFieldInvalid as exc:
            form.add_custom_errors(exc)
        else:
            messages.success(request, _("Company %(name)s created.") % {"name": company})
            return redirect("crm:company_detail", company_id=company.pk)
    return render(request, "crm/company_form.html", {"form": form, "company": None})


@workspace_view(CONTACTS_EDIT)
def company_edit(request: WorkspaceRequest, company_id: int) -> HttpResponse:
    company = _company(request, company_id)
    form = CompanyForm(
        request.POST or None,
        workspace=request.workspace,
        initial=CompanyForm.initial_for(company),
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.update_company(company=company, actor=request.user, **form.service_values())
        except CustomFieldInvalid as exc:
            form.add_custom_errors(exc)
        else:
            messages.success(request, _("Company saved."))
            return redirect("crm:company_detail", company_id=company.pk)
    return render(request, "crm/company_form.html", {"form": form, "company": company})


@workspace_view(CONTACTS_EDIT)
@require_POST
def company_delete(request: WorkspaceRequest, company_id: int) -> HttpResponse:
    company = _company(request, company_id)
    name = str(company)
    services.delete_company(company=company, actor=request.user)
    messages.success(request, _("Company %(name)s deleted.") % {"name": name})
    return redirect("crm:company_list")


# --- Deals and pipelines ----------------------------------------------------------


def _pipeline(request: WorkspaceRequest, pipeline_id: int) -> Pipeline:
    return get_object_or_404(selectors.pipelines(request.workspace), pk=pipeline_id)


def _deal(request: WorkspaceRequest, deal_id: int) -> Deal:
    return get_object_or_404(
        Deal.objects.for_workspace(request.workspace).select_related(
            "stage", "pipeline", "company", "owner"
        ),
        pk=deal_id,
    )


def _board_context(request: WorkspaceRequest, pipeline: Pipeline) -> dict[str, Any]:
    columns = selectors.board(request.workspace, pipeline)
    return {
        "pipeline": pipeline,
        "pipelines": selectors.pipelines(request.workspace),
        "columns": columns,
        "stages": [column.stage for column in columns],
        "total_amount": sum((c.amount for c in columns if c.stage.outcome == "open"), Decimal(0)),
        "total_weighted": sum(
            (c.weighted for c in columns if c.stage.outcome == "open"), Decimal(0)
        ),
    }


@workspace_view(DEALS_VIEW)
def deal_board_default(request: WorkspaceRequest) -> HttpResponse:
    pipeline = services.default_pipeline(request.workspace)
    return redirect("crm:deal_board", pipeline_id=pipeline.pk)


@workspace_view(DEALS_VIEW)
def deal_board(request: WorkspaceRequest, pipeline_id: int) -> HttpResponse:
    pipeline = _pipeline(request, pipeline_id)
    template = "crm/_deal_board.html" if request.htmx else "crm/deal_board.html"
    return render(request, template, _board_context(request, pipeline))


@workspace_view(DEALS_VIEW)
def deal_detail(request: WorkspaceRequest, deal_id: int) -> HttpResponse:
    deal = _deal(request, deal_id)
    events = activity.events_for_workspace(request.workspace).filter(
        source_type="crm.deal", source_id=str(deal.pk)
    )
    seen: set[int] = set()
    history = []
    for event in events[:200]:
        # One change is recorded once per contact of the deal; show it once.
        key = hash((event.kind, event.occurred_at, str(event.properties)))
        if key not in seen:
            seen.add(key)
            history.append(event)
    return render(
        request,
        "crm/deal_detail.html",
        {
            "deal": deal,
            "quotes": selectors.quotes_for_deal(deal),
            "custom_rows": _custom_rows(request, deal),
            "contacts": deal.contacts.order_by("last_name", "first_name"),
            "history": history,
            "move_form": MoveDealForm(deal=deal, initial={"stage": deal.stage_id}),
            **_calls_and_meetings(request, deal=deal),
        },
    )


def _deal_values(form: DealForm) -> dict[str, Any]:
    values = form.service_values()
    values.pop("stage")
    values["contacts"] = list(values.pop("contacts"))
    return values


@workspace_view(DEALS_EDIT)
def deal_create(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    pipeline = services.default_pipeline(workspace)
    if request.GET.get("pipeline", "").isdigit():
        pipeline = _pipeline(request, int(request.GET["pipeline"]))
    initial = {}
    if request.GET.get("contact", "").isdigit():
        contact = Contact.objects.for_workspace(workspace).filter(pk=int(request.GET["contact"]))
        initial = {"contacts": list(contact), "company": contact.first() and contact[0].company}
    form = DealForm(request.POST or None, workspace=workspace, pipeline=pipeline, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            deal = services.create_deal(
                workspace=workspace,
                pipeline=pipeline,
                stage=form.cleaned_data["stage"],
                actor=request.user,
                **_deal_values(form),
            )
        except CustomFieldInvalid as exc:
            form.add_custom_errors(exc)
        else:
            messages.success(request, _("Deal %(name)s created.") % {"name": deal})
            return redirect("crm:deal_detail", deal_id=deal.pk)
    return render(request, "crm/deal_form.html", {"form": form, "deal": None, "pipeline": pipeline})


@workspace_view(DEALS_EDIT)
def deal_edit(request: WorkspaceRequest, deal_id: int) -> HttpResponse:
    deal = _deal(request, deal_id)
    initial = {name: getattr(deal, name) for name in DealForm.base_fields if name != "contacts"}
    initial["contacts"] = list(deal.contacts.all())
    initial.update(DealForm.custom_initial(deal))
    form = DealForm(
        request.POST or None, workspace=request.workspace, pipeline=deal.pipeline, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        stage = form.cleaned_data["stage"]
        try:
            services.update_deal(deal=deal, actor=request.user, **_deal_values(form))
        except CustomFieldInvalid as exc:
            form.add_custom_errors(exc)
        else:
            if stage.pk != deal.stage_id:
                services.move_deal(deal=deal, stage=stage, actor=request.user)
            messages.success(request, _("Deal saved."))
            return redirect("crm:deal_detail", deal_id=deal.pk)
    return render(
        request, "crm/deal_form.html", {"form": form, "deal": deal, "pipeline": deal.pipeline}
    )


@workspace_view(DEALS_EDIT)
@require_POST
def deal_move(request: WorkspaceRequest, deal_id: int) -> HttpResponse:
    """Move a deal to a stage: from the board (drag and drop or the menu) or its page."""
    deal = _deal(request, deal_id)
    form = MoveDealForm(request.POST, deal=deal)
    if not form.is_valid():
        if request.htmx:
            return HttpResponse(_("Choose a stage of this pipeline."), status=422)
        messages.error(request, _("Choose a stage of this pipeline."))
        return redirect("crm:deal_detail", deal_id=deal.pk)
    stage = form.cleaned_data["stage"]
    services.move_deal(
        deal=deal,
        stage=stage,
        actor=request.user,
        position=form.cleaned_data["position"],
        lost_reason=form.cleaned_data["lost_reason"],
    )
    if request.htmx:
        return render(request, "crm/_deal_board.html", _board_context(request, deal.pipeline))
    messages.success(
        request, _("%(deal)s moved to %(stage)s.") % {"deal": deal.name, "stage": stage.name}
    )
    if request.POST.get("next") == "board":
        return redirect("crm:deal_board", pipeline_id=deal.pipeline_id)
    return redirect("crm:deal_detail", deal_id=deal.pk)


@workspace_view(DEALS_EDIT)
@require_POST
def deal_delete(request: WorkspaceRequest, deal_id: int) -> HttpResponse:
    deal = _deal(request, deal_id)
    pipeline_id = deal.pipeline_id
    services.delete_deal(deal=deal, actor=request.user)
    messages.success(request, _("Deal deleted."))
    return redirect("crm:deal_board", pipeline_id=pipeline_id)


# --- Tags and notes ---------------------------------------------------------------


def _tag_target(request: WorkspaceRequest, kind: str, record_id: int) -> Contact | Company:
    return _contact(request, record_id) if kind == "contact" else _company(request, record_id)


def _back(kind: str, record_: Contact | Company) -> HttpResponse:
    if kind == "contact":
        return redirect("crm:contact_detail", contact_id=record_.pk)
    return redirect("crm:company_detail", company_id=record_.pk)


def _add_tag(request: WorkspaceRequest, kind: str, record_id: int) -> HttpResponse:
    target = _tag_target(request, kind, record_id)
    names = [n for n in request.POST.get("name", "").split(",") if n.strip()]
    try:
        if not names:
            raise services.InvalidTag(_("Type a tag name."))
        services.add_tags(record_=target, names=names, actor=request.user)
    except services.InvalidTag as exc:
        messages.error(request, str(exc))
    return _back(kind, target)


def _remove_tag(request: WorkspaceRequest, kind: str, record_id: int, tag_id: int) -> HttpResponse:
    target = _tag_target(request, kind, record_id)
    tag = get_object_or_404(target.tags.all(), pk=tag_id)
    services.remove_tag(record_=target, tag=tag, actor=request.user)
    return _back(kind, target)


@workspace_view(CONTACTS_EDIT)
@require_POST
def contact_add_tag(request: WorkspaceRequest, contact_id: int) -> HttpResponse:
    return _add_tag(request, "contact", contact_id)


@workspace_view(CONTACTS_EDIT)
@require_POST
def contact_remove_tag(request: WorkspaceRequest, contact_id: int, tag_id: int) -> HttpResponse:
    return _remove_tag(request, "contact", contact_id, tag_id)


@workspace_view(CONTACTS_EDIT)
@require_POST
def company_add_tag(request: WorkspaceRequest, company_id: int) -> HttpResponse:
    return _add_tag(request, "company", company_id)


@workspace_view(CONTACTS_EDIT)
@require_POST
def company_remove_tag(request: WorkspaceRequest, company_id: int, tag_id: int) -> HttpResponse:
    return _remove_tag(request, "company", company_id, tag_id)


def _add_note(request: WorkspaceRequest, kind: str, record_id: int) -> HttpResponse:
    if not request.membership.can(CONTACTS_EDIT):
        raise PermissionDenied
    target = _tag_target(request, kind, record_id)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            services.add_note(
                workspace=request.workspace,
                author=request.user,
                body=form.cleaned_data["body"],
                contact=target if isinstance(target, Contact) else None,
                company=target if isinstance(target, Company) else None,
            )
        except ValueError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Note added."))
    else:
        messages.error(request, _("Write something in the note first."))
    return _back(kind, target)


@workspace_view(NOTES_VIEW)
@require_POST
def contact_add_note(request: WorkspaceRequest, contact_id: int) -> HttpResponse:
    return _add_note(request, "contact", contact_id)


@workspace_view(NOTES_VIEW)
@require_POST
def company_add_note(request: WorkspaceRequest, company_id: int) -> HttpResponse:
    return _add_note(request, "company", company_id)


@workspace_view(NOTES_VIEW)
@require_POST
def note_delete(request: WorkspaceRequest, note_id: int) -> HttpResponse:
    note = get_object_or_404(
        Note.objects.for_workspace(request.workspace).select_related("contact", "company"),
        pk=note_id,
    )
    if note.author_id != request.user.pk and not request.membership.can(SETTINGS_MANAGE):
        raise PermissionDenied
    target = note.contact or note.company
    services.delete_note(note=note, actor=request.user)
    messages.success(request, _("Note deleted."))
    assert target is not None
    return _back("contact" if note.contact_id else "company", target)


# --- Tasks ------------------------------------------------------------------------


TASK_VIEWS = {
    "overdue": gettext_lazy("Overdue"),
    "today": gettext_lazy("Today"),
    "upcoming": gettext_lazy("Upcoming"),
    "someday": gettext_lazy("No due date"),
    "open": gettext_lazy("All open"),
    "done": gettext_lazy("Done"),
}
TASK_SPEC = ListSpec(
    object_type="task",
    columns={
        "due": Column(gettext_lazy("Due"), lambda t: moment(t.due_at)),
        "priority": Column(gettext_lazy("Priority"), lambda t: t.get_priority_display()),
        "contact": related("contact", "contact_detail", gettext_lazy("Contact")),
        "assignee": Column(gettext_lazy("Assigned to"), lambda t: person(t.assignee)),
        "company": related("company", "company_detail", gettext_lazy("Company")),
        "deal": related("deal", "deal_detail", gettext_lazy("Deal"), DEALS_VIEW),
        "ticket": related("ticket", "ticket_detail", gettext_lazy("Ticket"), TICKETS_VIEW),
        "reminder": Column(
            gettext_lazy("Reminder"), lambda t: "" if t.reminded_at else moment(t.remind_at)
        ),
        "created": Column(gettext_lazy("Created"), lambda t: day(t.created_at)),
        "created_by": Column(gettext_lazy("Created by"), lambda t: person(t.created_by)),
        "completed": Column(gettext_lazy("Done on"), lambda t: day(t.completed_at)),
    },
    default_columns=("due", "priority", "contact", "assignee"),
    sorts={
        "due": gettext_lazy("Due date"),
        "-priority": gettext_lazy("Highest priority"),
        "-created": gettext_lazy("Newest first"),
        "title": gettext_lazy("Title"),
    },
    default_sort="due",
    # The same order as task_query writes its filters: due, who, priority, q.
    built_in_views=(
        (gettext_lazy("My tasks today"), ""),
        (gettext_lazy("My overdue tasks"), "due=overdue"),
        (gettext_lazy("Everyone's overdue tasks"), "due=overdue&who=everyone"),
        (gettext_lazy("Unassigned"), "due=open&who=none"),
        (gettext_lazy("My high priority"), "due=open&priority=high"),
    ),
)


def _task_assignee(request: WorkspaceRequest, who: str) -> tuple[str, User | str | None]:
    """``who`` as (the value kept, the assignee filter): mine, "everyone", "none" or a member."""
    if who == "everyone":
        return who, ""
    if who == "none":
        return who, None
    if who.isdigit():
        kept, member = owner_filter(request, who)
        if kept:
            return kept, member
    return "", request.user


def task_query(
    request: WorkspaceRequest, data: QueryDict | None = None
) -> tuple[Any, dict[str, Any]]:
    """The tasks the list's parameters select, and the context to show them.

    ``due`` is the tab (today by default; ``?view=overdue`` is its old name),
    ``who`` whose tasks: mine by default, "everyone", "none" or a member's id.
    """
    state = read_list(request, TASK_SPEC, data)
    old_name = (request.GET if data is None else data).get("view", "")
    due = state.get("due") or (old_name if old_name in TASK_VIEWS else "")
    due = due if due in TASK_VIEWS else "today"
    who, assignee = _task_assignee(request, state.get("who"))
    priority = state.choice("priority", TaskPriority.values)
    query = state.get("q").strip()
    tasks = selectors.search_tasks(
        request.workspace,
        assignee=assignee,
        due=due,
        priority=priority,
        query=query,
        sort=state.sort,
    )
    filters = {"due": "" if due == "today" else due, "who": who, "priority": priority, "q": query}
    context = state.context(filters, filtered=bool(who or priority or query))
    context.update(
        {
            "due": due,
            "who": who,
            "assignee": assignee,
            "priority": priority,
            "priorities": TaskPriority.choices,
            "query": query,
        }
    )
    return tasks, context


def _task_tabs(context: dict[str, Any], counts: dict[str, int]) -> list[tuple[str, Any, int, str]]:
    """(due, label, count, query string) of each tab, keeping the other filters."""
    rest = {k: v for k, v in context["filters"].items() if v and k != "due"}
    return [
        (
            key,
            label,
            counts.get(key, 0),
            urlencode({**({} if key == "today" else {"due": key}), **rest}),
        )
        for key, label in TASK_VIEWS.items()
    ]


def _export_tasks(request: WorkspaceRequest, tasks: Any) -> HttpResponseBase:
    from patron.crm import exporter
    from patron.crm.views_imports import export_csv

    rows = exporter.task_rows(
        tasks,
        deals=request.membership.can(DEALS_VIEW),
        tickets=request.membership.can(TICKETS_VIEW),
    )
    return export_csv(request, "tasks", rows, tasks.count())


TASK_BULK = BulkList(
    list_name="crm:task_list",
    url_name="crm:task_bulk",
    model=Task,
    query=task_query,
    actions={
        "assign": member_value,
        "complete": no_value,
        "reopen": no_value,
        "priority": choice_value(
            "priority", TaskPriority.values, gettext_lazy("Choose a priority.")
        ),
        "delete": no_value,
    },
    apply=lambda request, bulk, ids: bulk_actions.update_tasks(
        workspace=request.workspace,
        task_ids=ids,
        action=bulk.action,
        value=bulk.value,
        actor=request.user,
    ),
    export=_export_tasks,
    options=(
        ("complete", gettext_lazy("Mark as done")),
        ("reopen", gettext_lazy("Reopen")),
        ("assign", gettext_lazy("Assign to")),
        ("priority", gettext_lazy("Set the priority")),
    ),
)


@workspace_view(CONTACTS_VIEW)
def task_list(request: WorkspaceRequest) -> HttpResponse:
    """Tasks by due date (overdue, today, upcoming, no date, done), filtered, with views."""
    bulk = bulk_form(
        request,
        TASK_BULK,
        "task-bulk-form",
        _("With the ticked tasks"),
        _("Delete the ticked tasks? This cannot be undone."),
        priorities=TaskPriority.choices,
    )

    def query(request: WorkspaceRequest) -> tuple[Any, dict[str, Any]]:
        tasks, context = task_query(request)
        counts = selectors.task_counts(request.workspace, assignee=context["assignee"])
        context["tabs"] = _task_tabs(context, counts)
        return tasks, context

    return render_list(request, TASK_SPEC, query, "crm/task_list.html", extra={"bulk": bulk})


@workspace_view(DATA_EXPORT)
def task_export(request: WorkspaceRequest) -> HttpResponseBase:
    """The tasks of the list as filtered and sorted on screen, as CSV."""
    tasks, _context = task_query(request)
    return _export_tasks(request, tasks)


task_view_save, task_view_delete = view_endpoints("task", CONTACTS_VIEW)


@workspace_view(CONTACTS_EDIT)
@require_POST
def task_bulk(request: WorkspaceRequest) -> HttpResponseBase:
    """Assign, complete, reopen, reprioritise, delete or export the ticked (or all) tasks."""
    return run_bulk(request, TASK_BULK)


@workspace_view(CONTACTS_EDIT)
def task_create(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    contact = None
    ticket = None
    if request.GET.get("ticket", "").isdigit() and request.membership.can(TICKETS_VIEW):
        ticket = get_object_or_404(
            Ticket.objects.for_workspace(workspace).select_related("contact"),
            pk=int(request.GET["ticket"]),
        )
        contact = ticket.contact
    elif request.GET.get("contact", "").isdigit():
        contact = _contact(request, int(request.GET["contact"]))
    form = TaskForm(request.POST or None, workspace=workspace, initial={"assignee": request.user})
    if request.method == "POST" and form.is_valid():
        services.create_task(
            workspace=workspace,
            created_by=request.user,
            contact=contact,
            company=contact.company if contact else None,
            ticket=ticket,
            **form.cleaned_data,
        )
        messages.success(request, _("Task created."))
        if ticket is not None:
            return redirect("crm:ticket_detail", ticket_id=ticket.pk)
        if contact is not None:
            return redirect("crm:contact_detail", contact_id=contact.pk)
        return redirect("crm:task_list")
    return render(request, "crm/task_form.html", {"form": form, "contact": contact})


def _task(request: WorkspaceRequest, task_id: int) -> Task:
    return get_object_or_404(Task.objects.for_workspace(request.workspace), pk=task_id)


@workspace_view(CONTACTS_VIEW)
def task_detail(request: WorkspaceRequest, task_id: int) -> HttpResponse:
    """One task with what it is about (the calendar links here)."""
    task = get_object_or_404(
        Task.objects.for_workspace(request.workspace).select_related(
            "assignee", "created_by", "contact", "company", "deal", "ticket"
        ),
        pk=task_id,
    )
    return render(
        request,
        "crm/task_detail.html",
        {
            "task": task,
            "sees_deals": request.membership.can(DEALS_VIEW),
            "sees_tickets": request.membership.can(TICKETS_VIEW),
        },
    )


@workspace_view(CONTACTS_EDIT)
@require_POST
def task_complete(request: WorkspaceRequest, task_id: int) -> HttpResponse:
    task = _task(request, task_id)
    if request.POST.get("done") == "0":
        services.reopen_task(task=task, actor=request.user)
    else:
        services.complete_task(task=task, actor=request.user)
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect("crm:task_list")


# --- Custom fields (Settings) -------------------------------------------------------


def _object_type(request: WorkspaceRequest) -> str:
    value = request.GET.get("type") or request.POST.get("object_type") or ""
    return value if value in CustomFieldObject.values else CustomFieldObject.CONTACT


@workspace_view(SETTINGS_MANAGE)
def custom_field_list(request: WorkspaceRequest) -> HttpResponse:
    object_type = _object_type(request)
    return render(
        request,
        "crm/settings_custom_fields.html",
        {
            "tab": "custom_fields",
            "object_type": object_type,
            "object_types": CustomFieldObject.choices,
            "fields": services.field_definitions(request.workspace, object_type),
        },
    )


@workspace_view(SETTINGS_MANAGE)
def custom_field_create(request: WorkspaceRequest) -> HttpResponse:
    object_type = _object_type(request)
    form = CustomFieldForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            field = services.create_custom_field(
                workspace=request.workspace,
                object_type=object_type,
                actor=request.user,
                **form.cleaned_data,
            )
        except CustomFieldInvalid as exc:
            _field_errors(form, exc)
        else:
            messages.success(request, _("Field “%(label)s” added.") % {"label": field.label})
            return redirect(f"{reverse('crm:custom_field_list')}?type={object_type}")
    return render(
        request,
        "crm/custom_field_form.html",
        {
            "tab": "custom_fields",
            "form": form,
            "field": None,
            "object_type": object_type,
            "object_type_label": CustomFieldObject(object_type).label,
        },
    )


def _field_errors(form: CustomFieldForm, exc: CustomFieldInvalid) -> None:
    for name, message in exc.errors.items():
        form.add_error(name if name in form.fields else None, message)


def _custom_field(request: WorkspaceRequest, custom_field_id: int) -> CustomField:
    return get_object_or_404(
        CustomField.objects.for_workspace(request.workspace), pk=custom_field_id
    )


@workspace_view(SETTINGS_MANAGE)
def custom_field_edit(request: WorkspaceRequest, custom_field_id: int) -> HttpResponse:
    field = _custom_field(request, custom_field_id)
    initial = {
        "label": field.label,
        "options": "\n".join(field.options),
        "required": field.required,
        "help_text": field.help_text,
    }
    form = CustomFieldForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_custom_field(field=field, actor=request.user, **form.cleaned_data)
        except CustomFieldInvalid as exc:
            _field_errors(form, exc)
        else:
            messages.success(request, _("Field “%(label)s” saved.") % {"label": field.label})
            return redirect(f"{reverse('crm:custom_field_list')}?type={field.object_type}")
    return render(
        request,
        "crm/custom_field_form.html",
        {
            "tab": "custom_fields",
            "form": form,
            "field": field,
            "object_type": field.object_type,
            "object_type_label": CustomFieldObject(field.object_type).label,
        },
    )


@workspace_view(SETTINGS_MANAGE)
@require_POST
def custom_field_delete(request: WorkspaceRequest, custom_field_id: int) -> HttpResponse:
    field = _custom_field(request, custom_field_id)
    object_type, label = field.object_type, field.label
    services.delete_custom_field(field=field, actor=request.user)
    messages.success(request, _("Field “%(label)s” deleted with its values.") % {"label": label})
    return redirect(f"{reverse('crm:custom_field_list')}?type={object_type}")
