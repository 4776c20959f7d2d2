"""The contact list: filters (custom fields included), sort, columns, saved views, bulk actions.

Every filter is a query parameter, so a list is a URL: saved views store the
parameters, exports and the total count read the same ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.http import HttpResponse, HttpResponseBase, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.models import User
from patron.core.paging import SeekPage
from patron.core.roles import (
    CONTACTS_EDIT,
    CONTACTS_VIEW,
    DATA_EXPORT,
    DEALS_EDIT,
    DEALS_VIEW,
    SETTINGS_MANAGE,
)
from patron.core.selectors import active_users
from patron.crm import custom_fields, selectors, services
from patron.crm.custom_fields import CustomFieldInvalid
from patron.crm.models import (
    Company,
    Contact,
    CustomField,
    CustomFieldObject,
    Deal,
    FieldType,
    LifecycleStage,
    SavedView,
    StageOutcome,
)

PAGE_SIZE = 50
COUNT_CAP = 10_000
SORT_LABELS = {
    "-created": gettext_lazy("Newest first"),
    "-last_activity": gettext_lazy("Recent activity"),
    "name": gettext_lazy("Name"),
    "email": gettext_lazy("Email"),
    "-score": gettext_lazy("Highest score"),
}
FILTERABLE_IN_LIST = {FieldType.SINGLE_SELECT, FieldType.MULTI_SELECT, FieldType.BOOLEAN}

# Column key -> (label, value of a contact). Custom fields join as cf_<key>.
STANDARD_COLUMNS: dict[str, tuple[Any, Callable[[Contact], Any]]] = {
    "email": (gettext_lazy("Email"), lambda c: c.email),
    "company": (gettext_lazy("Company"), lambda c: c.company),
    "lifecycle_stage": (gettext_lazy("Lifecycle stage"), lambda c: c.get_lifecycle_stage_display()),
    "owner": (gettext_lazy("Owner"), lambda c: c.owner.display_name if c.owner else ""),
    "phone": (gettext_lazy("Phone"), lambda c: c.phone),
    "job_title": (gettext_lazy("Job title"), lambda c: c.job_title),
    "city": (gettext_lazy("City"), lambda c: c.city),
    "country": (gettext_lazy("Country"), lambda c: c.country),
    "score": (gettext_lazy("Score"), lambda c: c.score),
    "source": (gettext_lazy("Source"), lambda c: c.source),
    "created": (gettext_lazy("Created"), lambda c: date_format(c.created_at, "SHORT_DATE_FORMAT")),
    "last_activity": (
        gettext_lazy("Last activity"),
        lambda c: (
            date_format(c.last_activity_at, "SHORT_DATE_FORMAT") if c.last_activity_at else ""
        ),
    ),
}
DEFAULT_COLUMNS = ["email", "company", "lifecycle_stage", "owner"]
BUILT_IN_VIEWS: list[tuple[Any, dict[str, str]]] = [
    (gettext_lazy("All contacts"), {}),
    (gettext_lazy("My contacts"), {"owner": "me"}),
    (gettext_lazy("Without owner"), {"owner": "none"}),
    (gettext_lazy("Recently active"), {"sort": "-last_activity"}),
    (gettext_lazy("Customers"), {"stage": LifecycleStage.CUSTOMER}),
]


def _visible_views(request: WorkspaceRequest, object_type: str = "contact") -> Any:
    from django.db.models import Q

    return (
        SavedView.objects.for_workspace(request.workspace)
        .filter(object_type=object_type)
        .filter(Q(owner=request.user) | Q(shared=True))
        .select_related("owner")
    )


def list_parameters(
    request: WorkspaceRequest, object_type: str = "contact"
) -> tuple[dict[str, str], SavedView | None]:
    """The list's parameters: a saved view's, overridden by those in the URL."""
    params: dict[str, str] = {}
    view = None
    view_id = request.GET.get("view", "")
    if view_id.isdigit():
        view = _visible_views(request, object_type).filter(pk=int(view_id)).first()
        if view is not None:
            params.update(view.query)
    for key in request.GET:
        if key in {"view", "page"}:
            continue
        if key == "col":
            params["cols"] = ",".join(request.GET.getlist("col"))
        else:
            params[key] = request.GET.get(key, "")
    _add_condition(params)
    return params, view


NO_VALUE = {custom_fields.Operator.IS_EMPTY, custom_fields.Operator.IS_NOT_EMPTY}


def custom_conditions(
    request: WorkspaceRequest, params: dict[str, str], fields: list[CustomField]
) -> tuple[list[custom_fields.Condition], dict[str, str]]:
    """Conditions from the list's parameters.

    ``cf_<key>=value`` is equality ("has" for multi select), as the select
    filters send it; ``cf_<key>__<operator>=value`` is any operator that fits
    the field (``cf_seats__gt=10``, ``cf_renewal__empty=1``). Returns the
    conditions and, for the select filters, the plain ``cf_<key>`` values.
    """
    by_key = {field.key: field for field in fields}
    conditions = []
    chosen = {}
    for name, value in params.items():
        if not name.startswith(custom_fields.FORM_PREFIX):
            continue
        key, _sep, operator = name.removeprefix(custom_fields.FORM_PREFIX).partition("__")
        field = by_key.get(key)
        if field is None or (not value and operator not in NO_VALUE):
            continue
        argument: Any = value
        if not operator:
            operator = (
                custom_fields.Operator.HAS_ANY
                if field.field_type == FieldType.MULTI_SELECT
                else custom_fields.Operator.EQUALS
            )
        if operator == custom_fields.Operator.HAS_ANY:
            argument = [value]
        condition = custom_fields.Condition(field, operator, argument)
        try:
            custom_fields.filter_q(condition)
        except CustomFieldInvalid as exc:
            messages.warning(request, f"{field.label}: " + "; ".join(exc.errors.values()))
            continue
        conditions.append(condition)
        chosen[name.removeprefix(custom_fields.FORM_PREFIX)] = value
    return conditions, chosen


def condition_chips(
    fields: list[CustomField], chosen: dict[str, str], filters: dict[str, Any]
) -> list[tuple[str, str]]:
    """(text, query string without it) for each operator condition, to show and remove."""
    by_key = {field.key: field for field in fields}
    chips = []
    for name, value in chosen.items():
        key, _sep, operator = name.partition("__")
        if not operator:
            continue
        label = custom_fields.OPERATOR_LABELS.get(operator, operator)
        text = f"{by_key[key].label} {label}" + ("" if operator in NO_VALUE else f" {value}")
        rest = {k: v for k, v in filters.items() if v and k != custom_fields.FORM_PREFIX + name}
        chips.append((text, urlencode(rest)))
    return chips


def segment_chip(segment: Any, filters: dict[str, Any]) -> list[tuple[str, str]]:
    """The "in segment" chip of a list narrowed to a segment, to show and remove."""
    if segment is None:
        return []
    rest = {k: v for k, v in filters.items() if v and k != "segment"}
    return [(_("In segment %(name)s") % {"name": segment.name}, urlencode(rest))]


def _add_condition(params: dict[str, str]) -> None:
    """Turn the "add a condition" controls into a ``cf_<key>__<operator>`` parameter."""
    key = params.pop("cond_field", "")
    operator = params.pop("cond_op", "")
    value = params.pop("cond_value", "")
    if key and operator in custom_fields.OPERATOR_LABELS and (value or operator in NO_VALUE):
        params[f"{custom_fields.FORM_PREFIX}{key}__{operator}"] = value or "1"


def owner_filter(request: WorkspaceRequest, value: str) -> tuple[str, User | str | None]:
    if value == "me":
        return value, request.user
    if value == "none":
        return value, None
    if value.isdigit():
        user = User.objects.filter(
            pk=int(value),
            memberships__workspace=request.workspace,
            memberships__is_active=True,
        ).first()
        if user is not None:
            return value, user
    return "", ""


def _columns(params: dict[str, str], fields: list[CustomField]) -> list[tuple[str, Any]]:
    custom = {custom_fields.FORM_PREFIX + f.key: f for f in fields}
    wanted = [c for c in params.get("cols", "").split(",") if c] or DEFAULT_COLUMNS
    columns = []
    for key in wanted:
        if key in STANDARD_COLUMNS:
            columns.append((key, STANDARD_COLUMNS[key][0]))
        elif key in custom:
            columns.append((key, custom[key].label))
    return columns or [(key, STANDARD_COLUMNS[key][0]) for key in DEFAULT_COLUMNS]


def _cell(contact: Contact, key: str, custom: dict[str, CustomField]) -> Any:
    if key in STANDARD_COLUMNS:
        return STANDARD_COLUMNS[key][1](contact)
    field = custom[key]
    return custom_fields.display(field, contact.custom.get(field.key))


def contact_query(request: WorkspaceRequest) -> tuple[Any, dict[str, Any]]:
    """The contacts the list's parameters select, and the context to show them."""
    params, view = list_parameters(request)
    query = params.get("q", "")
    stage = params.get("stage", "")
    if stage not in LifecycleStage.values:
        stage = ""
    tag = params.get("tag", "")
    sort = params.get("sort", "-created")
    if sort not in SORT_LABELS:
        sort = "-created"
    owner_param, owner = owner_filter(request, params.get("owner", ""))
    fields = services.field_definitions(request.workspace, CustomFieldObject.CONTACT)
    conditions, chosen = custom_conditions(request, params, fields)
    contacts = selectors.search_contacts(
        request.workspace,
        query=query,
        lifecycle_stage=stage,
        tag=tag,
        owner=owner,
        custom=conditions,
        sort=sort,
    )
    from patron.audience.segments import segment_filter

    segment, segment_q = segment_filter(request.workspace, params.get("segment", ""))
    contacts = contacts.filter(segment_q)
    columns = _columns(params, fields)
    filters = {
        "segment": str(segment.pk) if segment else "",
        "q": query,
        "stage": stage,
        "tag": tag,
        "owner": owner_param,
        "sort": sort if sort != "-created" else "",
        "cols": ",".join(key for key, _label in columns)
        if [key for key, _label in columns] != DEFAULT_COLUMNS
        else "",
    }
    filters.update({custom_fields.FORM_PREFIX + key: value for key, value in chosen.items()})
    query_string = urlencode({k: v for k, v in filters.items() if v})
    context = {
        "query": query,
        "stage": stage,
        "stages": LifecycleStage.choices,
        "tag": tag,
        "tags": selectors.tags(request.workspace),
        "owner": owner_param,
        "members": active_users(request.workspace),
        "sort": sort,
        "sorts": SORT_LABELS.items(),
        "custom_filters": [
            (field, chosen.get(field.key, ""))
            for field in fields
            if field.field_type in FILTERABLE_IN_LIST
        ],
        "custom_fields": {custom_fields.FORM_PREFIX + f.key: f for f in fields},
        "condition_fields": fields,
        "operators": custom_fields.OPERATOR_LABELS.items(),
        "chips": condition_chips(fields, chosen, filters) + segment_chip(segment, filters),
        "active_conditions": [
            (custom_fields.FORM_PREFIX + name, value)
            for name, value in chosen.items()
            if "__" in name
        ]
        + ([("segment", filters["segment"])] if segment else []),
        "columns": columns,
        "column_choices": [
            *[(key, label) for key, (label, _value) in STANDARD_COLUMNS.items()],
            *[(custom_fields.FORM_PREFIX + f.key, f.label) for f in fields],
        ],
        "chosen_columns": {key for key, _label in columns},
        "filtered": bool(query or stage or tag or chosen or owner_param or segment),
        "query_string": query_string,
        "current_view": view,
        "saved_views": _visible_views(request),
        "built_in_views": [(label, urlencode(p)) for label, p in BUILT_IN_VIEWS],
        "mailing_lists": _mailing_lists(request),
    }
    return contacts, context


