"""Tenant-owned tables refuse queries that are not scoped to a workspace."""

from __future__ import annotations

import pytest

from patron.core.models import ApiKey, Membership
from patron.core.tenancy import UnscopedQuery
from patron.crm.models import Contact
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_workspaces():
    a, b = WorkspaceFactory(), WorkspaceFactory()
    ContactFactory(workspace=a, first_name="Ann")
    ContactFactory(workspace=b, first_name="Bob")
    return a, b


@pytest.mark.parametrize(
    "run",
    [
        lambda: list(Contact.objects.all()),
        lambda: Contact.objects.filter(first_name="Ann").first(),
        lambda: Contact.objects.get(first_name="Ann"),
        lambda: Contact.objects.count(),
        lambda: Contact.objects.exists(),
        lambda: Contact.objects.filter(first_name="Ann").update(last_name="x"),
        lambda: Contact.objects.filter(first_name="Ann").delete(),
        lambda: list(Contact.objects.values_list("pk", flat=True)),
        lambda: list(Contact.objects.iterator()),
        lambda: Contact.objects.aggregate(n=__import__("django").db.models.Count("pk")),
        lambda: Contact.objects.in_bulk([1]),
    ],
)
def test_unscoped_queries_fail(two_workspaces, run):
    with pytest.raises(UnscopedQuery):
        run()


def test_an_or_with_the_workspace_in_one_branch_is_not_scoped(two_workspaces):
    from django.db.models import Q

    a, _ = two_workspaces
    with pytest.raises(UnscopedQuery):
        list(Contact.objects.filter(Q(workspace=a) | Q(first_name="Bob")))
    with pytest.raises(UnscopedQuery):
        list(Contact.objects.exclude(workspace=a))


def test_scoped_queries_see_only_their_workspace(two_workspaces):
    a, b = two_workspaces
    assert [c.first_name for c in Contact.objects.for_workspace(a)] == ["Ann"]
    assert [c.first_name for c in Contact.objects.filter(workspace=b)] == ["Bob"]
    assert Contact.objects.filter(workspace_id=a.pk).count() == 1
    assert Contact.objects.filter(workspace__in=[a]).count() == 1
    # Scoping survives chaining in any order.
    assert Contact.objects.filter(first_name="Ann").for_workspace(a).count() == 1
    assert Contact.objects.for_workspace(a).filter(first_name="Bob").count() == 0


def test_unscoped_is_the_explicit_way_across_workspaces(two_workspaces):
    assert Contact.objects.unscoped().count() == 2


def test_related_managers_are_scoped_by_their_row(two_workspaces):
    a, _ = two_workspaces
    from tests.factories import MembershipFactory, UserFactory

    user = UserFactory()
    MembershipFactory(workspace=a, user=user)
    assert user.memberships.count() == 1
    assert next(iter(user.memberships.all())).workspace == a


def test_for_workspace_needs_a_saved_workspace():
    from patron.core.models import Workspace

    with pytest.raises(UnscopedQuery):
        Membership.objects.for_workspace(Workspace(name="unsaved"))


def test_cascading_deletes_still_work(two_workspaces):
    a, _ = two_workspaces
    a.delete()
    assert Contact.objects.unscoped().count() == 1
    assert ApiKey.objects.unscoped().count() == 0
