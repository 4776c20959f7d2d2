"""Record lists: filters (custom fields included), sort, columns, saved views, bulk actions.

Every filter is a query parameter, so a list is a URL: saved views store the
parameters, and exports, counts and bulk actions on "every record that
matches" read the same ones. The machinery here serves the contact, company,
deal, task and ticket lists alike: each list declares its columns, sorts and
built-in views in a ``ListSpec``, applies its own filters to the parameters
``read_list`` returns, and hands its bulk actions to ``run_bulk``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.contrib import messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.db.models import Q, QuerySet
from django.http import HttpResponse, HttpResponseBase, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from patron.core.decorators import View, workspace_view
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
from patron.crm import bulk_actions, custom_fields, selectors, services
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
    Stage,
    StageOutcome,
)

PAGE_SIZE = 50
COUNT_CAP = 10_000
# Ticked on a page: a page or two. "Every record that matches" has no such limit.
MAX_TICKED = 1000
FILTERABLE_IN_LIST = {FieldType.SINGLE_SELECT, FieldType.MULTI_SELECT, FieldType.BOOLEAN}
NO_VALUE = {custom_fields.Operator.IS_EMPTY, custom_fields.Operator.IS_NOT_EMPTY}


# --- Columns ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column a list may show: its heading and how a record gives its value.

    ``link`` gives the URL the value links to (or ""); a column with a
    ``permission`` is offered only to members who hold it.
    """

    label: Any
    value: Callable[[Any], Any]
    link: Callable[[Any], str] | None = None
    numeric: bool = False
    permission: str = ""


@dataclass(frozen=True)
class Cell:
    text: Any
    url: str = ""
    numeric: bool = False

    def __str__(self) -> str:
        return "" if self.text is None else str(self.text)


def day(value: date | datetime | None) -> str:
    """A date, or the local date of a moment, in the short format; "" for none."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = timezone.localtime(value)
    return date_format(value, "SHORT_DATE_FORMAT")


def moment(value: datetime | None) -> str:
    return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT") if value else ""


def person(user: User | None) -> str:
    return user.display_name if user else ""


def record_link(name: str, attribute: str) -> Callable[[Any], str]:
    """The URL of the related record ``attribute`` (by its id) at the page ``crm:<name>``."""

    def link(row: Any) -> str:
        pk = getattr(row, f"{attribute}_id")
        return reverse(f"crm:{name}", args=[pk]) if pk else ""

    return link


def related(attribute: str, name: str, label: Any, permission: str = "") -> Column:
    """A column showing a related record (a contact, company, deal...) as a link to it."""
    return Column(
        label,
        lambda row: getattr(row, attribute) or "",
        record_link(name, attribute),
        permission=permission,
    )


# --- A list's declaration and its parameters -------------------------------------------


@dataclass(frozen=True)
class ListSpec:
    """What one list offers: columns, sorts and built-in views.

    ``object_type`` names the saved views' type and the URLs ``crm:<type>_list``;
    ``custom_object`` the custom fields that filter and show as ``cf_<key>``
    columns (none for tasks). Built-in views are (label, query string) in the
    order the list writes its query string, so the active one is marked.
    """

    object_type: str
    columns: dict[str, Column]
    default_columns: tuple[str, ...]
    sorts: dict[str, Any]
    default_sort: str
    built_in_views: tuple[tuple[Any, str], ...] = ()
    custom_object: str = ""


def _visible_views(request: WorkspaceRequest, object_type: str = "contact") -> Any:
    return (
        SavedView.objects.for_workspace(request.workspace)
        .filter(object_type=object_type)
        .filter(Q(owner=request.user) | Q(shared=True))
        .select_related("owner")
    )


def list_parameters(
    request: WorkspaceRequest, object_type: str = "contact", data: QueryDict | None = None
) -> tuple[dict[str, str], SavedView | None]:
    """The list's parameters: a saved view's, overridden by those in the URL (or ``data``)."""
    data = request.GET if data is None else data
    params: dict[str, str] = {}
    view = None
    view_id = data.get("view", "")
    if view_id.isdigit():
        view = _visible_views(request, object_type).filter(pk=int(view_id)).first()
        if view is not None:
            params.update(view.query)
    for key in data:
        if key in {"view", "page"}:
            continue
        if key == "col":
            params["cols"] = ",".join(data.getlist("col"))
        else:
            params[key] = data.get(key, "")
    _add_condition(params)
    return params, view


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
    """ "me", "none" or a member's id as (the value kept, the member or None); else ("", "")."""
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