def _mailing_lists(request: WorkspaceRequest) -> Any:
    from patron.audience.models import MailingList

    return MailingList.objects.for_workspace(request.workspace).only("id", "name")


@workspace_view(CONTACTS_VIEW)
def contact_list(request: WorkspaceRequest) -> HttpResponse:
    contacts, context = contact_query(request)
    page = SeekPage(contacts, request.GET.get("page"), PAGE_SIZE)
    custom = context["custom_fields"]
    keys = [key for key, _label in context["columns"]]
    context["page_obj"] = page
    context["rows"] = [(contact, [_cell(contact, key, custom) for key in keys]) for contact in page]
    template = "crm/_contact_rows.html" if request.htmx else "crm/contact_list.html"
    return render(request, template, context)


@workspace_view(CONTACTS_VIEW)
def contact_count(request: WorkspaceRequest) -> HttpResponse:
    """How many contacts the list selects, up to COUNT_CAP (loaded after the page)."""
    contacts, _context = contact_query(request)
    count = contacts.order_by()[: COUNT_CAP + 1].count()
    if count > COUNT_CAP:
        text = _("More than %(count)s contacts") % {"count": intcomma(COUNT_CAP)}
    else:
        text = ngettext("%(count)s contact", "%(count)s contacts", count) % {
            "count": intcomma(count)
        }
    return HttpResponse(text)


