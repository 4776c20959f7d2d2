"""The campaign pages: list, new, the draft editor (forms say what is wrong), checks,
preview, test send, send with confirmation, progress and actions, permissions,
CSRF and tenant isolation."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from patron.core.roles import Role
from patron.mail import campaigns
from patron.mail.models import Campaign, CampaignStatus, Delivery, OutboxMessage
from patron.mail.views_campaigns import duration_text
from tests.conftest import member
from tests.factories import PASSWORD, WorkspaceFactory
from tests.mail.campaign_setup import GOOD_BODY, make_audience, ready_values, verified_sender

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(workspace):
    return make_audience(workspace)


@pytest.fixture
def draft(workspace, owner, people):
    return campaigns.create_campaign(workspace, user=owner, values=ready_values(people))


def as_role(workspace, role: str) -> Client:
    user = member(workspace, role)
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return client


def editor_data(campaign: Campaign, **overrides) -> dict:
    data = {
        "name": campaign.name,
        "subject": campaign.subject,
        "preheader": campaign.preheader,
        "sender": campaign.sender_id or "",
        "reply_to": campaign.reply_to,
        "format": campaign.format,
        "body": campaign.body,
        "text": campaign.text,
        "blocks": "",
    }
    audience = campaign.audience or {}
    for side in ("include", "exclude"):
        for kind in ("lists", "segments"):
            data[f"{side}_{kind}"] = [str(pk) for pk in (audience.get(side) or {}).get(kind, [])]
    data.update(overrides)
    return data


# --- List ----------------------------------------------------------------------------------


def test_navbar_leads_to_campaigns(logged_in):
    page = logged_in.get("/").content.decode()
    assert 'href="/campaigns/"' in page and ">Campaigns<" in page


def test_list_filters_by_status_and_searches_name_and_subject(
    logged_in, workspace, owner, people, django_assert_max_num_queries
):
    spring = campaigns.create_campaign(workspace, user=owner, values=ready_values(people))
    campaigns.create_campaign(
        workspace, user=owner, values={"name": "Autumn sale", "subject": "Leaves and books"}
    )
    sent = campaigns.create_campaign(workspace, user=owner, values={"name": "Winter"})
    Campaign.objects.for_workspace(workspace).filter(pk=sent.pk).update(
        status=CampaignStatus.SENT, total=3, sent=3, finished_at=timezone.now()
    )
    page = logged_in.get("/campaigns/").content.decode()
    assert "Spring news" in page and "Autumn sale" in page and "Winter" in page
    # The audience reads as names, the counts as sent of total.
    assert "Readers" in page
    assert "3 / 3" in page

    sent_only = logged_in.get("/campaigns/", {"status": "sent"}).content.decode()
    assert "Winter" in sent_only and "Spring news" not in sent_only
    by_subject = logged_in.get("/campaigns/", {"q": "leaves"}).content.decode()
    assert "Autumn sale" in by_subject and "Winter" not in by_subject
    nothing = logged_in.get("/campaigns/", {"q": "zzz"}).content.decode()
    assert "No campaign matches" in nothing

    for index in range(10):
        campaigns.create_campaign(
            workspace, user=owner, values=ready_values(people, name=f"More {index}")
        )
    # No query per row: the audience names are read once for the page.
    with django_assert_max_num_queries(12):
        response = logged_in.get("/campaigns/")
    assert response.content.decode().count("data-campaign=") == 13
    assert spring.pk


def test_workflows_campaigns_are_listed_apart(logged_in, api, workspace, owner, people):
    from patron.mail.automated import create_automated_campaign
    from tests.automation.workflow_helpers import template

    campaigns.create_campaign(workspace, user=owner, values=ready_values(people))
    welcome = create_automated_campaign(
        workspace=workspace, template=template(workspace), name="Welcome: step 1"
    )
    assert welcome.automated
    page = logged_in.get("/campaigns/").content.decode()
    assert "Spring news" in page and "Welcome: step 1" not in page
    assert "Sent by workflows" in page
    automated = logged_in.get("/campaigns/", {"kind": "automated"}).content.decode()
    assert "Welcome: step 1" in automated and "Spring news" not in automated
    searched = logged_in.get("/campaigns/", {"kind": "automated", "q": "zzz"}).content.decode()
    assert "No campaign matches" in searched and 'name="kind" value="automated"' in searched

    names = [c["name"] for c in api.get("/api/v1/campaigns?automated=true").json()["items"]]
    assert names == ["Welcome: step 1"]
    everyone = api.get("/api/v1/campaigns").json()["items"]
    assert {(c["name"], c["automated"]) for c in everyone} == {
        ("Spring news", False),
        ("Welcome: step 1", True),
    }


# --- New and edit --------------------------------------------------------------------------


def test_new_campaign_needs_a_name_and_starts_with_content_that_passes(
    logged_in, workspace, people
):
    response = logged_in.post("/campaigns/new/", {"name": "  ", "start": "newsletter"})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not Campaign.objects.for_workspace(workspace).exists()

    response = logged_in.post("/campaigns/new/", {"name": "Spring news", "start": "newsletter"})
    campaign = Campaign.objects.for_workspace(workspace).get()
    assert response.status_code == 302 and response.url == f"/campaigns/{campaign.pk}/"
    assert campaign.status == CampaignStatus.DRAFT and campaign.format == "mjml"
    assert campaign.blocks["blocks"][1]["text"] == "The monthly letter"  # the starter's design
    assert "The monthly letter" in campaign.body  # its MJML, written on the server
    assert campaign.sender == people.sender  # the default sender address
    # The starter content carries what the law asks for: only the audience is missing.
    codes = {problem.code for problem in campaigns.check_campaign(campaign)}
    assert codes == {"audience"}
    # It opens in the block builder.
    page = logged_in.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'id="builder-blocks"' in page and 'id="content-body"' not in page


def test_editor_saves_details_content_and_audience(logged_in, workspace, owner, people):
    campaign = campaigns.create_campaign(workspace, user=owner, values={"name": "Draft"})
    page = logged_in.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'id="campaign-form"' in page and "Newsletter" in page and "Readers" in page
    response = logged_in.post(
        f"/campaigns/{campaign.pk}/save/",
        editor_data(
            campaign,
            name="Spring news",
            subject="Hello {{ contact.first_name }}",
            preheader="New books inside",
            reply_to="desk@lumiar.example",
            sender=str(people.sender.pk),
            format="html",
            body=GOOD_BODY,
            text="Hello!",
            include_lists=[str(people.newsletter.pk)],
            exclude_segments=[str(people.readers.pk)],
        ),
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "Spring news"
    assert campaign.subject == "Hello {{ contact.first_name }}"
    assert campaign.reply_to == "desk@lumiar.example"
    assert campaign.format == "html" and campaign.body == GOOD_BODY and campaign.text == "Hello!"
    assert campaign.audience == {
        "include": {"lists": [people.newsletter.pk], "segments": []},
        "exclude": {"lists": [], "segments": [people.readers.pk]},
    }
    # Newsletter (Ann, Bob) except Readers (Ann, Cy): Bob.
    page = logged_in.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert '<strong id="audience-total">1</strong>' in page


def test_editor_says_what_is_wrong_on_the_field(logged_in, workspace, owner, people):
    campaign = campaigns.create_campaign(workspace, user=owner, values=ready_values(people))
    response = logged_in.post(
        f"/campaigns/{campaign.pk}/save/",
        editor_data(campaign, name="", reply_to="not an address", format="pdf"),
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_name_error"' in page and "This field is required." in page
    # A content error is shown by the content editor, above the fields it names.
    assert 'id="content-errors"' in page and "Choose MJML or HTML." in page
    campaign.refresh_from_db()
    assert campaign.name == "Spring news"

    # The services' own checks land on their field too.
    response = logged_in.post(
        f"/campaigns/{campaign.pk}/save/", editor_data(campaign, reply_to="desk@nowhere")
    )
    assert response.status_code == 400
    assert 'id="id_reply_to_error"' in response.content.decode()

    # A sender address of another workspace is not a choice.
    stranger = verified_sender(WorkspaceFactory(), email="x@other.example")
    response = logged_in.post(
        f"/campaigns/{campaign.pk}/save/", editor_data(campaign, sender=str(stranger.pk))
    )
    assert response.status_code == 400
    assert 'id="id_sender_error"' in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.sender == people.sender


def test_sender_choices_are_verified_addresses_with_a_way_to_settings(
    logged_in, workspace, owner, people
):
    from patron.mail import senders
    from patron.mail.models import SenderIdentity

    senders.create_sender(
        workspace=workspace,
        from_name="Pending",
        from_email="pending@lumiar.example",
        postal_address="Rua 2",
    )
    campaign = campaigns.create_campaign(workspace, user=owner, values={"name": "Draft"})
    page = logged_in.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "news@lumiar.example" in page and "pending@lumiar.example" not in page
    assert 'id="no-verified-sender"' not in page

    SenderIdentity.objects.for_workspace(workspace).update(verified_at=None)
    page = logged_in.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'id="no-verified-sender"' in page and 'href="/settings/senders/"' in page
    assert "news@lumiar.example&gt; (not verified)" in page


def test_checks_name_part_line_and_column(logged_in, workspace, owner, people):
    body = '<html><body>\n<p>Hi</p>\n  <a href="htp://example.com">x</a>\n</body></html>'
    campaign = campaigns.create_campaign(
        workspace, user=owner, values=ready_values(people, body=body)
    )
    page = logged_in.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Body, line 3, column 3" in page
    assert "should start with https://" in page
    assert "Add an unsubscribe link" in page
    # The send button waits until the problems are fixed.
    assert "Fix the problems the checks list" in page

    logged_in.post(f"/campaigns/{campaign.pk}/save/", editor_data(campaign, body=GOOD_BODY))
    page = logged_in.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'id="checks-passed"' in page


def test_audience_count_follows_the_ticked_boxes(logged_in, people):
    response = logged_in.post(
        "/campaigns/audience-count/", {"include_segments": [str(people.readers.pk)]}
    )
    assert '<strong id="audience-total">2</strong>' in response.content.decode()
    response = logged_in.post(
        "/campaigns/audience-count/",
        {
            "include_segments": [str(people.readers.pk)],
            "include_lists": [str(people.newsletter.pk)],
            "exclude_lists": [str(people.newsletter.pk)],
        },
    )
    assert '<strong id="audience-total">1</strong>' in response.content.decode()  # Cy
    response = logged_in.post("/campaigns/audience-count/", {})
    assert "Tick at least one list or segment" in response.content.decode()
    response = logged_in.post("/campaigns/audience-count/", {"include_lists": ["987654"]})
    assert 'id="audience-error"' in response.content.decode()


# --- Preview and test send -----------------------------------------------------------------


def test_preview_as_a_chosen_contact_in_a_sandboxed_frame(logged_in, draft, people):
    panel = logged_in.get(
        f"/campaigns/{draft.pk}/preview/", {"contact": "ann@lumiar.example", "width": "mobile"}
    ).content.decode()
    assert "Spring at Lumiar, Ann" in panel
    assert "campaign-preview-mobile" in panel
    assert f"/campaigns/{draft.pk}/preview/html/?contact={people.ann.pk}" in panel
    html = logged_in.get(f"/campaigns/{draft.pk}/preview/html/", {"contact": people.ann.pk})
    assert "Hello Ann," in html.content.decode()
    assert html.headers["Content-Security-Policy"].startswith("sandbox;")
    # By name, and a sample person when nobody matches.
    assert (
        "Bob Sá"
        in logged_in.get(f"/campaigns/{draft.pk}/preview/", {"contact": "bob sá"}).content.decode()
    )
    missing = logged_in.get(f"/campaigns/{draft.pk}/preview/", {"contact": "nobody"})
    assert "No contact matches “nobody”" in missing.content.decode()


def test_preview_says_what_stops_a_message_that_cannot_render(logged_in, workspace, owner, people):
    body = GOOD_BODY.replace("<p>Hello", "<p>{{ 1 | divided_by: 0 }} Hello")
    campaign = campaigns.create_campaign(
        workspace, user=owner, values=ready_values(people, body=body)
    )
    panel = logged_in.get(f"/campaigns/{campaign.pk}/preview/").content.decode()
    assert 'id="preview-problem"' in panel and "divided" in panel
    frame = logged_in.get(f"/campaigns/{campaign.pk}/preview/html/")
    assert frame.status_code == 200 and frame.headers["Content-Type"].startswith("text/plain")


def test_test_send_goes_to_the_addresses_marked_test(logged_in, draft, people):
    response = logged_in.post(
        f"/campaigns/{draft.pk}/test/",
        {"addresses": "me@lumiar.example, desk@lumiar.example", "contact": "ann@lumiar.example"},
    )
    assert response.status_code == 302
    sent = OutboxMessage.objects.filter(workspace=draft.workspace).order_by("id")
    assert sorted(address for message in sent for address in message.to) == [
        "desk@lumiar.example",
        "me@lumiar.example",
    ]
    assert all("[Test]" in message.subject and "Ann" in message.subject for message in sent)

    response = logged_in.post(f"/campaigns/{draft.pk}/test/", {"addresses": "me@, x"})
    assert response.status_code == 400
    assert 'id="id_addresses_error"' in response.content.decode()
    response = logged_in.post(
        f"/campaigns/{draft.pk}/test/", {"addresses": "me@lumiar.example", "contact": "nobody"}
    )
    assert response.status_code == 400
    assert "No contact matches" in response.content.decode()


# --- Sending ------------------------------------------------------------------------------


def test_send_now_asks_first_with_the_number_of_recipients(
    logged_in, draft, django_capture_on_commit_callbacks
):
    response = logged_in.post(f"/campaigns/{draft.pk}/schedule/", {"when": "now"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "It goes now to <strong>2</strong> recipients." in page
    assert "Send now to 2 recipients" in page
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.DRAFT  # nothing happened yet

    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in.post(
            f"/campaigns/{draft.pk}/schedule/", {"when": "now", "confirm": "yes"}
        )
    assert response.status_code == 302
    draft.refresh_from_db()
    # Tasks run at once in tests: the send has gone through.
    assert draft.status == CampaignStatus.SENT
    assert draft.total == 2 and draft.sent == 2
    page = logged_in.get(f"/campaigns/{draft.pk}/").content.decode()
    assert 'id="campaign-totals"' in page and 'id="recipients-link"' in page
    assert 'id="outbox-link"' in page
    # What went out can still be looked at, as anyone it went to.
    assert 'id="preview-subject">Spring at Lumiar,' in page
    assert "hx-trigger" not in page.split('id="campaign-live"')[1].split(">")[0]
    recipients = logged_in.get(f"/campaigns/{draft.pk}/recipients/").content.decode()
    assert "ann@lumiar.example" in recipients and "cy@lumiar.example" in recipients
    assert "bob@elsewhere.example" not in recipients


def test_a_due_campaign_waiting_for_a_worker_says_it_is_starting(logged_in, draft):
    # Without the commit hooks running, no task is enqueued: as when no worker took it yet.
    logged_in.post(f"/campaigns/{draft.pk}/schedule/", {"when": "now", "confirm": "yes"})
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.SCHEDULED
    page = logged_in.get(f"/campaigns/{draft.pk}/progress/").content.decode()
    assert 'id="campaign-starting"' in page and 'hx-trigger="every 2s"' in page
    assert 'id="campaign-schedule"' not in page


def test_scheduling_needs_a_time_and_reads_it_in_the_viewers_zone(logged_in, draft, owner):
    response = logged_in.post(f"/campaigns/{draft.pk}/schedule/", {"when": "at"})
    assert response.status_code == 400
    assert "Choose the date and time to send at." in response.content.decode()

    owner.time_zone = "Europe/Lisbon"
    owner.save()
    later = (
        (timezone.now() + timedelta(days=30))
        .astimezone(timezone.get_fixed_timezone(0))
        .replace(month=7, day=1, hour=9, minute=30, second=0, microsecond=0)
    )
    value = later.strftime("%Y-%m-%dT%H:%M")
    response = logged_in.post(
        f"/campaigns/{draft.pk}/schedule/", {"when": "at", "send_at": value, "confirm": "yes"}
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.SCHEDULED
    # 09:30 in Lisbon in July is 08:30 UTC.
    assert draft.send_at.astimezone(timezone.get_fixed_timezone(0)).hour == 8
    assert not draft.local_time
    page = logged_in.get(f"/campaigns/{draft.pk}/").content.decode()
    assert 'id="campaign-schedule"' in page and 'hx-trigger="every 2s"' in page

    # Unscheduled, it is a draft to edit again.
    logged_in.post(f"/campaigns/{draft.pk}/unschedule/")
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.DRAFT

    past = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = logged_in.post(
        f"/campaigns/{draft.pk}/schedule/", {"when": "at", "send_at": past, "confirm": "yes"}
    )
    assert response.status_code == 400
    assert "Choose a time in the future." in response.content.decode()


def test_local_time_send_is_a_wall_clock_time(logged_in, draft, owner, workspace):
    # Whoever schedules it, wherever they are, 10:00 means 10:00 on each recipient's clock.
    workspace.time_zone = "America/New_York"
    workspace.save()
    owner.time_zone = "Asia/Tokyo"
    owner.save()
    response = logged_in.post(
        f"/campaigns/{draft.pk}/schedule/", {"when": "local", "send_at": "2031-05-04T10:00"}
    )
    assert "at May 4, 2031, 10 a.m. on each one" in response.content.decode()
    logged_in.post(
        f"/campaigns/{draft.pk}/schedule/",
        {"when": "local", "send_at": "2031-05-04T10:00", "confirm": "yes"},
    )
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.SCHEDULED and draft.local_time
    assert draft.send_at.astimezone(campaigns.workspace_zone(draft.workspace)).hour == 10
    page = logged_in.get(f"/campaigns/{draft.pk}/").content.decode()
    assert "Goes out at May 4, 2031, 10 a.m. on each recipient" in page
    listed = logged_in.get("/campaigns/").content.decode()
    assert '05/04/2031 10 a.m. <span class="text-body-secondary">(each recipient\'s time)' in listed


def test_a_failing_check_stops_the_send(logged_in, workspace, owner, people):
    campaign = campaigns.create_campaign(
        workspace, user=owner, values=ready_values(people, body="<p>No links</p>")
    )
    page = logged_in.post(f"/campaigns/{campaign.pk}/schedule/", {"when": "now"}).content
    assert b'id="confirm-blocked"' in page and b"<li>Body: Add an unsubscribe link" in page
    response = logged_in.post(
        f"/campaigns/{campaign.pk}/schedule/", {"when": "now", "confirm": "yes"}
    )
    assert response.status_code == 400
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_progress_reads_rate_and_time_left(logged_in, draft, workspace):
    _sending(draft)
    Campaign.objects.for_workspace(workspace).filter(pk=draft.pk).update(
        total=1000, sent=400, failed=10, started_at=timezone.now() - timedelta(seconds=30)
    )
    page = logged_in.get(f"/campaigns/{draft.pk}/progress/").content.decode()
    assert 'aria-valuenow="41"' in page and "progress-41" in page
    assert "400 of 1,000 sent · 10 failed" in page


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1, "1 second"),
        (45, "45 seconds"),
        (61, "2 minutes"),
        (3600, "1 hour"),
        (7500, "2 hours 5 minutes"),
    ],
)
def test_time_left_reads_at_a_glance(seconds, text):
    assert duration_text(seconds) == text


def test_recipients_filter_by_status_and_address(
    logged_in, draft, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        logged_in.post(f"/campaigns/{draft.pk}/schedule/", {"when": "now", "confirm": "yes"})
    page = logged_in.get(f"/campaigns/{draft.pk}/recipients/", {"q": "ann@"}).content.decode()
    assert "ann@lumiar.example" in page and "cy@lumiar.example" not in page
    page = logged_in.get(f"/campaigns/{draft.pk}/recipients/", {"status": "failed"}).content
    assert b"No recipients here" in page


def _sending(campaign: Campaign) -> Campaign:
    """A campaign in the middle of its send (as the pipeline leaves it between batches)."""
    campaigns.schedule_campaign(campaign, user=None, at=timezone.now() + timedelta(days=1))
    return campaigns.transition(campaign, CampaignStatus.SENDING, user=None, action="started")


def test_pause_resume_cancel_and_duplicate(logged_in, draft):
    _sending(draft)
    page = logged_in.get(f"/campaigns/{draft.pk}/progress/").content.decode()
    assert 'hx-trigger="every 2s"' in page and ">Pause<" in page and "Cancel sending" in page

    logged_in.post(f"/campaigns/{draft.pk}/pause/")
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.PAUSED
    page = logged_in.get(f"/campaigns/{draft.pk}/").content.decode()
    assert ">Resume<" in page and ">Pause<" not in page

    logged_in.post(f"/campaigns/{draft.pk}/resume/")
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.SENDING

    response = logged_in.post(f"/campaigns/{draft.pk}/cancel/", follow=True)
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.CANCELLED
    assert "is cancelled" in response.content.decode()
    # Too late to pause: the page says why.
    response = logged_in.post(f"/campaigns/{draft.pk}/pause/", follow=True)
    assert "cannot be paused" in response.content.decode()

    response = logged_in.post(f"/campaigns/{draft.pk}/duplicate/")
    copy = Campaign.objects.for_workspace(draft.workspace).exclude(pk=draft.pk).get()
    assert response.url == f"/campaigns/{copy.pk}/"
    assert copy.status == CampaignStatus.DRAFT and copy.body == draft.body
    assert copy.audience == draft.audience


def test_delete_only_drafts(logged_in, draft, workspace, owner, people):
    other = campaigns.create_campaign(
        workspace, user=owner, values=ready_values(people, name="Other")
    )
    _sending(other)
    response = logged_in.post(f"/campaigns/{other.pk}/delete/", follow=True)
    assert Campaign.objects.for_workspace(workspace).filter(pk=other.pk).exists()
    assert "cannot be deleted" in response.content.decode()
    response = logged_in.post(f"/campaigns/{draft.pk}/delete/")
    assert response.url == "/campaigns/"
    assert not Campaign.objects.for_workspace(workspace).filter(pk=draft.pk).exists()


# --- Permissions, CSRF, isolation ----------------------------------------------------------


def test_roles_without_campaign_rights_read_but_do_not_write(workspace, draft):
    sales = as_role(workspace, Role.SALES)
    page = sales.get(f"/campaigns/{draft.pk}/").content.decode()
    assert 'id="campaign-form"' not in page and "Spring news" in page  # read-only view
    assert 'id="campaign-draft"' in page and 'id="campaign-progress"' not in page
    assert ">Duplicate<" not in page and "Cancel sending" not in page
    assert "New campaign" not in sales.get("/campaigns/").content.decode()
    assert sales.get("/campaigns/new/").status_code == 403
    assert sales.post(f"/campaigns/{draft.pk}/save/", editor_data(draft)).status_code == 403
    assert (
        sales.post(f"/campaigns/{draft.pk}/test/", {"addresses": "a@b.example"}).status_code == 403
    )
    assert sales.post(f"/campaigns/{draft.pk}/schedule/", {"when": "now"}).status_code == 403
    assert sales.post(f"/campaigns/{draft.pk}/delete/").status_code == 403
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.DRAFT

    # The agency role prepares and sends campaigns.
    agency = as_role(workspace, Role.AGENCY)
    assert 'id="campaign-form"' in agency.get(f"/campaigns/{draft.pk}/").content.decode()
    response = agency.post(f"/campaigns/{draft.pk}/schedule/", {"when": "now"})
    assert response.status_code == 200 and b"Send now to 2 recipients" in response.content


def test_forms_need_the_csrf_token(owner, draft):
    client = Client(enforce_csrf_checks=True)
    assert client.login(email=owner.email, password=PASSWORD)
    assert client.post("/campaigns/new/", {"name": "X", "format": "html"}).status_code == 403
    assert client.post(f"/campaigns/{draft.pk}/save/", editor_data(draft)).status_code == 403
    response = client.post(f"/campaigns/{draft.pk}/schedule/", {"when": "now", "confirm": "yes"})
    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.DRAFT


def test_another_workspaces_campaign_is_not_found(logged_in, owner):
    other = WorkspaceFactory(name="Other", slug="other")
    people = make_audience(other)
    theirs = campaigns.create_campaign(other, user=None, values=ready_values(people))
    for url in ("", "progress/", "preview/", "preview/html/", "recipients/"):
        assert logged_in.get(f"/campaigns/{theirs.pk}/{url}").status_code == 404
    for url in ("save/", "test/", "schedule/", "pause/", "cancel/", "duplicate/", "delete/"):
        assert logged_in.post(f"/campaigns/{theirs.pk}/{url}").status_code == 404
    assert "Spring news" not in logged_in.get("/campaigns/").content.decode()
    # Their lists and segments are not choices here, nor counted.
    response = logged_in.post(
        "/campaigns/audience-count/", {"include_segments": [str(people.readers.pk)]}
    )
    assert 'id="audience-total"' not in response.content.decode()
    assert not Delivery.objects.for_workspace(other).exists()


def test_a_campaign_starts_from_a_saved_template_and_switches_to_code(
    logged_in, workspace, owner, people
):
    from patron.mail import templates_service

    saved = templates_service.create_from_starter(
        workspace, user=owner, key="content-digest", name="Weekly digest"
    )
    page = logged_in.get("/campaigns/new/").content.decode()
    assert f'<option value="template:{saved.pk}">Weekly digest</option>' in page
    assert '<option value="newsletter">' in page and '<option value="blank-code">' in page
    assert '<option value="welcome">' not in page  # personal starters are for one-to-one mail
    logged_in.post("/campaigns/new/", {"name": "Digest #1", "start": f"template:{saved.pk}"})
    campaign = Campaign.objects.for_workspace(workspace).get()
    assert (campaign.body, campaign.blocks) == (saved.body, saved.blocks)

    # A posted body is not taken for a builder design; the switch keeps the written MJML.
    design = json.dumps(campaign.blocks)
    data = editor_data(campaign, blocks=design, body="<mjml>forged</mjml>")
    assert logged_in.post(f"/campaigns/{campaign.pk}/save/", data).status_code == 302
    campaign.refresh_from_db()
    assert campaign.body == saved.body and "forged" not in campaign.body
    data["action"] = "to_code"
    assert logged_in.post(f"/campaigns/{campaign.pk}/save/", data).status_code == 302
    campaign.refresh_from_db()
    assert campaign.blocks == {} and campaign.body == saved.body and campaign.format == "mjml"
    page = logged_in.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'id="content-body"' in page and 'id="builder-blocks"' not in page

    # A broken design is refused with the block at fault, and nothing is saved.
    broken = json.loads(design)
    broken["blocks"][1]["type"] = "rocket"
    data = editor_data(campaign, blocks=json.dumps(broken))
    response = logged_in.post(f"/campaigns/{campaign.pk}/save/", data)
    assert response.status_code == 400 and 'id="content-errors"' in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.blocks == {}