@dataclass
class ListState:
    """A list's parameters read once: the saved view, custom conditions, sort, columns."""

    request: WorkspaceRequest
    spec: ListSpec
    params: dict[str, str]
    view: SavedView | None
    fields: list[CustomField]
    conditions: list[custom_fields.Condition]
    chosen: dict[str, str]
    sort: str
    columns: list[tuple[str, Any]]
    filters: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.params.get(name, default)

    def choice(self, name: str, allowed: Any, default: str = "") -> str:
        """The parameter if it is one of ``allowed``, else ``default``."""
        value = self.params.get(name, default)
        return value if value in allowed else default

    def context(self, filters: dict[str, Any], *, filtered: bool) -> dict[str, Any]:
        """The template context every list shares; ``filters`` are the list's own, in order."""
        spec = self.spec
        keys = [key for key, _label in self.columns]
        self.filters = {
            **filters,
            "sort": self.sort if self.sort != spec.default_sort else "",
            "cols": ",".join(keys) if keys != list(spec.default_columns) else "",
            **{custom_fields.FORM_PREFIX + key: value for key, value in self.chosen.items()},
        }
        custom = {custom_fields.FORM_PREFIX + f.key: f for f in self.fields}
        return {
            "filters": self.filters,
            "query_string": urlencode({k: v for k, v in self.filters.items() if v}),
            "current_view": self.view,
            "saved_views": _visible_views(self.request, spec.object_type),
            "built_in_views": spec.built_in_views,
            "sort": self.sort,
            "sorts": spec.sorts.items(),
            "members": active_users(self.request.workspace),
            "custom_filters": [
                (f, self.chosen.get(f.key, ""))
                for f in self.fields
                if f.field_type in FILTERABLE_IN_LIST
            ],
            "custom_fields": custom,
            "condition_fields": self.fields,
            "operators": custom_fields.OPERATOR_LABELS.items(),
            "chips": condition_chips(self.fields, self.chosen, self.filters),
            "active_conditions": [
                (custom_fields.FORM_PREFIX + name, value)
                for name, value in self.chosen.items()
                if "__" in name
            ],
            "columns": self.columns,
            "numeric_columns": {
                key for key in keys if key in spec.columns and spec.columns[key].numeric
            },
            "column_choices": [
                *[(key, column.label) for key, column in _offered(self.request, spec).items()],
                *[(key, f.label) for key, f in custom.items()],
            ],
            "chosen_columns": set(keys),
            "filtered": filtered or bool(self.chosen),
        }


def _offered(request: WorkspaceRequest, spec: ListSpec) -> dict[str, Column]:
    return {
        key: column
        for key, column in spec.columns.items()
        if not column.permission or request.membership.can(column.permission)
    }


def _chosen_columns(
    request: WorkspaceRequest, spec: ListSpec, params: dict[str, str], fields: list[CustomField]
) -> list[tuple[str, Any]]:
    offered = _offered(request, spec)
    custom = {custom_fields.FORM_PREFIX + f.key: f for f in fields}
    wanted = [c for c in params.get("cols", "").split(",") if c] or list(spec.default_columns)
    columns = []
    for key in dict.fromkeys(wanted):
        if key in offered:
            columns.append((key, offered[key].label))
        elif key in custom:
            columns.append((key, custom[key].label))
    return columns or [(key, offered[key].label) for key in spec.default_columns if key in offered]


def read_list(
    request: WorkspaceRequest, spec: ListSpec, data: QueryDict | None = None
) -> ListState:
    """Read a list's parameters (from the URL, or ``data``) for its query to apply."""
    params, view = list_parameters(request, spec.object_type, data)
    fields = (
        services.field_definitions(request.workspace, spec.custom_object)
        if spec.custom_object
        else []
    )
    conditions, chosen = custom_conditions(request, params, fields)
    sort = params.get("sort", spec.default_sort)
    if sort not in spec.sorts:
        sort = spec.default_sort
    columns = _chosen_columns(request, spec, params, fields)
    return ListState(request, spec, params, view, fields, conditions, chosen, sort, columns)


def table_rows(spec: ListSpec, context: dict[str, Any], records: Any) -> list[tuple[Any, list]]:
    """(record, cells) for the chosen columns of each record shown."""
    custom = context["custom_fields"]
    keys = [key for key, _label in context["columns"]]
    rows = []
    for record_ in records:
        cells = []
        for key in keys:
            column = spec.columns.get(key)
            if column is not None:
                url = column.link(record_) if column.link else ""
                cells.append(Cell(column.value(record_), url, column.numeric))
            else:
                cf = custom[key]
                cells.append(Cell(custom_fields.display(cf, record_.custom.get(cf.key))))
        rows.append((record_, cells))
    return rows