# --- Saved views ---------------------------------------------------------------------


def _save_view(request: WorkspaceRequest, object_type: str) -> HttpResponse:
    list_url = reverse(f"crm:{object_type}_list")
    query = QueryDict(request.POST.get("query_string", ""))
    try:
        view = services.save_view(
            workspace=request.workspace,
            owner=request.user,
            name=request.POST.get("name", ""),
            query={key: query.get(key, "") for key in query},
            shared=request.POST.get("shared") == "on",
            object_type=object_type,
        )
    except services.InvalidView as exc:
        messages.error(request, str(exc))
        return redirect(f"{list_url}?{query.urlencode()}")
    messages.success(request, _("View “%(name)s” saved.") % {"name": view.name})
    return redirect(f"{list_url}?view={view.pk}")


def _delete_view(request: WorkspaceRequest, object_type: str, view_id: int) -> HttpResponse:
    view = get_object_or_404(_visible_views(request, object_type), pk=view_id)
    try:
        services.delete_view(
            view=view, actor=request.user, may_manage=request.membership.can(SETTINGS_MANAGE)
        )
    except services.InvalidView as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("View “%(name)s” deleted.") % {"name": view.name})
    return redirect(f"crm:{object_type}_list")


@workspace_view(CONTACTS_VIEW)
@require_POST
def contact_view_save(request: WorkspaceRequest) -> HttpResponse:
    return _save_view(request, "contact")


