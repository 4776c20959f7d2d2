"""The task list: filters, columns, saved views, bulk actions, export, and the API's filters."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from patron.activity.models import Event
from patron.core.models import AuditEntry
from patron.core.roles import Role
from patron.crm import services
from patron.crm.models import SavedView, Task
from tests.conftest import member
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def work(workspace, owner):
    now = timezone.now()
    colleague = member(workspace, Role.SALES, email="sam@acme.example")
    contact = ContactFactory(workspace=workspace, first_name="Hoa", email="hoa@example.com")

    def make(title, **values):
        return services.create_task(workspace=workspace, title=title, **values)

    return {
        "colleague": colleague,
        "contact": contact,
        "late": make(
            "Call back Hoa",
            assignee=owner,
            contact=contact,
            priority="high",
            due_at=now - timedelta(days=1),
        ),
        "theirs": make("Send the offer", assignee=colleague, due_at=now - timedelta(hours=3)),
        "nobodys": make("Sort the leads", due_at=now - timedelta(hours=2)),
        "later": make("Plan the fair", assignee=owner, due_at=now + timedelta(days=5)),
    }


def _head(page: str) -> str:
    return page[page.index('id="tasks"') : page.index("</thead>")]


def _titles(client: Client, **params) -> set[str]:
    page = client.get("/tasks/", params).content.decode()
    table = page[page.index('id="tasks"') :] if 'id="tasks"' in page else ""
    titles = ["Call back Hoa", "Send the offer", "Sort the leads", "Plan the fair"]
    return {title for title in titles if title in table}


def test_filters_sorts_and_old_links(logged_in, work):
    assert _titles(logged_in, due="overdue") == {"Call back Hoa"}
    assert _titles(logged_in, view="overdue") == {"Call back Hoa"}  # the tabs' old name
    assert _titles(logged_in, due="overdue", who="everyone") == {
        "Call back Hoa",
        "Send the offer",
        "Sort the leads",
    }
    assert _titles(logged_in, due="open", who="none") == {"Sort the leads"}
    assert _titles(logged_in, due="open", who=str(work["colleague"].pk)) == {"Send the offer"}
    assert _titles(logged_in, due="open", priority="high") == {"Call back Hoa"}
    assert _titles(logged_in, due="open", q="FAIR") == {"Plan the fair"}
    # Unknown values fall back to the defaults: my tasks, today.
    assert _titles(logged_in, due="someday-maybe", who="99999", priority="x") == set()
    page = logged_in.get("/tasks/", {"due": "open", "sort": "-priority"}).content.decode()
    assert page.index("Call back Hoa") < page.index("Plan the fair")
    page = logged_in.get("/tasks/", {"due": "open", "sort": "title"}).content.decode()
    assert page.index("Call back Hoa") < page.index("Plan the fair")
    page = logged_in.get("/tasks/", {"due": "open", "sort": "due"}).content.decode()
    # The tabs keep the other filters; the overdue count is shown.
    assert "?due=overdue&amp;sort=due" not in page  # "due" is the default sort
    tabs = logged_in.get("/tasks/", {"who": "everyone", "priority": "high"}).content.decode()
    assert "?due=overdue&amp;who=everyone&amp;priority=high" in tabs


def test_column_choice(logged_in, work):
    page = logged_in.get("/tasks/", {"due": "overdue"}).content.decode()
    header = _head(page)
    assert '<th scope="col">Due</th>' in header and '<th scope="col">Contact</th>' in header
    assert f'href="/contacts/{work["contact"].pk}/"' in page
    chosen = logged_in.get(
        "/tasks/", {"due": "overdue", "col": ["priority", "created_by", "nonsense"]}
    ).content.decode()
    header = _head(chosen)
    assert '<th scope="col">Priority</th>' in header and "Created by" in header
    assert '<th scope="col">Due</th>' not in header and "nonsense" not in header
    assert "<td>High</td>" in chosen
    # The columns are part of the list's URL (export, save view, pages).
    assert "cols=priority%2Ccreated_by" in chosen


def test_columns_need_the_permission_of_what_they_show(client, workspace, work):
    agency = member(workspace, Role.AGENCY)  # no deals, no tickets
    client.force_login(agency)
    # "open" rather than the default "today": the fixture's tasks are due hours ago, which is
    # yesterday shortly after midnight.
    page = client.get(
        "/tasks/", {"due": "open", "who": "everyone", "col": ["deal", "ticket", "contact"]}
    )
    header = page.content.decode()
    assert 'value="deal"' not in header and 'value="ticket"' not in header
    assert '<th scope="col">Deal</th>' not in header
    assert '<th scope="col">Contact</th>' in header


def test_saved_views_personal_and_shared(logged_in, workspace, owner, work):
    response = logged_in.post(
        "/tasks/views/",
        {"name": "Team overdue", "query_string": "due=overdue&who=everyone&cols=priority"},
    )
    view = SavedView.objects.for_workspace(workspace).get(object_type="task")
    assert response.url == f"/tasks/?view={view.pk}"
    assert view.query == {"due": "overdue", "who": "everyone", "cols": "priority"}
    assert _titles(logged_in, view=view.pk) == {
        "Call back Hoa",
        "Send the offer",
        "Sort the leads",
    }
    page = logged_in.get("/tasks/", {"view": view.pk}).content.decode()
    assert 'aria-current="page" href="?view=' in page or "active" in page
    header = _head(page)
    assert '<th scope="col">Priority</th>' in header and '<th scope="col">Due</th>' not in header
    # Not a contact view, and not the colleague's until shared.
    assert "Team overdue" not in logged_in.get("/contacts/").content.decode()
    colleague = Client()
    colleague.force_login(work["colleague"])
    assert "Team overdue" not in colleague.get("/tasks/").content.decode()
    assert colleague.get("/tasks/", {"view": view.pk}).status_code == 200
    assert _titles(colleague, view=view.pk) == _titles(colleague)  # not theirs: the default
    logged_in.post(
        "/tasks/views/",
        {"name": "Team overdue", "shared": "on", "query_string": "due=overdue&who=everyone"},
    )
    assert SavedView.objects.for_workspace(workspace).filter(object_type="task").count() == 1
    assert "Team overdue" in colleague.get("/tasks/").content.decode()
    assert _titles(colleague, view=view.pk) == {"Call back Hoa", "Send the offer", "Sort the leads"}
    colleague.post(f"/tasks/views/{view.pk}/delete/")  # not theirs to delete
    assert SavedView.objects.for_workspace(workspace).filter(pk=view.pk).exists()
    logged_in.post(f"/tasks/views/{view.pk}/delete/")
    assert not SavedView.objects.for_workspace(workspace).filter(pk=view.pk).exists()


def test_bulk_assign_priority_complete_reopen_and_delete(logged_in, workspace, owner, work):
    ids = [work["late"].pk, work["nobodys"].pk]
    response = logged_in.post(
        "/tasks/bulk/",
        {"ids": ids, "action": "apply", "change": "assign", "owner": work["colleague"].pk},
        follow=True,
    )
    assert "2 records changed." in response.content.decode()
    tasks = Task.objects.for_workspace(workspace)
    assert set(tasks.filter(pk__in=ids).values_list("assignee_id", flat=True)) == {
        work["colleague"].pk
    }
    logged_in.post(
        "/tasks/bulk/", {"ids": ids, "action": "apply", "change": "assign", "owner": "none"}
    )
    assert set(tasks.filter(pk__in=ids).values_list("assignee_id", flat=True)) == {None}

    logged_in.post(
        "/tasks/bulk/", {"ids": ids, "action": "apply", "change": "priority", "priority": "low"}
    )
    assert set(tasks.filter(pk__in=ids).values_list("priority", flat=True)) == {"low"}
    refused = logged_in.post(
        "/tasks/bulk/",
        {"ids": ids, "action": "apply", "change": "priority", "priority": "urgent"},
        follow=True,
    )
    assert "Choose a priority." in refused.content.decode()

    services.complete_task(task=work["nobodys"])  # one done already
    Event.objects.for_workspace(workspace).filter(kind="task.completed").delete()
    response = logged_in.post(
        "/tasks/bulk/", {"ids": ids, "action": "apply", "change": "complete"}, follow=True
    )
    assert "1 record changed." in response.content.decode()
    assert not tasks.filter(pk__in=ids, completed_at__isnull=True).exists()
    events = Event.objects.for_workspace(workspace).filter(kind="task.completed")
    assert [(e.source_id, e.contact_id, e.actor_id) for e in events] == [
        (str(work["late"].pk), work["contact"].pk, owner.pk)
    ]
    assert events.get().properties == {"title": "Call back Hoa"}

    logged_in.post("/tasks/bulk/", {"ids": ids, "action": "apply", "change": "reopen"})
    assert tasks.filter(pk__in=ids, completed_at__isnull=True).count() == 2

    response = logged_in.post("/tasks/bulk/", {"ids": ids, "action": "delete"}, follow=True)
    assert "2 records deleted." in response.content.decode()
    assert set(tasks.values_list("title", flat=True)) == {"Send the offer", "Plan the fair"}


def test_bulk_on_every_task_that_matches_is_confirmed_first(logged_in, workspace, work):
    form = {
        "scope": "all",
        "action": "apply",
        "change": "priority",
        "priority": "low",
        "query_string": "due=overdue&who=everyone",
    }
    confirm = logged_in.post("/tasks/bulk/", form)
    page = confirm.content.decode()
    assert confirm.status_code == 200 and "Change 3 records" in page
    assert "Set the priority to low" in page
    assert not Task.objects.for_workspace(workspace).filter(priority="low").exists()
    done = logged_in.post("/tasks/bulk/", {**form, "confirmed": "yes"}, follow=True)
    assert "3 records changed." in done.content.decode()
    assert set(
        Task.objects.for_workspace(workspace).filter(priority="low").values_list("title", flat=True)
    ) == {"Call back Hoa", "Send the offer", "Sort the leads"}
    # Deleting every match: the page says so and how many.
    delete = {"scope": "all", "action": "delete", "query_string": "due=open&who=none"}
    page = logged_in.post("/tasks/bulk/", delete).content.decode()
    assert "Delete 1 record" in page and "cannot be brought back" in page
    logged_in.post("/tasks/bulk/", {**delete, "confirmed": "yes"})
    assert not Task.objects.for_workspace(workspace).filter(title="Sort the leads").exists()
    nothing = logged_in.post("/tasks/bulk/", {"action": "apply", "change": "complete"}, follow=True)
    assert "Tick the records to change first." in nothing.content.decode()


def test_bulk_never_touches_another_workspace(logged_in, workspace, work):
    elsewhere = WorkspaceFactory()
    stranger = member(elsewhere, Role.OWNER)
    foreign = services.create_task(workspace=elsewhere, title="Foreign", assignee=stranger)
    for change in ("complete", "reopen", "priority", "assign"):
        logged_in.post(
            "/tasks/bulk/",
            {
                "ids": [foreign.pk],
                "action": "apply",
                "change": change,
                "priority": "low",
                "owner": "none",
            },
        )
    logged_in.post("/tasks/bulk/", {"ids": [foreign.pk], "action": "delete"})
    export = logged_in.post(
        "/tasks/bulk/", {"ids": [foreign.pk], "action": "apply", "change": "export"}
    )
    assert len(_csv(export)) == 1  # the header only
    foreign.refresh_from_db()
    assert (foreign.completed_at, foreign.priority, foreign.assignee_id) == (
        None,
        "normal",
        stranger.pk,
    )
    # Nor can a member of another workspace be given the tasks.
    refused = logged_in.post(
        "/tasks/bulk/",
        {"ids": [work["late"].pk], "action": "apply", "change": "assign", "owner": stranger.pk},
        follow=True,
    )
    assert "Choose a member to assign." in refused.content.decode()
    assert Task.objects.for_workspace(workspace).get(pk=work["late"].pk).assignee_id != stranger.pk


def test_bulk_needs_the_edit_permission_and_export_its_own(client, workspace, work):
    marketing = member(workspace, Role.MARKETING)  # edits contacts, exports
    support = member(workspace, Role.SUPPORT)  # edits contacts, no export
    client.force_login(support)
    page = client.get("/tasks/", {"who": "everyone", "due": "open"}).content.decode()
    assert 'id="task-bulk-form"' in page and "Export to CSV" not in page
    refused = client.post(
        "/tasks/bulk/",
        {"ids": [work["late"].pk], "action": "apply", "change": "export"},
        follow=True,
    )
    assert "may not export" in refused.content.decode()
    assert client.get("/tasks/export/").status_code == 403
    client.force_login(marketing)
    export = client.get("/tasks/export/", {"who": "everyone", "due": "open"})
    assert export.status_code == 200
    header = _csv(export)[0]
    assert "deal" in header and "ticket_id" not in header  # marketing sees no tickets
    viewer = WorkspaceFactory()
    client.force_login(member(viewer, Role.OWNER))
    response = client.post("/tasks/bulk/", {"ids": [work["late"].pk], "action": "delete"})
    assert response.status_code == 302
    assert Task.objects.for_workspace(workspace).filter(pk=work["late"].pk).exists()


def test_export_is_filtered_neutralised_and_audited(logged_in, workspace, owner, work):
    services.create_task(workspace=workspace, title="=HYPERLINK(evil)", assignee=owner)
    response = logged_in.get("/tasks/export/", {"due": "someday"})
    rows = _csv(response)
    assert rows[0][:4] == ["id", "title", "description", "priority"]
    assert [row[1] for row in rows[1:]] == ["'=HYPERLINK(evil)"]
    everything = _csv(logged_in.get("/tasks/export/", {"due": "open", "who": "everyone"}))
    assert len(everything) == 6
    late = next(row for row in everything if row[1] == "Call back Hoa")
    assert late[rows[0].index("contact_email")] == "hoa@example.com"
    assert late[rows[0].index("assignee")] == owner.email
    entries = AuditEntry.objects.filter(workspace=workspace, action="data.exported", target="tasks")
    assert entries.count() == 2
    assert entries.order_by("created_at").first().data == {
        "filters": {"due": "someday"},
        "rows": 1,
    }
    ticked = logged_in.post(
        "/tasks/bulk/", {"ids": [work["later"].pk], "action": "apply", "change": "export"}
    )
    assert [row[1] for row in _csv(ticked)[1:]] == ["Plan the fair"]


def test_api_filters_like_the_list(api, workspace, owner, work):
    def titles(**params) -> set[str]:
        response = api.get("/api/v1/tasks", **params)
        assert response.status_code == 200, response.content
        return {item["title"] for item in response.json()["items"]}

    assert titles(due="overdue") == {"Call back Hoa", "Send the offer", "Sort the leads"}
    assert titles(due="upcoming") == {"Plan the fair"}
    assert titles(unassigned=True) == {"Sort the leads"}
    assert titles(priority="high") == {"Call back Hoa"}
    assert titles(q="offer") == {"Send the offer"}
    assert titles(due="overdue", assignee_id=owner.pk) == {"Call back Hoa"}
    assert api.get("/api/v1/tasks", due="yesterday").status_code == 422
