"""Set-based writes for bulk paths (imports), without the ORM's per-value compilation.

``bulk_create`` and ``bulk_update`` compile an expression per value; at a
thousand rows of twenty columns that costs more than the database's work.
These helpers send the values as they are: one statement per batch on
PostgreSQL (arrays through ``unnest``), ``executemany`` on SQLite. Values are
prepared with each field's own ``get_db_prep_save``, so what is stored is what
the ORM would store.

Ids are allocated before the insert (from the table's sequence on PostgreSQL;
after the highest id ever used on SQLite, whose single writer holds the lock
for the whole transaction), so the caller knows which row got which id
without relying on the order of RETURNING.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection, models
from django.db.models import Lookup


def _fields(model: type[models.Model], names: Sequence[str]) -> list[models.Field]:
    """Concrete fields by name or attname (``company`` or ``company_id``)."""
    fields = []
    for name in names:
        field = model._meta.get_field(name)
        if not isinstance(field, models.Field) or not field.column:
            raise ValueError(f"{model._meta.label}.{name} is not a column")
        fields.append(field)
    return fields


def _column(field: models.Field) -> str:
    return connection.ops.quote_name(field.column or "")


def _preparer(field: models.Field) -> Callable[[Any], Any]:
    def prepare(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    return prepare


def _preparers(fields: Sequence[models.Field]) -> list[Callable[[Any], Any] | None]:
    if connection.vendor == "postgresql":
        # psycopg adapts dates, numbers and text itself; only JSON needs wrapping.
        return [_preparer(f) if isinstance(f, models.JSONField) else None for f in fields]
    simple = (models.CharField, models.TextField, models.IntegerField, models.ForeignKey)
    return [
        None
        if isinstance(field, simple) and not isinstance(field, models.JSONField)
        else _preparer(field)
        for field in fields
    ]


def _prepared(fields: Sequence[models.Field], rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    preparers = _preparers(fields)
    prepared = []
    for row in rows:
        values = list(row)
        for index, prepare in enumerate(preparers):
            if prepare is not None and values[index] is not None:
                values[index] = prepare(values[index])
        prepared.append(values)
    return prepared


def _array_types(fields: Sequence[models.Field]) -> list[str]:
    types = []
    for field in fields:
        if isinstance(field, models.ForeignKey):
            field = field.target_field
        db_type = field.db_type(connection) or "text"
        base = db_type.split("(")[0].strip()
        types.append(f"{base}[]")
    return types


def allocate_ids(model: type[models.Model], count: int) -> list[int]:
    """``count`` new primary keys for ``model``; call inside the writing transaction."""
    if count == 0:
        return []
    table = model._meta.db_table
    column = model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, column, count],
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")  # noqa: S608
        highest = cursor.fetchone()[0]
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        sequence = cursor.fetchone()
        start = max(highest, sequence[0] if sequence else 0) + 1
    return list(range(start, start + count))


def insert_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
) -> int:
    """INSERT ``rows`` (values in the order of ``columns``, which may include ``id``)."""
    if not rows:
        return 0
    fields = _fields(model, columns)
    names = ", ".join(_column(f) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    values = _prepared(fields, rows)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not ignore_conflicts:
            # COPY is PostgreSQL's fastest way in: several times an INSERT of arrays.
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        elif connection.vendor == "postgresql":
            arrays = ", ".join(f"%s::{t}" for t in _array_types(fields))
            conflict = " ON CONFLICT DO NOTHING"
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}){conflict}",  # noqa: S608
                [list(column) for column in zip(*values, strict=True)],
            )
        else:
            verb = "INSERT OR IGNORE" if ignore_conflicts else "INSERT"
            placeholders = ", ".join(["%s"] * len(fields))
            cursor.executemany(
                f"{verb} INTO {table} ({names}) VALUES ({placeholders})",
                values,
            )
    return len(rows)


def update_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """UPDATE by primary key: each row is ``[id, *values in the order of columns]``."""
    if not rows or not columns:
        return 0
    fields = _fields(model, columns)
    table = connection.ops.quote_name(model._meta.db_table)
    pk = _column(model._meta.pk)  # type: ignore[arg-type]
    prepared_values = _prepared(fields, [row[1:] for row in rows])
    values = [[row[0], *prepared] for row, prepared in zip(rows, prepared_values, strict=True)]
    quoted = [_column(f) for f in fields]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            types = ["bigint[]", *_array_types(fields)]
            arrays = ", ".join(f"%s::{t}" for t in types)
            aliases = ", ".join(["id", *[f"c{i}" for i in range(len(fields))]])
            assignments = ", ".join(f"{name} = v.c{i}" for i, name in enumerate(quoted))
            cursor.execute(
                f"UPDATE {table} AS t SET {assignments} "  # noqa: S608
                f"FROM unnest({arrays}) AS v({aliases}) WHERE t.{pk} = v.id",
                [list(column) for column in zip(*values, strict=True)],
            )
        else:
            assignments = ", ".join(f"{name} = %s" for name in quoted)
            cursor.executemany(
                f"UPDATE {table} SET {assignments} WHERE {pk} = %s",  # noqa: S608
                [[*row[1:], row[0]] for row in values],
            )
    return len(rows)


class InIds(Lookup):
    """``field__in_ids=[...]``: membership in a list of ids sent as one parameter.

    ``__in=[...]`` sends one parameter per id: thousands of them cost more to
    parse than the query's work, and SQLite refuses more than 32,766. On
    PostgreSQL the list travels as an array literal (``= ANY``), whose length
    the planner sees, so it still orders joins well; on SQLite as JSON.
    """

    lookup_name = "in_ids"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [int(value) for value in self.rhs]
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, values]
        subquery = f"{lhs} IN (SELECT value FROM json_each(%s))"  # noqa: S608 (lhs is a column)
        return subquery, [*lhs_params, json.dumps(values)]


models.Field.register_lookup(InIds)
models.ForeignObject.register_lookup(InIds)