@workspace_view(CONTACTS_VIEW)
@require_POST
def contact_view_delete(request: WorkspaceRequest, view_id: int) -> HttpResponse:
    return _delete_view(request, "contact", view_id)


@workspace_view(CONTACTS_VIEW)
@require_POST
def company_view_save(request: WorkspaceRequest) -> HttpResponse:
    return _save_view(request, "company")


@workspace_view(CONTACTS_VIEW)
@require_POST
def company_view_delete(request: WorkspaceRequest, view_id: int) -> HttpResponse:
    return _delete_view(request, "company", view_id)


# --- Bulk actions ----------------------------------------------------------------------


@dataclass
class BulkRequest:
    """What a bulk form asked for: the ticked ids, the action and its value."""

    ids: list[int]
    action: str
    value: Any
    back: str
    problem: str = ""


def _bulk_request(request: WorkspaceRequest, list_name: str, stages: bool) -> BulkRequest:
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()][:1000]
    action = request.POST.get("action", "")
    if action == "apply":
        action = request.POST.get("change", "")
    back = f"{reverse(list_name)}?{request.POST.get('query_string', '')}"
    bulk = BulkRequest(ids, action, None, back)
    if not ids:
        bulk.problem = _("Tick the records to change first.")
    elif action == "export":
        if not request.membership.can(DATA_EXPORT):
            bulk.problem = _("Your role may not export data.")
    elif action == services.BulkAction.TAG:
        bulk.value = request.POST.get("tag", "").strip()
        if not bulk.value:
            bulk.problem = _("Name the tag to add.")
    elif action == services.BulkAction.ASSIGN:
        _param, bulk.value = owner_filter(request, request.POST.get("owner", ""))
        if bulk.value == "":
            bulk.problem = _("Choose a member to assign.")
    elif action == services.BulkAction.STAGE and stages:
        bulk.value = request.POST.get("stage", "")
    elif action != services.BulkAction.DELETE:
        bulk.problem = _("Choose what to do with the ticked records.")
    return bulk