ListQuery = Callable[..., tuple[Any, dict[str, Any]]]


def render_list(
    request: WorkspaceRequest,
    spec: ListSpec,
    query: ListQuery,
    template: str,
    partial: str = "",
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    """A page of the list with the chosen columns; only the rows for htmx requests."""
    records, context = query(request)
    page = SeekPage(records, request.GET.get("page"), PAGE_SIZE)
    context.update(extra or {})
    context["page_obj"] = page
    context["rows"] = table_rows(spec, context, page)
    return render(request, partial if partial and request.htmx else template, context)


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


def view_endpoints(object_type: str, permission: str) -> tuple[View, View]:
    """The save and delete endpoints of one list's saved views."""

    @workspace_view(permission)
    @require_POST
    def save(request: WorkspaceRequest) -> HttpResponse:
        return _save_view(request, object_type)

    @workspace_view(permission)
    @require_POST
    def delete(request: WorkspaceRequest, view_id: int) -> HttpResponse:
        return _delete_view(request, object_type, view_id)

    save.__name__ = f"{object_type}_view_save"
    delete.__name__ = f"{object_type}_view_delete"
    return save, delete


# --- Bulk actions ----------------------------------------------------------------------

# How a bulk action reads its value from the form: (value, problem or "").
ValueReader = Callable[[WorkspaceRequest], tuple[Any, str]]


def no_value(request: WorkspaceRequest) -> tuple[Any, str]:
    return None, ""


def tag_value(request: WorkspaceRequest) -> tuple[Any, str]:
    value = request.POST.get("tag", "").strip()
    return value, "" if value else _("Name the tag to add.")


def member_value(request: WorkspaceRequest) -> tuple[Any, str]:
    """A member of the workspace, or None for "nobody"."""
    _param, value = owner_filter(request, request.POST.get("owner", ""))
    return value, _("Choose a member to assign.") if value == "" else ""


def choice_value(name: str, choices: Any, problem: Any) -> ValueReader:
    """One of ``choices`` posted as ``name``."""

    def read(request: WorkspaceRequest) -> tuple[Any, str]:
        value = request.POST.get(name, "")
        return value, "" if value in choices else str(problem)

    return read


@dataclass
class BulkRequest:
    """What a bulk form asked for: the ticked ids (or every match), the action and its value."""

    ids: list[int]
    action: str
    value: Any
    back: str
    everything: bool
    query: QueryDict
    problem: str = ""


@dataclass(frozen=True)
class BulkList:
    """One list's bulk actions.

    ``query(request, data)`` is the list's query, for "every record that
    matches"; ``apply(request, bulk, ids)`` makes one change to the records
    ``ids`` selects (a subquery of ids, scoped to the workspace again by the
    service) and returns how many changed (or None when it has put its own
    message); ``export(request, records)``
    answers with a CSV of the records.
    """

    list_name: str
    url_name: str
    model: Any
    query: ListQuery
    actions: dict[str, ValueReader]
    apply: Callable[[WorkspaceRequest, BulkRequest, QuerySet], int | None]
    export: Callable[[WorkspaceRequest, QuerySet], HttpResponseBase]
    # The choices of the form's "with the ticked records" select (delete is a button).
    options: tuple[tuple[str, Any], ...] = ()
    errors: tuple[type[Exception], ...] = (ValueError,)


def bulk_form(
    request: WorkspaceRequest,
    config: BulkList,
    form_id: str,
    label: Any,
    delete_confirm: Any,
    **choices: Any,
) -> dict[str, Any]:
    """What ``_bulk_form.html`` shows: the actions this member may take, and their choices."""
    options = list(config.options)
    if request.membership.can(DATA_EXPORT):
        options.append(("export", _("Export to CSV")))
    return {
        "id": form_id,
        "url": reverse(config.url_name),
        "label": label,
        "options": options,
        "actions": set(config.actions),
        "delete_confirm": delete_confirm,
        **choices,
    }


def read_bulk(request: WorkspaceRequest, config: BulkList) -> BulkRequest:
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()][:MAX_TICKED]
    action = request.POST.get("action", "")
    if action == "apply":
        action = request.POST.get("change", "")
    query_string = request.POST.get("query_string", "")
    back = f"{reverse(config.list_name)}?{query_string}"
    everything = request.POST.get("scope") == "all"
    bulk = BulkRequest(ids, action, None, back, everything, QueryDict(query_string))
    if not ids and not everything:
        bulk.problem = _("Tick the records to change first.")
    elif action == "export":
        if not request.membership.can(DATA_EXPORT):
            bulk.problem = _("Your role may not export data.")
    elif action in config.actions:
        bulk.value, bulk.problem = config.actions[action](request)
    else:
        bulk.problem = _("Choose what to do with the ticked records.")
    return bulk


