"""The segment pages: the list, and the builder with its live count and preview.

The builder is rendered on the server. Every control is named after the path
of its node in the tree (``r`` is the root group, ``r.2.1`` the first child of
its second child), and hidden ``node`` inputs list the paths in order, so a
posted form turns back into a definition without any client-side state.
Buttons named ``action`` add or remove conditions and groups; with htmx the
builder re-renders in place on every change (and the count follows as one
types), without it the same buttons submit the page and get it back changed.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from patron.activity.kinds import EVENT_KINDS
from patron.audience import segment_services, segments
from patron.audience.models import Segment, SubscriptionStatus
from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import CONTACTS_VIEW, MARKETING_EDIT

PREVIEW_ROWS = 10
MAX_FILTERS = 3
ROOT = "r"


# --- Form <-> definition -------------------------------------------------------------------


def definition_from_form(data: QueryDict) -> dict[str, Any]:
    """Rebuild the (unvalidated) tree from the posted controls."""
    root: dict[str, Any] = {"match": data.get(f"{ROOT}-match", "all"), "conditions": []}
    groups: dict[str, dict[str, Any]] = {ROOT: root}
    for entry in data.getlist("node"):
        path, _sep, kind = entry.partition(":")
        parent = groups.get(path.rpartition(".")[0])
        if parent is None or not path.startswith(ROOT + "."):
            continue
        if kind == "group":
            node: dict[str, Any] = {"match": data.get(f"{path}-match", "all"), "conditions": []}
            groups[path] = node
        else:
            node = _condition_from_form(data, path)
        parent["conditions"].append(node)
    return root


def _condition_from_form(data: QueryDict, path: str) -> dict[str, Any]:
    def get(name: str, default: str = "") -> str:
        return data.get(f"{path}-{name}", default).strip()

    kind = get("type", "field")
    if kind in {"field", "company"}:
        op = get("op")
        values = data.getlist(f"{path}-values")
        value: Any = values if values else get("value")
        if op == "between":
            value = [get("value"), get("value2")]
        return {"type": kind, "field": get("field"), "op": op, "value": value}
    if kind == "tag":
        return {"type": "tag", "op": get("op", "has"), "tag": get("tag")}
    if kind == "list":
        return {
            "type": "list",
            "op": get("op", "in"),
            "list": get("list"),
            "status": get("status", "subscribed"),
        }
    if kind == "deal":
        compare = get("compare", "gt")
        deal_value: Any = get("value")
        if compare == "between":
            deal_value = [get("value"), get("value2")]
        return {
            "type": "deal",
            "op": get("op", "has_open"),
            "pipeline": get("pipeline") or None,
            "compare": compare,
            "value": deal_value,
        }
    filters = []
    for index in range(MAX_FILTERS):
        prop = get(f"f{index}-property")
        if prop:
            filters.append(
                {"property": prop, "op": get(f"f{index}-op", "eq"), "value": get(f"f{index}-value")}
            )
    return {
        "type": "event",
        "kind": get("kind", "email.opened"),
        "filters": filters,
        "count": {"op": get("count_op", "at_least"), "value": get("count", "1")},
        "window": {
            "type": get("window", "any"),
            "days": get("days", "30"),
            "from": get("from"),
            "to": get("to"),
        },
    }


def apply_action(definition: dict[str, Any], action: str) -> dict[str, Any]:
    """Add a condition, a group or a property filter; or remove a node."""
    verb, _sep, path = action.partition(":")
    if verb in {"add", "add_group"}:
        group = _node_at(definition, path)
        if group is not None and "conditions" in group:
            if verb == "add":
                group["conditions"].append(
                    {"type": "field", "field": "email", "op": "contains", "value": ""}
                )
            else:
                group["conditions"].append({"match": "any", "conditions": [_blank_condition()]})
    elif verb == "remove":
        parent_path, _sep, index = path.rpartition(".")
        parent = _node_at(definition, parent_path)
        if parent is not None and index.isdigit() and 0 < int(index) <= len(parent["conditions"]):
            del parent["conditions"][int(index) - 1]
    elif verb == "add_filter":
        node = _node_at(definition, path)
        if node is not None and node.get("type") == "event" and len(node["filters"]) < MAX_FILTERS:
            node["filters"].append({"property": "url", "op": "contains", "value": ""})
    elif verb == "remove_filter":
        condition_path, _sep, index = path.rpartition("/")
        node = _node_at(definition, condition_path)
        if node is not None and index.isdigit() and int(index) < len(node.get("filters", [])):
            del node["filters"][int(index)]
    return definition


def _blank_condition() -> dict[str, Any]:
    return {"type": "field", "field": "email", "op": "contains", "value": ""}


def _node_at(definition: dict[str, Any], path: str) -> dict[str, Any] | None:
    if path == ROOT:
        return definition
    if not path.startswith(ROOT + "."):
        return None
    node: Any = definition
    for part in path.split(".")[1:]:
        children = node.get("conditions") if isinstance(node, dict) else None
        if not children or not part.isdigit() or not 0 < int(part) <= len(children):
            return None
        node = children[int(part) - 1]
    return node if isinstance(node, dict) else None


# --- Rendering --------------------------------------------------------------------------


def _builder_tree(vocab: segments.Vocabulary, group: dict[str, Any], path: str) -> dict[str, Any]:
    """The definition decorated with what each row needs to render."""
    rows = []
    for index, child in enumerate(group.get("conditions", []), start=1):
        child_path = f"{path}.{index}"
        if isinstance(child, dict) and "conditions" in child:
            rows.append({"group": _builder_tree(vocab, child, child_path), "path": child_path})
        elif isinstance(child, dict):
            rows.append(
                {
                    "condition": _builder_condition(vocab, child),
                    "path": child_path,
                    "number": child_path.removeprefix(ROOT + "."),
                }
            )
    return {"match": group.get("match", "all"), "rows": rows, "path": path}


def _builder_condition(vocab: segments.Vocabulary, node: dict[str, Any]) -> dict[str, Any]:
    row = dict(node)
    kind = row.get("type", "field")
    if kind in {"field", "company"}:
        fields = vocab.company_fields if kind == "company" else vocab.contact_fields
        spec = fields.get(str(row.get("field"))) or next(iter(fields.values()))
        row["field"] = spec.key
        ops = segments.OPERATORS[spec.kind]
        if row.get("op") not in ops:
            row["op"] = ops[0]
        row["ops"] = [(op, segments.OPERATOR_LABELS[op]) for op in ops]
        row["kind"] = spec.kind
        value = row.get("value")
        row["values"] = [str(item) for item in value] if isinstance(value, list) else []
        if isinstance(value, list):
            row["value"] = value[0] if value else ""
            row["value2"] = value[1] if len(value) > 1 else ""
        row["choices"] = (
            [(str(key), label) for key, label in vocab.users.items()]
            if spec.kind == segments.USER
            else [(str(key), label) for key, label in spec.choices]
        )
        row["needs_value"] = row["op"] not in segments.NO_VALUE
        row["takes_days"] = row["op"] in segments.DAYS
    if kind == "event":
        row.setdefault("filters", [])
        row.setdefault("count", {"op": "at_least", "value": 1})
        row.setdefault("window", {"type": "any"})
        row["suggested"] = segments.SUGGESTED_PROPERTIES.get(str(row.get("kind")), ["url"])
    if kind == "deal" and isinstance(row.get("value"), list):
        row["value"], row["value2"] = (row["value"] + ["", ""])[:2]
    return row


def _choices(vocab: segments.Vocabulary) -> dict[str, Any]:
    def grouped(fields: dict[str, segments.FieldSpec]) -> list[tuple[str, str]]:
        return [(key, str(spec.label)) for key, spec in fields.items()]

    return {
        "types": list(segments.CONDITION_TYPES.items()),
        "contact_fields": grouped(vocab.contact_fields),
        "company_fields": grouped(vocab.company_fields),
        "tags": sorted(vocab.tags.items(), key=lambda item: item[1].lower()),
        "lists": sorted(vocab.lists.items(), key=lambda item: item[1].lower()),
        "pipelines": list(vocab.pipelines.items()),
        "statuses": [("any", _("any status")), *SubscriptionStatus.choices],
        "deal_ops": list(segments.DEAL_OPS.items()),
        "count_ops": list(segments.COUNT_OPS.items()),
        "property_ops": list(segments.PROPERTY_OPS.items()),
        "event_kinds": sorted(
            ((name, str(kind.label)) for name, kind in EVENT_KINDS.items() if kind.about_contact),
            key=lambda item: item[1],
        ),
    }


def _evaluate(request: WorkspaceRequest, definition: dict[str, Any]) -> dict[str, Any]:
    """Count and preview a definition, or the error that stops it."""
    vocab = segments.vocabulary(request.workspace)
    result: dict[str, Any] = {
        "tree": _builder_tree(vocab, definition, ROOT),
        "choices": _choices(vocab),
        "error": None,
        "error_path": None,
        "count": None,
        "preview": [],
        "description": "",
    }
    try:
        clean = segments.validate(request.workspace, definition, vocab=vocab)
    except segments.SegmentInvalid as exc:
        result["error"] = str(exc)
        result["error_path"] = f"{ROOT}.{exc.path}" if exc.path else ROOT
        return result
    contacts = segments.matching_contacts(request.workspace, clean, vocab=vocab)
    result["count"] = contacts.count()
    result["preview"] = list(
        contacts.select_related("company").order_by("-created_at", "-id")[:PREVIEW_ROWS]
    )
    result["description"] = segments.describe(vocab, clean)
    result["definition"] = clean
    return result


def _builder_page(
    request: WorkspaceRequest,
    *,
    segment: Segment | None,
    definition: dict[str, Any],
    name: str,
    description: str,
    form_error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        "segment": segment,
        "name": name,
        "segment_description": description,
        "form_error": form_error,
        "can_edit": request.membership.can(MARKETING_EDIT),
        **_evaluate(request, definition),
    }
    if request.htmx and request.htmx.target == "segment-builder":
        # htmx swaps only successful responses: the error shows inside the builder.
        return render(request, "audience/_segment_builder.html", context)
    return render(request, "audience/segment_form.html", context, status=status)


# --- Views -----------------------------------------------------------------------------


@workspace_view(CONTACTS_VIEW)
def segment_list(request: WorkspaceRequest) -> HttpResponse:
    found = list(Segment.objects.for_workspace(request.workspace).select_related("created_by"))
    vocab = segments.vocabulary(request.workspace)
    rows = []
    for segment in found:
        try:
            text = segments.describe(
                vocab, segments.validate(request.workspace, segment.definition, vocab=vocab)
            )
        except segments.SegmentInvalid as exc:
            text = str(exc)
        rows.append((segment, text))
    return render(
        request,
        "audience/segment_list.html",
        {"rows": rows, "can_edit": request.membership.can(MARKETING_EDIT)},
    )


@workspace_view(CONTACTS_VIEW)
def segment_new(request: WorkspaceRequest) -> HttpResponse:
    return _segment_form(request, None)


@workspace_view(CONTACTS_VIEW)
def segment_detail(request: WorkspaceRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment.objects.for_workspace(request.workspace), pk=segment_id)
    return _segment_form(request, segment)


def _segment_form(request: WorkspaceRequest, segment: Segment | None) -> HttpResponse:
    if request.method != "POST":
        if segment is None and not request.membership.can(MARKETING_EDIT):
            return redirect("audience:segment_list")
        return _builder_page(
            request,
            segment=segment,
            definition=segment.definition
            if segment
            else {
                "match": "all",
                "conditions": [_blank_condition()],
            },
            name=segment.name if segment else "",
            description=segment.description if segment else "",
        )
    definition = definition_from_form(request.POST)
    name = request.POST.get("name", "")
    description = request.POST.get("description", "")
    action = request.POST.get("action", "")
    if action != "save":
        return _builder_page(
            request,
            segment=segment,
            definition=apply_action(definition, action),
            name=name,
            description=description,
        )
    if not request.membership.can(MARKETING_EDIT):
        return _builder_page(
            request,
            segment=segment,
            definition=definition,
            name=name,
            description=description,
            form_error=_("Your role cannot change segments."),
            status=403,
        )
    try:
        if segment is None:
            segment = segment_services.create_segment(
                workspace=request.workspace,
                name=name,
                definition=definition,
                description=description,
                actor=request.user,
            )
            messages.success(request, _("Segment “%(name)s” saved.") % {"name": segment.name})
        else:
            segment_services.update_segment(
                segment=segment,
                name=name,
                definition=definition,
                description=description,
                actor=request.user,
            )
            messages.success(request, _("Segment “%(name)s” updated.") % {"name": segment.name})
    except (segments.SegmentInvalid, segment_services.SegmentNameTaken) as exc:
        return _builder_page(
            request,
            segment=segment,
            definition=definition,
            name=name,
            description=description,
            form_error=str(exc),
            status=400,
        )
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = reverse("audience:segment_detail", args=[segment.pk])
        return response
    return redirect("audience:segment_detail", segment_id=segment.pk)


@workspace_view(CONTACTS_VIEW)
@require_POST
def segment_count(request: WorkspaceRequest) -> HttpResponse:
    """The live count alone (as a person types a value)."""
    result = _evaluate(request, definition_from_form(request.POST))
    return render(request, "audience/_segment_count.html", result)


@workspace_view(MARKETING_EDIT)
@require_POST
def segment_delete(request: WorkspaceRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment.objects.for_workspace(request.workspace), pk=segment_id)
    if request.POST.get("confirm") != "yes":
        messages.error(request, _("Tick the box to confirm the deletion."))
        return redirect("audience:segment_detail", segment_id=segment.pk)
    name = segment.name
    segment_services.delete_segment(segment=segment, actor=request.user)
    messages.success(request, _("Segment “%(name)s” deleted.") % {"name": name})
    return redirect("audience:segment_list")