def _bulk_done(request: WorkspaceRequest, action: str, changed: int) -> None:
    if action == services.BulkAction.DELETE:
        text = ngettext("%(count)d record deleted.", "%(count)d records deleted.", changed)
    else:
        text = ngettext("%(count)d record changed.", "%(count)d records changed.", changed)
    messages.success(request, text % {"count": changed})


LIST_ACTIONS = {"list_add", "list_remove"}


def _contact_list_action(request: WorkspaceRequest) -> HttpResponse:
    """Add the ticked contacts (or the whole filtered list) to a list, or unsubscribe them."""
    from patron.audience import lists
    from patron.audience.models import ConsentSource, MailingList
    from patron.core.signals import request_info

    back = f"{reverse('crm:contact_list')}?{request.POST.get('query_string', '')}"
    list_id = request.POST.get("mailing_list", "")
    mailing_list = (
        MailingList.objects.for_workspace(request.workspace)
        .select_related("workspace")
        .filter(pk=int(list_id) if list_id.isdigit() else 0)
        .first()
    )
    if mailing_list is None:
        messages.error(request, _("Choose a list."))
        return redirect(back)
    if request.POST.get("scope") == "all":
        # The whole filtered list, as the list's own parameters select it: set-based.
        filtered = QueryDict(request.POST.get("query_string", ""))
        request.GET = filtered  # type: ignore[assignment]
        contacts: Any = contact_query(request)[0]
    else:
        contacts = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
        if not contacts:
            messages.error(request, _("Tick the contacts first, or choose every contact listed."))
            return redirect(back)
    info = request_info(request)
    consent = lists.Consent(
        source=ConsentSource.MANUAL,
        ip_address=info.ip_address,
        user_agent=info.user_agent,
        actor=request.user,
        details={"bulk": True},
    )
    names = {"list": mailing_list.name}
    if request.POST.get("change") == "list_add":
        outcome = lists.subscribe_contacts(
            mailing_list=mailing_list, contacts=contacts, consent=consent
        )
        if outcome.status == "pending":
            text = ngettext(
                "%(count)d contact was sent the confirmation email for %(list)s.",
                "%(count)d contacts were sent the confirmation email for %(list)s.",
                outcome.count,
            )
        else:
            text = ngettext(
                "%(count)d contact subscribed to %(list)s.",
                "%(count)d contacts subscribed to %(list)s.",
                outcome.count,
            )
        messages.success(request, text % {**names, "count": outcome.count})
        if outcome.opted_out:
            messages.warning(
                request,
                ngettext(
                    "%(count)d had unsubscribed or been cleaned and was left out.",
                    "%(count)d had unsubscribed or been cleaned and were left out.",
                    outcome.opted_out,
                )
                % {"count": outcome.opted_out},
            )
    else:
        outcome = lists.unsubscribe_contacts(
            mailing_list=mailing_list, contacts=contacts, consent=consent
        )
        messages.success(
            request,
            ngettext(
                "%(count)d contact unsubscribed from %(list)s.",
                "%(count)d contacts unsubscribed from %(list)s.",
                outcome.count,
            )
            % {**names, "count": outcome.count},
        )
    return redirect(back)


@workspace_view(CONTACTS_EDIT)
@require_POST
def contact_bulk(request: WorkspaceRequest) -> HttpResponseBase:
    """Tag, assign, change the stage of, delete, export or (un)subscribe the ticked contacts."""
    if request.POST.get("action") == "apply" and request.POST.get("change") in LIST_ACTIONS:
        return _contact_list_action(request)
    bulk = _bulk_request(request, "crm:contact_list", stages=True)
    if bulk.problem:
        messages.error(request, bulk.problem)
        return redirect(bulk.back)
    if bulk.action == "export":
        from patron.crm.views_imports import export_contacts

        chosen = Contact.objects.for_workspace(request.workspace).filter(pk__in=bulk.ids)
        return export_contacts(request, chosen)
    try:
        changed = services.bulk_update_contacts(
            workspace=request.workspace,
            contact_ids=bulk.ids,
            action=bulk.action,
            value=bulk.value,
            actor=request.user,
        )
    except (services.InvalidField, services.InvalidTag) as exc:
        messages.error(request, str(exc))
    else:
        _bulk_done(request, bulk.action, changed)
    return redirect(bulk.back)