BULK_LABELS = {
    "tag": gettext_lazy("Add the tag “%(value)s”"),
    "assign": gettext_lazy("Assign to %(value)s"),
    "stage": gettext_lazy("Move to %(value)s"),
    "status": gettext_lazy("Set the status to %(value)s"),
    "priority": gettext_lazy("Set the priority to %(value)s"),
    "complete": gettext_lazy("Mark as done"),
    "reopen": gettext_lazy("Reopen"),
    "delete": gettext_lazy("Delete them"),
    "list_add": gettext_lazy("Add to the list %(value)s"),
    "list_remove": gettext_lazy("Unsubscribe from the list %(value)s"),
}


def _describe(bulk: BulkRequest) -> str:
    value = bulk.value
    if bulk.action == "assign":
        value = person(value) or _("nobody")
    elif isinstance(value, Stage) or bulk.action in LIST_ACTIONS:
        value = value.name
    label = BULK_LABELS.get(bulk.action, bulk.action)
    return str(label) % {"value": value} if "%(value)s" in str(label) else str(label)


def _bulk_done(request: WorkspaceRequest, action: str, changed: int) -> None:
    if action == services.BulkAction.DELETE:
        text = ngettext("%(count)d record deleted.", "%(count)d records deleted.", changed)
    else:
        text = ngettext("%(count)d record changed.", "%(count)d records changed.", changed)
    messages.success(request, text % {"count": changed})


def run_bulk(request: WorkspaceRequest, config: BulkList) -> HttpResponseBase:
    """Apply a bulk form to the ticked records, or to every record the list's filters match.

    A change to every match is confirmed on a page that says how many records
    it touches before it is made; the ticked records are confirmed in the
    browser (deleting) or not at all.
    """
    bulk = read_bulk(request, config)
    if bulk.problem:
        messages.error(request, bulk.problem)
        return redirect(bulk.back)
    if bulk.everything:
        records, _context = config.query(request, bulk.query)
    else:
        records = config.model.objects.for_workspace(request.workspace).filter(pk__in=bulk.ids)
    if bulk.action == "export":
        return config.export(request, records)
    if bulk.everything and request.POST.get("confirmed") != "yes":
        return render(
            request,
            "crm/bulk_confirm.html",
            {
                "count": records.order_by().count(),
                "description": _describe(bulk),
                "action": bulk.action,
                "posted": [
                    (key, value)
                    for key in request.POST
                    if key not in {"csrfmiddlewaretoken", "confirmed"}
                    for value in request.POST.getlist(key)
                ],
                "back": bulk.back,
            },
        )
    try:
        changed = config.apply(request, bulk, records.order_by().values("pk"))
    except config.errors as exc:
        messages.error(request, str(exc))
    else:
        if changed is not None:  # None: the action said what it did itself
            _bulk_done(request, bulk.action, changed)
    return redirect(bulk.back)


# --- The contact list ------------------------------------------------------------------

CONTACT_SPEC = ListSpec(
    object_type="contact",
    columns={
        "email": Column(gettext_lazy("Email"), lambda c: c.email),
        "company": related("company", "company_detail", gettext_lazy("Company")),
        "lifecycle_stage": Column(
            gettext_lazy("Lifecycle stage"), lambda c: c.get_lifecycle_stage_display()
        ),
        "owner": Column(gettext_lazy("Owner"), lambda c: person(c.owner)),
        "phone": Column(gettext_lazy("Phone"), lambda c: c.phone),
        "job_title": Column(gettext_lazy("Job title"), lambda c: c.job_title),
        "city": Column(gettext_lazy("City"), lambda c: c.city),
        "country": Column(gettext_lazy("Country"), lambda c: c.country),
        "score": Column(gettext_lazy("Score"), lambda c: c.score),
        "source": Column(gettext_lazy("Source"), lambda c: c.source),
        "created": Column(gettext_lazy("Created"), lambda c: day(c.created_at)),
        "last_activity": Column(gettext_lazy("Last activity"), lambda c: day(c.last_activity_at)),
    },
    default_columns=("email", "company", "lifecycle_stage", "owner"),
    sorts={
        "-created": gettext_lazy("Newest first"),
        "-last_activity": gettext_lazy("Recent activity"),
        "name": gettext_lazy("Name"),
        "email": gettext_lazy("Email"),
        "-score": gettext_lazy("Highest score"),
    },
    default_sort="-created",
    built_in_views=(
        (gettext_lazy("All contacts"), ""),
        (gettext_lazy("My contacts"), "owner=me"),
        (gettext_lazy("Without owner"), "owner=none"),
        (gettext_lazy("Recently active"), "sort=-last_activity"),
        (gettext_lazy("Customers"), urlencode({"stage": LifecycleStage.CUSTOMER})),
    ),
    custom_object=CustomFieldObject.CONTACT,
)


