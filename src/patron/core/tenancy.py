"""Tenant scoping: every row of a tenant-owned table belongs to one workspace.

``TenantModel`` gives a table its ``workspace`` column and a default manager
whose querysets refuse to run unless they are scoped to a workspace: either
through ``Model.objects.for_workspace(ws)`` or by any filter on the
``workspace`` column. Work that legitimately spans workspaces (the scheduler,
data migrations, the installation's own maintenance) says so with
``Model.objects.unscoped()``. Related managers reached from an already loaded
row (``contact.notes.all()``) are scoped by that row and are allowed.

Forgetting the filter therefore fails the first test that runs the code path,
instead of leaking one workspace's data into another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from django.db import models
from django.db.models.expressions import Col
from django.db.models.lookups import Exact, In
from django.db.models.sql.where import AND, WhereNode

if TYPE_CHECKING:
    from patron.core.models import Workspace


class UnscopedQuery(RuntimeError):
    """A query on a tenant-owned table ran without a workspace filter."""


def _filters_on_workspace(where: WhereNode, table_alias: str | None) -> bool:
    """True when the AND-ed conditions of ``where`` pin the base table's workspace."""
    if where.connector != AND or where.negated:
        return False
    for child in where.children:
        if isinstance(child, WhereNode):
            if _filters_on_workspace(child, table_alias):
                return True
        elif isinstance(child, Exact | In):
            lhs = child.lhs
            if (
                isinstance(lhs, Col)
                and lhs.target.name == "workspace"
                and (table_alias is None or lhs.alias == table_alias)
            ):
                return True
    return False


class TenantQuerySet(models.QuerySet):
    _scoped: bool = False

    def _clone(self) -> Self:
        clone = super()._clone()  # type: ignore[misc]
        clone._scoped = self._scoped
        return clone

    def for_workspace(self, workspace: Workspace | int) -> Self:
        """Rows of one workspace: the normal way into a tenant-owned table."""
        workspace_id = workspace if isinstance(workspace, int) else workspace.pk
        if workspace_id is None:
            raise UnscopedQuery("for_workspace() needs a saved workspace")
        clone = self.filter(workspace_id=workspace_id)
        clone._scoped = True
        return clone

    def unscoped(self) -> Self:
        """Explicitly all workspaces: for installation-level jobs only."""
        clone = self._clone()
        clone._scoped = True
        return clone

    def _check_scope(self) -> None:
        if self._scoped:
            return
        alias = self.query.get_initial_alias() if self.query.alias_map else None
        if _filters_on_workspace(self.query.where, alias):
            return
        raise UnscopedQuery(
            f"Query on {self.model._meta.label} is not scoped to a workspace: use "
            f"{self.model.__name__}.objects.for_workspace(ws) or filter on workspace; "
            "unscoped() only for work that spans workspaces."
        )

    # Every way a queryset reaches the database goes through one of these.
    def _fetch_all(self) -> None:
        if self._result_cache is None:
            self._check_scope()
        super()._fetch_all()

    def iterator(self, *args: Any, **kwargs: Any) -> Any:
        self._check_scope()
        return super().iterator(*args, **kwargs)

    def count(self) -> int:
        if self._result_cache is None:
            self._check_scope()
        return super().count()

    def exists(self) -> bool:
        if self._result_cache is None:
            self._check_scope()
        return super().exists()

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._check_scope()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        self._check_scope()
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        self._check_scope()
        return super().delete()

    def in_bulk(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        self._check_scope()
        return super().in_bulk(*args, **kwargs)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    def get_queryset(self) -> TenantQuerySet:
        queryset: TenantQuerySet = super().get_queryset()
        # Related managers (``row.children.all()``) carry the row they hang
        # from; that row was loaded through a scoped query already.
        if getattr(self, "instance", None) is not None:
            queryset._scoped = True
        return queryset


class TenantModel(models.Model):
    """Base for every tenant-owned table."""

    workspace = models.ForeignKey(
        "core.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )

    # Django's internals (cascading deletes, forward relations) use the plain
    # base manager, which Django creates on its own.
    objects = TenantManager()

    class Meta:
        abstract = True


# --- URL parameters, for the isolation harness --------------------------------
# Every URL pattern argument that names a row says which tenant model it names,
# so that the isolation test can fill it with another workspace's row. A URL
# whose argument is not registered here fails that test, which is the point.
URL_PARAMETER_MODELS: dict[str, str] = {}


def register_url_parameter(name: str, model_label: str) -> None:
    """Declare that URL argument ``name`` carries the primary key of ``model_label``."""
    existing = URL_PARAMETER_MODELS.get(name)
    if existing is not None and existing != model_label:
        raise ValueError(f"URL parameter {name!r} already names {existing}")
    URL_PARAMETER_MODELS[name] = model_label


# Arguments that do not name tenant rows (tokens are checked by the views).
PUBLIC_URL_PARAMETERS: set[str] = set()


def register_public_url_parameter(name: str) -> None:
    PUBLIC_URL_PARAMETERS.add(name)