# --- The company list ----------------------------------------------------------------------

COMPANY_SORTS = {
    "name": gettext_lazy("Name"),
    "-created": gettext_lazy("Newest first"),
    "-size": gettext_lazy("Largest first"),
}
COMPANY_BUILT_IN_VIEWS: list[tuple[Any, dict[str, str]]] = [
    (gettext_lazy("All companies"), {}),
    (gettext_lazy("My companies"), {"owner": "me"}),
    (gettext_lazy("Without owner"), {"owner": "none"}),
    (gettext_lazy("Newest"), {"sort": "-created"}),
]


def company_query(request: WorkspaceRequest) -> tuple[Any, dict[str, Any]]:
    """The companies the list's parameters select, and the context to show them."""
    params, view = list_parameters(request, "company")
    query = params.get("q", "")
    tag = params.get("tag", "")
    sort = params.get("sort", "name")
    if sort not in COMPANY_SORTS:
        sort = "name"
    owner_param, owner = owner_filter(request, params.get("owner", ""))
    fields = services.field_definitions(request.workspace, CustomFieldObject.COMPANY)
    conditions, chosen = custom_conditions(request, params, fields)
    companies = selectors.search_companies(
        request.workspace, query=query, tag=tag, owner=owner, custom=conditions, sort=sort
    )
    filters = {
        "q": query,
        "tag": tag,
        "owner": owner_param,
        "sort": sort if sort != "name" else "",
        **{custom_fields.FORM_PREFIX + key: value for key, value in chosen.items()},
    }
    query_string = urlencode({k: v for k, v in filters.items() if v})
    return companies, {
        "query": query,
        "tag": tag,
        "tags": selectors.tags(request.workspace),
        "owner": owner_param,
        "members": active_users(request.workspace),
        "sort": sort,
        "sorts": COMPANY_SORTS.items(),
        "custom_filters": [
            (field, chosen.get(field.key, ""))
            for field in fields
            if field.field_type in FILTERABLE_IN_LIST
        ],
        "condition_fields": fields,
        "operators": custom_fields.OPERATOR_LABELS.items(),
        "chips": condition_chips(fields, chosen, filters),
        "active_conditions": [
            (custom_fields.FORM_PREFIX + name, value)
            for name, value in chosen.items()
            if "__" in name
        ],
        "filtered": bool(query or tag or chosen or owner_param),
        "query_string": query_string,
        "current_view": view,
        "saved_views": _visible_views(request, "company"),
        "built_in_views": [(label, urlencode(p)) for label, p in COMPANY_BUILT_IN_VIEWS],
    }


@workspace_view(CONTACTS_VIEW)
def company_list(request: WorkspaceRequest) -> HttpResponse:
    companies, context = company_query(request)
    context["page_obj"] = SeekPage(companies, request.GET.get("page"), PAGE_SIZE)
    template = "crm/_company_rows.html" if request.htmx else "crm/company_list.html"
    return render(request, template, context)


@workspace_view(CONTACTS_EDIT)
@require_POST
def company_bulk(request: WorkspaceRequest) -> HttpResponseBase:
    """Tag, assign, delete or export the ticked companies."""
    bulk = _bulk_request(request, "crm:company_list", stages=False)
    if bulk.problem:
        messages.error(request, bulk.problem)
        return redirect(bulk.back)
    if bulk.action == "export":
        from patron.crm.views_imports import export_companies

        chosen = Company.objects.for_workspace(request.workspace).filter(pk__in=bulk.ids)
        return export_companies(request, chosen)
    try:
        changed = services.bulk_update_companies(
            workspace=request.workspace, company_ids=bulk.ids, action=bulk.action, value=bulk.value
        )
    except services.InvalidTag as exc:
        messages.error(request, str(exc))
    else:
        _bulk_done(request, bulk.action, changed)
    return redirect(bulk.back)


# --- The deal list ------------------------------------------------------------------------