def contact_query(
    request: WorkspaceRequest, data: QueryDict | None = None
) -> tuple[Any, dict[str, Any]]:
    """The contacts the list's parameters select, and the context to show them."""
    from patron.audience.segments import segment_filter

    state = read_list(request, CONTACT_SPEC, data)
    query = state.get("q")
    stage = state.choice("stage", LifecycleStage.values)
    tag = state.get("tag")
    owner_param, owner = owner_filter(request, state.get("owner"))
    contacts = selectors.search_contacts(
        request.workspace,
        query=query,
        lifecycle_stage=stage,
        tag=tag,
        owner=owner,
        custom=state.conditions,
        sort=state.sort,
    )
    segment, segment_q = segment_filter(request.workspace, state.get("segment"))
    contacts = contacts.filter(segment_q)
    filters = {
        "segment": str(segment.pk) if segment else "",
        "q": query,
        "stage": stage,
        "tag": tag,
        "owner": owner_param,
    }
    context = state.context(filters, filtered=bool(query or stage or tag or owner_param or segment))
    context["chips"] += segment_chip(segment, state.filters)
    if segment:
        context["active_conditions"].append(("segment", filters["segment"]))
    context.update(
        {
            "query": query,
            "stage": stage,
            "stages": LifecycleStage.choices,
            "tag": tag,
            "tags": selectors.tags(request.workspace),
            "owner": owner_param,
        }
    )
    return contacts, context


@workspace_view(CONTACTS_VIEW)
def contact_list(request: WorkspaceRequest) -> HttpResponse:
    from patron.audience.models import MailingList

    bulk = bulk_form(
        request,
        CONTACT_BULK,
        "bulk-form",
        _("With the ticked contacts"),
        _("Delete the ticked contacts? This cannot be undone."),
        mailing_lists=MailingList.objects.for_workspace(request.workspace).only("id", "name"),
    )
    if not bulk["mailing_lists"]:
        bulk["options"] = [o for o in bulk["options"] if o[0] not in LIST_ACTIONS]
    return render_list(
        request,
        CONTACT_SPEC,
        contact_query,
        "crm/contact_list.html",
        "crm/_contact_rows.html",
        extra={"bulk": bulk},
    )


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


def _export_contacts(request: WorkspaceRequest, records: QuerySet) -> HttpResponseBase:
    from patron.crm.views_imports import export_contacts

    return export_contacts(request, records)


LIST_ACTIONS = {"list_add", "list_remove"}


def _mailing_list_value(request: WorkspaceRequest) -> tuple[Any, str]:
    from patron.audience.models import MailingList

    list_id = request.POST.get("mailing_list", "")
    mailing_list = (
        MailingList.objects.for_workspace(request.workspace)
        .select_related("workspace")
        .filter(pk=int(list_id) if list_id.isdigit() else 0)
        .first()
    )
    return mailing_list, "" if mailing_list is not None else _("Choose a list.")


def _apply_list_action(request: WorkspaceRequest, bulk: BulkRequest, ids: QuerySet) -> None:
    """Subscribe the contacts to a list, or unsubscribe them (set-based), and say so."""
    from patron.audience import lists
    from patron.audience.models import ConsentSource
    from patron.core.signals import request_info

    info = request_info(request)
    consent = lists.Consent(
        source=ConsentSource.MANUAL,
        ip_address=info.ip_address,
        user_agent=info.user_agent,
        actor=request.user,
        details={"bulk": True},
    )
    mailing_list = bulk.value
    contacts = Contact.objects.for_workspace(request.workspace).filter(pk__in=ids)
    names = {"list": mailing_list.name}
    if bulk.action == "list_remove":
        outcome = lists.unsubscribe_contacts(
            mailing_list=mailing_list, contacts=contacts, consent=consent
        )
        text = ngettext(
            "%(count)d contact unsubscribed from %(list)s.",
            "%(count)d contacts unsubscribed from %(list)s.",
            outcome.count,
        )
        messages.success(request, text % {**names, "count": outcome.count})
        return
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


