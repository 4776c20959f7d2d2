"""Tasks, "my tasks", and reminders delivered in the app and by email."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from patron.activity.models import Event
from patron.core.models import Notification
from patron.core.roles import Role
from patron.core.scheduler import PERIODIC_JOBS
from patron.crm import services
from patron.crm.models import Task
from patron.mail.models import OutboxMessage
from tests.conftest import member
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_tasks_are_recorded_on_the_contact_and_completed_once(workspace, owner):
    contact = ContactFactory(workspace=workspace)
    task = services.create_task(
        workspace=workspace,
        created_by=owner,
        title="Send the quote",
        contact=contact,
        assignee=owner,
    )
    services.complete_task(task=task, actor=owner)
    services.complete_task(task=task, actor=owner)
    kinds = list(
        Event.objects.for_workspace(workspace)
        .filter(contact_id=contact.pk)
        .order_by("pk")
        .values_list("kind", flat=True)
    )
    assert kinds == ["task.created", "task.completed"]
    services.reopen_task(task=task)
    task.refresh_from_db()
    assert not task.is_done
    with pytest.raises(services.CrossWorkspaceReference):
        services.create_task(
            workspace=workspace, title="x", contact=ContactFactory(workspace=WorkspaceFactory())
        )


def test_reminders_arrive_once_in_the_app_and_by_email(workspace, owner):
    now = timezone.now()
    due = services.create_task(
        workspace=workspace,
        title="Call Budi back",
        assignee=owner,
        remind_at=now - timedelta(minutes=1),
    )
    services.create_task(
        workspace=workspace, title="Later", assignee=owner, remind_at=now + timedelta(hours=1)
    )
    done = services.create_task(
        workspace=workspace,
        title="Already done",
        assignee=owner,
        remind_at=now - timedelta(minutes=5),
    )
    services.complete_task(task=done)
    assert services.send_task_reminders(now=now) == 1
    assert services.send_task_reminders(now=now) == 0  # a second scheduler finds nothing
    notification = Notification.objects.for_workspace(workspace).get()
    assert notification.user == owner and "Call Budi back" in notification.text
    mail = OutboxMessage.objects.get()
    assert mail.to == [owner.email] and mail.subject == "Reminder: Call Budi back"
    assert mail.workspace == workspace and "/tasks/" in mail.text_body
    due.refresh_from_db()
    assert due.reminded_at == now
    assert services.send_task_reminders(now=now + timedelta(hours=2)) == 1
    assert "crm.tasks.remind_task_assignees" in " ".join(PERIODIC_JOBS)


def test_my_tasks_sorts_by_due_date(logged_in, workspace, owner):
    now = timezone.now()
    make = lambda title, **kw: services.create_task(  # noqa: E731
        workspace=workspace, title=title, **{"assignee": owner, **kw}
    )
    make("Late one", due_at=now - timedelta(days=2))
    make("Soon one", due_at=now + timedelta(days=3))
    make("Whenever")
    make("Not mine", due_at=now - timedelta(days=1), assignee=member(workspace, Role.SALES))
    overdue = logged_in.get("/tasks/", {"view": "overdue"}).content.decode()
    assert "Late one" in overdue and "Soon one" not in overdue and "Not mine" not in overdue
    assert "Soon one" in logged_in.get("/tasks/", {"view": "upcoming"}).content.decode()
    assert "Whenever" in logged_in.get("/tasks/", {"view": "someday"}).content.decode()
    everyone = logged_in.get("/tasks/", {"view": "overdue", "who": "everyone"}).content.decode()
    assert "Not mine" in everyone


def test_creating_and_completing_from_the_contact_page(logged_in, workspace, owner):
    contact = ContactFactory(workspace=workspace, first_name="Hoa")
    missing = logged_in.post(
        f"/tasks/new/?contact={contact.pk}",
        {"title": "Ping", "priority": "normal", "assignee": "", "remind_at": "2030-01-01T09:00"},
    )
    assert "A reminder needs someone to remind." in missing.content.decode()
    response = logged_in.post(
        f"/tasks/new/?contact={contact.pk}",
        {
            "title": "Send brochure",
            "priority": "high",
            "assignee": owner.pk,
            "due_at": "2030-01-01T09:00",
        },
    )
    assert response["Location"] == f"/contacts/{contact.pk}/"
    task = Task.objects.for_workspace(workspace).get()
    assert task.contact == contact and task.due_at.year == 2030
    assert "Send brochure" in logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    logged_in.post(f"/tasks/{task.pk}/complete/", {"next": f"/contacts/{contact.pk}/"})
    task.refresh_from_db()
    assert task.is_done
    assert "No open tasks." in logged_in.get(f"/contacts/{contact.pk}/").content.decode()


def test_notifications_page_marks_everything_read(logged_in, workspace, owner):
    from patron.core.services import notify

    notify(workspace=workspace, user=owner, text="Hello there", url="/tasks/")
    home = logged_in.get("/").content.decode()
    assert 'id="unread-count">1' in home
    assert "Hello there" in logged_in.get("/notifications/").content.decode()
    logged_in.post("/notifications/")
    assert 'id="unread-count"' not in logged_in.get("/").content.decode()