def deal_query(request: WorkspaceRequest) -> tuple[Any, dict[str, Any]]:
    """The deals the list's filters select, and the context to show them."""
    from patron.crm.meetings import month_bounds

    params, view = list_parameters(request, "deal")
    pipelines = selectors.pipelines(request.workspace)
    pipeline = None
    if params.get("pipeline", "").isdigit():
        pipeline = pipelines.filter(pk=int(params["pipeline"])).first()
    outcome = params.get("outcome", "")
    if outcome not in StageOutcome.values:
        outcome = ""
    query = params.get("q", "")
    owner_param, owner = owner_filter(request, params.get("owner", ""))
    closing = params.get("closing", "")
    closing_between = None
    if closing == "this_month":
        _first, _last, month_start, month_end = month_bounds(timezone.localdate())
        closing_between = (month_start, month_end)
    else:
        closing = ""
    fields = services.field_definitions(request.workspace, CustomFieldObject.DEAL)
    conditions, chosen = custom_conditions(request, params, fields)
    deals = selectors.search_deals(
        request.workspace,
        pipeline=pipeline,
        outcome=outcome,
        query=query,
        owner=owner,
        closing_between=closing_between,
        custom=conditions,
    )
    filters = {
        "pipeline": pipeline.pk if pipeline else "",
        "outcome": outcome,
        "q": query,
        "owner": owner_param,
        "closing": closing,
        **{custom_fields.FORM_PREFIX + key: value for key, value in chosen.items()},
    }
    return deals, {
        "pipelines": pipelines,
        "pipeline": pipeline,
        "outcome": outcome,
        "outcomes": StageOutcome.choices,
        "owner": owner_param,
        "closing": closing,
        "custom_filters": [
            (field, chosen.get(field.key, ""))
            for field in fields
            if field.field_type in FILTERABLE_IN_LIST
        ],
        "query": query,
        "query_string": urlencode({k: v for k, v in filters.items() if v}),
        "members": active_users(request.workspace),
        "current_view": view,
        "saved_views": _visible_views(request, "deal"),
        # The same order as query_string writes them, so the active view is marked.
        "built_in_views": [
            (_("All deals"), ""),
            (_("Open deals"), "outcome=open"),
            (_("My open deals"), "outcome=open&owner=me"),
            (_("Closing this month"), "outcome=open&closing=this_month"),
            (_("Won"), "outcome=won"),
        ],
    }


@workspace_view(DEALS_VIEW)
def deal_list(request: WorkspaceRequest) -> HttpResponse:
    deals, context = deal_query(request)
    context["page_obj"] = SeekPage(deals, request.GET.get("page"), PAGE_SIZE)
    return render(request, "crm/deal_list.html", context)


@workspace_view(DEALS_VIEW)
@require_POST
def deal_view_save(request: WorkspaceRequest) -> HttpResponse:
    return _save_view(request, "deal")


@workspace_view(DEALS_VIEW)
@require_POST
def deal_view_delete(request: WorkspaceRequest, view_id: int) -> HttpResponse:
    return _delete_view(request, "deal", view_id)


@workspace_view(DEALS_EDIT)
@require_POST
def deal_bulk(request: WorkspaceRequest) -> HttpResponseBase:
    """Assign, delete or export the ticked deals."""
    bulk = _bulk_request(request, "crm:deal_list", stages=False)
    if bulk.problem:
        messages.error(request, bulk.problem)
        return redirect(bulk.back)
    if bulk.action == "export":
        from patron.crm import exporter
        from patron.crm.views_imports import export_csv

        chosen = Deal.objects.for_workspace(request.workspace).filter(pk__in=bulk.ids)
        rows = exporter.deal_rows(chosen, request.workspace.pk)
        return export_csv(request, "deals", rows, len(bulk.ids))
    if bulk.action not in {services.BulkAction.ASSIGN, services.BulkAction.DELETE}:
        messages.error(request, _("Choose what to do with the ticked records."))
        return redirect(bulk.back)
    changed = services.bulk_update_deals(
        workspace=request.workspace, deal_ids=bulk.ids, action=bulk.action, value=bulk.value
    )
    _bulk_done(request, bulk.action, changed)
    return redirect(bulk.back)