def _apply_to_contacts(request: WorkspaceRequest, bulk: BulkRequest, ids: QuerySet) -> int | None:
    if bulk.action in LIST_ACTIONS:
        _apply_list_action(request, bulk, ids)
        return None
    return services.bulk_update_contacts(
        workspace=request.workspace,
        contact_ids=ids,
        action=bulk.action,
        value=bulk.value,
        actor=request.user,
    )


CONTACT_BULK = BulkList(
    list_name="crm:contact_list",
    url_name="crm:contact_bulk",
    model=Contact,
    query=contact_query,
    actions={
        "tag": tag_value,
        "assign": member_value,
        "stage": lambda request: (request.POST.get("stage", ""), ""),  # the service checks it
        "list_add": _mailing_list_value,
        "list_remove": _mailing_list_value,
        "delete": no_value,
    },
    apply=_apply_to_contacts,
    export=_export_contacts,
    options=(
        ("tag", gettext_lazy("Add the tag")),
        ("assign", gettext_lazy("Assign to")),
        ("stage", gettext_lazy("Set the lifecycle stage")),
        ("list_add", gettext_lazy("Add to list")),
        ("list_remove", gettext_lazy("Unsubscribe from list")),
    ),
    errors=(services.InvalidField, services.InvalidTag),
)


contact_view_save, contact_view_delete = view_endpoints("contact", CONTACTS_VIEW)


@workspace_view(CONTACTS_EDIT)
@require_POST
def contact_bulk(request: WorkspaceRequest) -> HttpResponseBase:
    """Tag, assign, change the stage of, delete or export the ticked (or all) contacts."""
    return run_bulk(request, CONTACT_BULK)


# --- The company list ----------------------------------------------------------------------

COMPANY_SPEC = ListSpec(
    object_type="company",
    columns={
        "domain": Column(gettext_lazy("Domain"), lambda c: c.domain),
        "industry": Column(gettext_lazy("Industry"), lambda c: c.industry),
        "size": Column(
            gettext_lazy("Employees"),
            lambda c: intcomma(c.size) if c.size is not None else "",
            numeric=True,
        ),
        "contacts": Column(gettext_lazy("Contacts"), lambda c: c.contact_count, numeric=True),
        "owner": Column(gettext_lazy("Owner"), lambda c: person(c.owner)),
        "phone": Column(gettext_lazy("Phone"), lambda c: c.phone),
        "city": Column(gettext_lazy("City"), lambda c: c.city),
        "country": Column(gettext_lazy("Country"), lambda c: c.country),
        "annual_revenue": Column(
            gettext_lazy("Annual revenue"),
            lambda c: intcomma(c.annual_revenue) if c.annual_revenue is not None else "",
            numeric=True,
        ),
        "created": Column(gettext_lazy("Created"), lambda c: day(c.created_at)),
    },
    default_columns=("domain", "industry", "size", "contacts"),
    sorts={
        "name": gettext_lazy("Name"),
        "-created": gettext_lazy("Newest first"),
        "-size": gettext_lazy("Largest first"),
    },
    default_sort="name",
    built_in_views=(
        (gettext_lazy("All companies"), ""),
        (gettext_lazy("My companies"), "owner=me"),
        (gettext_lazy("Without owner"), "owner=none"),
        (gettext_lazy("Newest"), "sort=-created"),
    ),
    custom_object=CustomFieldObject.COMPANY,
)


def company_query(
    request: WorkspaceRequest, data: QueryDict | None = None
) -> tuple[Any, dict[str, Any]]:
    """The companies the list's parameters select, and the context to show them."""
    state = read_list(request, COMPANY_SPEC, data)
    query = state.get("q")
    tag = state.get("tag")
    owner_param, owner = owner_filter(request, state.get("owner"))
    companies = selectors.search_companies(
        request.workspace,
        query=query,
        tag=tag,
        owner=owner,
        custom=state.conditions,
        sort=state.sort,
    )
    filters = {"q": query, "tag": tag, "owner": owner_param}
    context = state.context(filters, filtered=bool(query or tag or owner_param))
    context.update(
        {
            "query": query,
            "tag": tag,
            "tags": selectors.tags(request.workspace),
            "owner": owner_param,
        }
    )
    return companies, context


def _export_companies(request: WorkspaceRequest, records: QuerySet) -> HttpResponseBase:
    from patron.crm.views_imports import export_companies

    return export_companies(request, records)


