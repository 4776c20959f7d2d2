"""A submission can open a deal or a ticket (through the CRM's services), all or nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from patron.activity.models import Event
from patron.capture import services
from patron.capture.models import FormSubmission
from patron.core.models import Notification
from patron.crm.models import Contact, Deal, Stage, Ticket
from tests.capture.conftest import valid
from tests.factories import WorkspaceFactory, make_pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline(workspace):
    return make_pipeline(workspace, name="Inbound")


def second_stage(pipeline):
    return (
        Stage.objects.for_workspace(pipeline.workspace_id)
        .filter(pipeline=pipeline)
        .order_by("position")[1]
    )


def test_a_submission_opens_a_deal_in_the_chosen_stage(signup, pipeline):
    stage = second_stage(pipeline)
    services.update_form(form=signup, follow_up="deal", deal_stage=stage)
    submission = services.submit_form(form=signup, data=valid(signup))
    deal = Deal.objects.for_workspace(signup.workspace).get()
    assert deal.stage_id == stage.pk and deal.pipeline_id == pipeline.pk
    assert deal.name == f"Demo request: {submission.contact}"
    assert list(deal.contacts.all()) == [submission.contact]
    assert deal.source == "Form: Demo request"
    assert Event.objects.for_workspace(signup.workspace).filter(kind="deal.created").count() == 1


def test_without_a_stage_the_deal_starts_in_the_first_pipeline(signup, pipeline):
    services.update_form(form=signup, follow_up="deal")
    services.submit_form(form=signup, data=valid(signup))
    deal = Deal.objects.for_workspace(signup.workspace).get()
    assert deal.pipeline_id == pipeline.pk
    assert deal.stage.position == 0


def test_a_submission_opens_a_ticket_with_the_chosen_priority(signup):
    services.update_form(form=signup, follow_up="ticket", ticket_priority="high")
    submission = services.submit_form(form=signup, data=valid(signup))
    ticket = Ticket.objects.for_workspace(signup.workspace).get()
    assert ticket.priority == "high" and ticket.channel == "web"
    assert ticket.contact_id == submission.contact_id
    assert ticket.subject.startswith("Demo request: ")
    assert "Seats: 12" in ticket.description


def test_a_failed_follow_up_leaves_nothing_half_saved(signup, pipeline, monkeypatch):
    services.update_form(form=signup, follow_up="deal", deal_stage=second_stage(pipeline))
    from patron.crm import services as crm

    def refuse(**kwargs):
        raise crm.InvalidStage("The stage is not part of the pipeline.")

    monkeypatch.setattr(crm, "create_deal", refuse)
    with pytest.raises(services.FollowUpFailed):
        services.submit_form(form=signup, data=valid(signup))
    workspace = signup.workspace
    assert not Contact.objects.for_workspace(workspace).exists()
    assert not FormSubmission.objects.for_workspace(workspace).exists()
    assert not Event.objects.for_workspace(workspace).exists()
    assert not Notification.objects.for_workspace(workspace).exists()


def test_the_visitor_is_told_to_try_again_when_the_follow_up_fails(
    signup, pipeline, monkeypatch, client: Client
):
    services.update_form(form=signup, follow_up="ticket")
    from patron.crm import tickets

    def refuse(**kwargs):
        raise tickets.TicketInvalid("subject", "Give the ticket a subject.")

    monkeypatch.setattr(tickets, "open_ticket", refuse)
    response = client.post(f"/f/{signup.key}/", valid(signup))
    assert response.status_code == 503
    assert "could not be sent just now" in response.content.decode()
    assert not FormSubmission.objects.for_workspace(signup.workspace).exists()


def test_settings_refuse_a_stage_of_another_workspace(signup):
    other = make_pipeline(WorkspaceFactory(slug="other"), name="Theirs")
    with pytest.raises(services.FormInvalid) as caught:
        services.update_form(form=signup, follow_up="deal", deal_stage=second_stage(other))
    assert "deal_stage" in caught.value.errors


@pytest.mark.parametrize(
    ("values", "field"),
    [({"follow_up": "party"}, "follow_up"), ({"ticket_priority": "whenever"}, "ticket_priority")],
)
def test_settings_refuse_unknown_choices(signup, values, field):
    with pytest.raises(services.FormInvalid) as caught:
        services.update_form(form=signup, **values)
    assert field in caught.value.errors


def test_the_owner_is_still_notified_with_a_follow_up(signup, owner):
    services.update_form(form=signup, follow_up="ticket")
    services.submit_form(form=signup, data=valid(signup))
    assert Notification.objects.for_workspace(signup.workspace).filter(user=owner).count() == 1


def test_the_builder_saves_the_follow_up_settings(logged_in, signup, pipeline):
    from tests.capture.test_pages import builder_post

    stage = second_stage(pipeline)
    response = logged_in.post(
        f"/forms/{signup.pk}/",
        builder_post(follow_up="deal", deal_stage=str(stage.pk), ticket_priority="low"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    signup.refresh_from_db()
    assert (signup.follow_up, signup.deal_stage_id, signup.ticket_priority) == (
        "deal",
        stage.pk,
        "low",
    )
    page = logged_in.get(f"/forms/{signup.pk}/").content.decode()
    assert f"Inbound → {stage.name}" in page
