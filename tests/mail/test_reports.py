"""The campaign report's selectors: every number from hand-made deliveries and hits
(machine hits kept out of the people's counts), the click map, opens and clicks
over time, the recipient filters, the comparison, and the segments made from a
filter (their members are exactly the filtered recipients). Query counts are
fixed whatever the number of rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from patron.audience import segments
from patron.mail import recipient_segments, reports
from patron.mail.models import Campaign, CampaignStatus
from patron.tracking.models import Hit
from tests.factories import ContactFactory, WorkspaceFactory
from tests.mail.report_setup import LINKS, NOW, STARTED, hit, make_story, record_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def story(workspace, owner):
    return make_story(workspace, owner)


# --- The numbers -----------------------------------------------------------------------------


def test_every_number_of_the_campaign(story, django_assert_num_queries):
    with django_assert_num_queries(2):
        numbers = reports.campaign_numbers(story.campaign)
    assert numbers.recipients == 8
    assert numbers.sent == 6  # ann bob cy dee fay gus
    assert numbers.failed == 1  # eve
    assert numbers.delivered == 5  # dee bounced after acceptance
    assert (numbers.bounced, numbers.hard_bounced, numbers.soft_bounced) == (2, 1, 1)
    # People: ann and gus opened (gus's hit is not processed yet: a person's for now),
    # cy clicked without an open; bob's proxy open and scanner click are machines'.
    assert numbers.opened == 3
    assert numbers.opens == 3
    assert numbers.machine_opens == 1
    assert numbers.clicked == 2
    assert numbers.clicks == 3
    assert numbers.machine_clicks == 1
    assert numbers.not_opened == 2  # bob and fay
    assert numbers.unsubscribed == 1
    assert numbers.complained == 1
    assert numbers.open_rate == 0.6
    assert numbers.click_rate == 0.4
    assert numbers.click_to_open_rate == 0.6667
    assert numbers.bounce_rate == 0.2857  # 2 of the 7 messages handed to a server
    assert numbers.unsubscribe_rate == 0.2
    assert numbers.complaint_rate == 0.2


def test_a_hit_judged_a_machines_leaves_the_peoples_counts(story):
    gus = Hit.objects.for_workspace(story.campaign.workspace_id).get(
        delivery_id=story.deliveries["gus"].pk
    )
    gus.machine = "privacy_proxy"
    gus.processed_at = NOW
    gus.save()
    numbers = reports.campaign_numbers(story.campaign)
    assert (numbers.opened, numbers.opens, numbers.machine_opens) == (2, 2, 2)
    assert numbers.click_to_open_rate == 1.0


def test_a_campaign_without_deliveries_has_zeros_and_no_rates(workspace, owner):
    draft = Campaign.objects.create(workspace=workspace, name="Draft")
    numbers = reports.campaign_numbers(draft)
    assert numbers.recipients == numbers.opened == numbers.clicks == 0
    assert numbers.open_rate is None and numbers.click_to_open_rate is None
    assert numbers.as_dict()["bounce_rate"] is None


def test_hits_of_another_campaign_or_workspace_do_not_count(story, workspace, owner):
    other = make_story(WorkspaceFactory(), None)
    hit(other, "ann", "open", timedelta(hours=1))
    second = make_story(workspace, owner, name="Summer news", contacts=story.contacts)
    hit(second, "bob", "open", timedelta(hours=1))
    numbers = reports.campaign_numbers(story.campaign)
    assert (numbers.opened, numbers.opens, numbers.recipients) == (3, 3, 8)


def test_query_count_does_not_grow_with_rows(story, workspace, owner, django_assert_num_queries):
    for n in range(20):
        hit(story, "fay", "open", timedelta(hours=4, minutes=n))
        hit(story, "fay", "click", timedelta(hours=4, minutes=n), link=2)
    with django_assert_num_queries(2):
        reports.campaign_numbers(story.campaign)
    with django_assert_num_queries(2):
        reports.click_map(story.campaign)
    with django_assert_num_queries(2):
        reports.timeline(story.campaign, now=NOW)


# --- The click map ---------------------------------------------------------------------------


def test_click_map_lists_every_link_most_clicked_first(story):
    links = reports.click_map(story.campaign)
    assert [(link.index, link.url) for link in links] == [
        (0, LINKS[0]),
        (1, LINKS[1]),
        (2, LINKS[2]),
    ]
    books, events, about = links
    assert (books.clicked, books.clicks, books.machine_clicks, books.share) == (1, 2, 0, 0.6667)
    assert (events.clicked, events.clicks, events.machine_clicks, events.share) == (1, 1, 1, 0.3333)
    assert (about.clicked, about.clicks, about.machine_clicks, about.share) == (0, 0, 0, 0.0)
    assert books.share_percent == 67


def test_click_map_orders_by_clicks(story):
    for minute in range(3):
        hit(story, "fay", "click", timedelta(hours=6, minutes=minute), link=2)
    assert [link.index for link in reports.click_map(story.campaign)] == [2, 0, 1]


# --- Over time -------------------------------------------------------------------------------


def test_timeline_hourly_for_48_hours_then_daily(story):
    line = reports.timeline(story.campaign, zone=ZoneInfo("UTC"), now=NOW)
    # From the 09:00 hour of the start to the hour the 48 hours end in.
    assert line.hourly[0].start == datetime(2026, 3, 2, 9, tzinfo=ZoneInfo("UTC"))
    assert len(line.hourly) == 49
    counts = {bucket.start.hour: (bucket.opens, bucket.clicks) for bucket in line.hourly[:6]}
    assert counts == {9: (0, 0), 10: (1, 0), 11: (1, 0), 12: (1, 2), 13: (0, 0), 14: (0, 0)}
    assert sum(bucket.opens for bucket in line.hourly) == 3  # bob's machine open left out
    assert sum(bucket.clicks for bucket in line.hourly) == 2
    # Days after: cy's click on the third day, then quiet days up to "now".
    assert [(b.start.date().isoformat(), b.opens, b.clicks) for b in line.daily] == [
        ("2026-03-04", 0, 1),
        ("2026-03-05", 0, 0),
        ("2026-03-06", 0, 0),
    ]
    assert not line.empty


def test_timeline_buckets_follow_the_time_zone(story):
    india = ZoneInfo("Asia/Kolkata")  # UTC+05:30: hours start at :30 in UTC
    line = reports.timeline(story.campaign, zone=india, now=NOW)
    assert line.hourly[0].start == datetime(2026, 3, 2, 15, tzinfo=india)
    assert len(line.hourly) == 48
    assert line.hourly[1].opens == 1  # ann's open at 10:30 UTC is 16:00 in Kolkata
    assert all(bucket.start.minute == 0 for bucket in line.hourly)
    # Cy's click at 11:30 UTC on 4 March is 17:00 there; the day starts at 18:30 UTC before.
    assert line.daily[0].start == datetime(2026, 3, 4, tzinfo=india)
    assert line.daily[0].clicks == 1


def test_timeline_while_the_first_hours_go_on(story):
    Hit.objects.for_workspace(story.campaign.workspace_id).filter(
        delivery_id=story.deliveries["cy"].pk
    ).delete()  # three hours in, cy's click two days later has not happened
    line = reports.timeline(story.campaign, zone=ZoneInfo("UTC"), now=STARTED + timedelta(hours=3))
    assert len(line.hourly) == 4  # 09, 10, 11, 12: up to now
    assert line.daily == []


def test_timeline_of_a_campaign_that_never_started(workspace):
    draft = Campaign.objects.create(workspace=workspace, name="Draft")
    line = reports.timeline(draft)
    assert line.started_at is None and line.hourly == [] and line.daily == [] and line.empty


def test_timeline_stops_after_the_last_active_day_or_two_weeks(story):
    later = STARTED + timedelta(days=40)
    line = reports.timeline(story.campaign, zone=ZoneInfo("UTC"), now=later)
    assert len(line.daily) == 15  # two weeks after the first 48 hours (both days counted)
    hit(story, "ann", "open", timedelta(days=30))
    line = reports.timeline(story.campaign, zone=ZoneInfo("UTC"), now=later)
    assert line.daily[-1].start.date().isoformat() == "2026-04-01"
    assert line.daily[-1].opens == 1


# --- The recipients --------------------------------------------------------------------------


def _who(story, filter_name: str) -> set[str]:
    by_id = {contact.pk: name for name, contact in story.contacts.items()}
    return {by_id[row.contact_id] for row in reports.recipients(story.campaign, filter_name)}


def test_recipient_filters(story):
    assert _who(story, "") == {"ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal"}
    assert _who(story, "opened") == {"ann", "cy", "gus"}
    assert _who(story, "not_opened") == {"bob", "fay"}
    assert _who(story, "clicked") == {"ann", "cy"}
    assert _who(story, "not_clicked") == {"bob", "fay", "gus"}
    assert _who(story, "bounced") == {"dee", "eve"}
    assert _who(story, "unsubscribed") == {"cy"}
    with pytest.raises(reports.UnknownFilter):
        reports.recipients(story.campaign, "everyone")


def test_recipient_rows_say_what_each_did_in_one_query(story, django_assert_num_queries):
    with django_assert_num_queries(1):
        rows = {row.email: row for row in reports.recipients(story.campaign)}
    assert (rows["ann@lumiar.example"].opened, rows["ann@lumiar.example"].clicked) == (True, True)
    assert (rows["bob@lumiar.example"].opened, rows["bob@lumiar.example"].clicked) == (False, False)
    assert (rows["cy@lumiar.example"].opened, rows["cy@lumiar.example"].clicked) == (True, True)
    assert rows["eve@lumiar.example"].bounce == "hard"
    assert list(rows) == [
        f"{who}@lumiar.example" for who in ["ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal"]
    ]


# --- Segments from a filter ------------------------------------------------------------------


@pytest.mark.parametrize(
    "filter_name", ["opened", "not_opened", "clicked", "not_clicked", "bounced", "unsubscribed"]
)
def test_segment_members_are_exactly_the_filtered_recipients(story, workspace, owner, filter_name):
    # Processing finds gus's open a person's and records it on the timeline.
    (gus,) = [made for made in story.hits if made.delivery_id == story.deliveries["gus"].pk]
    gus.processed_at = NOW
    gus.save()
    record_events(story)
    # Someone outside the campaign who opened another campaign is in none of them.
    other = make_story(workspace, owner, name="Summer news", contacts=story.contacts)
    hit(other, "fay", "open", timedelta(hours=1))
    hit(other, "fay", "click", timedelta(hours=1), link=0)
    record_events(other)
    ContactFactory(workspace=workspace)

    segment = recipient_segments.create_recipient_segment(
        campaign=story.campaign, filter_name=filter_name, actor=owner
    )
    members = set(
        segments.matching_contacts(workspace, segment.definition).values_list("pk", flat=True)
    )
    filtered = {row.contact_id for row in reports.recipients(story.campaign, filter_name)}
    assert filtered and members == filtered
    assert segment.name.startswith("Spring news: ")


def test_segment_names_do_not_clash(story, owner):
    first = recipient_segments.create_recipient_segment(
        campaign=story.campaign, filter_name="not_opened", actor=owner
    )
    second = recipient_segments.create_recipient_segment(
        campaign=story.campaign, filter_name="not_opened", actor=owner
    )
    assert first.name == "Spring news: did not open"
    assert second.name == "Spring news: did not open (2)"
    assert "Spring news" in first.description


def test_segment_of_a_long_campaign_name_keeps_its_filter(workspace, owner):
    campaign = Campaign.objects.create(workspace=workspace, name="N" * 200, started_at=STARTED)
    segment = recipient_segments.create_recipient_segment(
        campaign=campaign, filter_name="clicked", actor=owner
    )
    assert len(segment.name) <= 100 and segment.name.endswith(": clicked")


def test_segment_of_an_unknown_filter_is_refused(story, owner):
    with pytest.raises(reports.UnknownFilter):
        recipient_segments.create_recipient_segment(
            campaign=story.campaign, filter_name="x", actor=owner
        )


# --- Comparing campaigns ---------------------------------------------------------------------


def test_compare_campaigns_rates_and_sorting(story, workspace, owner, django_assert_num_queries):
    second = make_story(workspace, owner, name="Summer news", contacts=story.contacts)
    Campaign.objects.for_workspace(workspace).filter(pk=second.campaign.pk).update(
        started_at=STARTED + timedelta(days=30)
    )
    for who in ("bob", "fay"):
        hit(second, who, "open", timedelta(hours=2))
    Campaign.objects.create(workspace=workspace, name="A draft")  # not reported
    silent = Campaign.objects.create(
        workspace=workspace,
        name="Nobody yet",
        status=CampaignStatus.SENDING,
        started_at=STARTED - timedelta(days=1),
    )
    with django_assert_num_queries(3):
        rows = reports.compare_campaigns(workspace)
    assert [row.campaign.name for row in rows] == ["Summer news", "Spring news", "Nobody yet"]
    by_name = {row.campaign.name: row.numbers for row in rows}
    assert by_name["Spring news"].open_rate == 0.6
    assert by_name["Summer news"].open_rate == 1.0
    assert by_name["Spring news"] == reports.campaign_numbers(story.campaign)
    assert by_name["Nobody yet"].open_rate is None

    by_open = reports.compare_campaigns(workspace, sort="open_rate", descending=False)
    assert [row.campaign.name for row in by_open] == ["Spring news", "Summer news", "Nobody yet"]
    by_open = reports.compare_campaigns(workspace, sort="open_rate")
    assert [row.campaign.name for row in by_open] == ["Summer news", "Spring news", "Nobody yet"]
    by_name_rows = reports.compare_campaigns(workspace, sort="name", descending=False)
    assert [row.campaign.pk for row in by_name_rows] == [
        silent.pk,
        story.campaign.pk,
        second.campaign.pk,
    ]
    with pytest.raises(reports.UnknownFilter):
        reports.compare_campaigns(workspace, sort="subject")


def test_compare_stays_in_its_workspace(story):
    make_story(WorkspaceFactory(), None, name="Elsewhere")
    assert [
        row.campaign.name for row in reports.compare_campaigns(story.campaign.workspace_id)
    ] == ["Spring news"]