COMPANY_BULK = BulkList(
    list_name="crm:company_list",
    url_name="crm:company_bulk",
    model=Company,
    query=company_query,
    actions={"tag": tag_value, "assign": member_value, "delete": no_value},
    apply=lambda request, bulk, ids: services.bulk_update_companies(
        workspace=request.workspace,
        company_ids=ids,
        action=bulk.action,
        value=bulk.value,
        actor=request.user,
    ),
    export=_export_companies,
    options=(("tag", gettext_lazy("Add the tag")), ("assign", gettext_lazy("Assign to"))),
    errors=(services.InvalidTag,),
)


@workspace_view(CONTACTS_VIEW)
def company_list(request: WorkspaceRequest) -> HttpResponse:
    bulk = bulk_form(
        request,
        COMPANY_BULK,
        "company-bulk-form",
        _("With the ticked companies"),
        _("Delete the ticked companies? Their people stay, without this company."),
    )
    return render_list(
        request,
        COMPANY_SPEC,
        company_query,
        "crm/company_list.html",
        "crm/_company_rows.html",
        extra={"bulk": bulk},
    )


company_view_save, company_view_delete = view_endpoints("company", CONTACTS_VIEW)


@workspace_view(CONTACTS_EDIT)
@require_POST
def company_bulk(request: WorkspaceRequest) -> HttpResponseBase:
    """Tag, assign, delete or export the ticked (or all) companies."""
    return run_bulk(request, COMPANY_BULK)


# --- The deal list ------------------------------------------------------------------------


def _money(amount: Any, currency: str) -> str:
    from patron.core.templatetags.patron import money

    return money(amount, currency)


DEAL_SPEC = ListSpec(
    object_type="deal",
    columns={
        "stage": Column(gettext_lazy("Stage"), lambda d: d.stage.name),
        "pipeline": Column(gettext_lazy("Pipeline"), lambda d: d.pipeline.name),
        "amount": Column(
            gettext_lazy("Amount"), lambda d: _money(d.amount, d.currency), numeric=True
        ),
        "weighted": Column(
            gettext_lazy("Expected revenue"),
            lambda d: _money(d.weighted_amount, d.currency),
            numeric=True,
        ),
        "close": Column(
            gettext_lazy("Expected close"), lambda d: day(d.expected_close_date) or "—"
        ),
        "company": related("company", "company_detail", gettext_lazy("Company")),
        "owner": Column(gettext_lazy("Owner"), lambda d: person(d.owner)),
        "source": Column(gettext_lazy("Source"), lambda d: d.source),
        "created": Column(gettext_lazy("Created"), lambda d: day(d.created_at)),
        "stage_changed": Column(gettext_lazy("In stage since"), lambda d: day(d.stage_changed_at)),
        "closed": Column(gettext_lazy("Closed"), lambda d: day(d.closed_at)),
    },
    default_columns=("stage", "amount", "weighted", "close", "company", "owner"),
    sorts={
        "close": gettext_lazy("Expected close"),
        "-amount": gettext_lazy("Largest first"),
        "-created": gettext_lazy("Newest first"),
        "-stage_changed": gettext_lazy("Recently moved"),
        "name": gettext_lazy("Name"),
    },
    default_sort="close",
    built_in_views=(
        (gettext_lazy("All deals"), ""),
        (gettext_lazy("Open deals"), "outcome=open"),
        (gettext_lazy("My open deals"), "outcome=open&owner=me"),
        (gettext_lazy("Closing this month"), "outcome=open&closing=this_month"),
        (gettext_lazy("Won"), "outcome=won"),
    ),
    custom_object=CustomFieldObject.DEAL,
)


