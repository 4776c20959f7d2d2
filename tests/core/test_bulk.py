"""``field__in_ids``: a list of ids sent as one parameter."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from patron.core.models import Workspace
from patron.crm.models import Contact, Tag


def test_in_ids_finds_the_rows_with_those_ids(workspace):
    for n in range(5):
        Contact.objects.create(workspace=workspace, first_name=f"P{n}", email=f"p{n}@example.com")
    ids = list(Contact.objects.for_workspace(workspace).order_by("pk").values_list("pk", flat=True))
    assert len(ids) == 5

    wanted = [ids[0], ids[3], 10**12]  # an id nobody has matches nothing
    found = Contact.objects.for_workspace(workspace).filter(pk__in_ids=wanted)
    assert sorted(found.values_list("email", flat=True)) == ["p0@example.com", "p3@example.com"]
    assert not Contact.objects.for_workspace(workspace).filter(pk__in_ids=[]).exists()


def test_in_ids_sends_one_parameter_however_many_ids(workspace):
    contact = Contact.objects.create(workspace=workspace, first_name="Ada", email="ada@example.com")
    tag = Tag.objects.create(workspace=workspace, name="vip")
    contact.tags.add(tag)
    # More ids than SQLite allows parameters in one statement.
    many = [*range(10**9, 10**9 + 40_000), contact.pk]
    with CaptureQueriesContext(connection) as queries:
        tagged = list(
            Contact.tags.through.objects.filter(contact_id__in_ids=many).values_list(
                "tag_id", flat=True
            )
        )
    assert tagged == [tag.pk]
    assert str(contact.pk) in queries.captured_queries[-1]["sql"]
    assert len(queries.captured_queries) == 1


def test_in_ids_respects_the_workspace_filter(workspace):
    other = Workspace.objects.create(name="Other", slug="other")
    theirs = Contact.objects.create(workspace=other, first_name="Eve", email="eve@example.com")
    assert not Contact.objects.for_workspace(workspace).filter(pk__in_ids=[theirs.pk]).exists()