def deal_query(
    request: WorkspaceRequest, data: QueryDict | None = None
) -> tuple[Any, dict[str, Any]]:
    """The deals the list's filters select, and the context to show them."""
    from patron.crm.meetings import month_bounds

    state = read_list(request, DEAL_SPEC, data)
    pipelines = selectors.pipelines(request.workspace)
    pipeline = None
    if state.get("pipeline").isdigit():
        pipeline = pipelines.filter(pk=int(state.get("pipeline"))).first()
    # A stage's deals (the reports link here from a bar of "pipeline by stage").
    stage = None
    if state.get("stage").isdigit():
        stage = (
            Stage.objects.for_workspace(request.workspace)
            .filter(pk=int(state.get("stage")))
            .first()
        )
    outcome = state.choice("outcome", StageOutcome.values)
    query = state.get("q")
    owner_param, owner = owner_filter(request, state.get("owner"))
    closing = state.choice("closing", {"this_month"})
    closing_between = None
    if closing:
        _first, _last, month_start, month_end = month_bounds(timezone.localdate())
        closing_between = (month_start, month_end)
    deals = selectors.search_deals(
        request.workspace,
        pipeline=pipeline,
        stage=stage,
        outcome=outcome,
        query=query,
        owner=owner,
        closing_between=closing_between,
        custom=state.conditions,
        sort=state.sort,
    )
    filters = {
        "pipeline": pipeline.pk if pipeline else "",
        "stage": stage.pk if stage else "",
        "outcome": outcome,
        "q": query,
        "owner": owner_param,
        "closing": closing,
    }
    context = state.context(
        filters, filtered=bool(pipeline or stage or outcome or query or owner_param)
    )
    context.update(
        {
            "pipelines": pipelines,
            "pipeline": pipeline,
            "stage": stage,
            "outcome": outcome,
            "outcomes": StageOutcome.choices,
            "owner": owner_param,
            "closing": closing,
            "query": query,
        }
    )
    return deals, context


def deal_stages(request: WorkspaceRequest) -> list[tuple[Any, list[Stage]]]:
    """The stages to move deals to, by pipeline: (pipeline, stages)."""
    stages = Stage.objects.for_workspace(request.workspace).select_related("pipeline")
    by_pipeline: dict[Any, list[Stage]] = {}
    for stage in stages.order_by("pipeline__position", "pipeline_id", "position", "id"):
        by_pipeline.setdefault(stage.pipeline, []).append(stage)
    return list(by_pipeline.items())


def _deal_stage_value(request: WorkspaceRequest) -> tuple[Any, str]:
    value = request.POST.get("deal_stage", "")
    stage = None
    if value.isdigit():
        stage = (
            Stage.objects.for_workspace(request.workspace)
            .select_related("pipeline")
            .filter(pk=int(value))
            .first()
        )
    return stage, "" if stage else _("Choose the stage to move the deals to.")


def _export_deals(request: WorkspaceRequest, records: QuerySet) -> HttpResponseBase:
    from patron.crm import exporter
    from patron.crm.views_imports import export_csv

    rows = exporter.deal_rows(records, request.workspace.pk)
    return export_csv(request, "deals", rows, records.count())


def _apply_to_deals(request: WorkspaceRequest, bulk: BulkRequest, ids: QuerySet) -> int:
    if bulk.action == services.BulkAction.STAGE:
        moved = bulk_actions.move_deals(
            workspace=request.workspace, deal_ids=ids, stage=bulk.value, actor=request.user
        )
        if moved.skipped:
            messages.warning(
                request,
                ngettext(
                    "%(count)d deal is in another pipeline than %(pipeline)s and was not moved.",
                    "%(count)d deals are in another pipeline than %(pipeline)s and were not moved.",
                    moved.skipped,
                )
                % {"count": moved.skipped, "pipeline": bulk.value.pipeline.name},
            )
        return moved.changed
    return services.bulk_update_deals(
        workspace=request.workspace,
        deal_ids=ids,
        action=bulk.action,
        value=bulk.value,
        actor=request.user,
    )


DEAL_BULK = BulkList(
    list_name="crm:deal_list",
    url_name="crm:deal_bulk",
    model=Deal,
    query=deal_query,
    actions={"assign": member_value, "stage": _deal_stage_value, "delete": no_value},
    apply=_apply_to_deals,
    export=_export_deals,
    options=(("assign", gettext_lazy("Assign to")), ("stage", gettext_lazy("Move to stage"))),
)


@workspace_view(DEALS_VIEW)
def deal_list(request: WorkspaceRequest) -> HttpResponse:
    extra = {}
    if request.membership.can(DEALS_EDIT):
        extra["bulk"] = bulk_form(
            request,
            DEAL_BULK,
            "deal-bulk-form",
            _("With the ticked deals"),
            _("Delete the ticked deals? This cannot be undone."),
            deal_stages=deal_stages(request),
        )
    return render_list(request, DEAL_SPEC, deal_query, "crm/deal_list.html", extra=extra)


deal_view_save, deal_view_delete = view_endpoints("deal", DEALS_VIEW)


@workspace_view(DEALS_EDIT)
@require_POST
def deal_bulk(request: WorkspaceRequest) -> HttpResponseBase:
    """Assign, move to a stage, delete or export the ticked (or all) deals."""
    return run_bulk(request, DEAL_BULK)
