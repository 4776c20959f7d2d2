"""The report pages: the numbers as cards, the charts (inline SVG, no script or style),
the click map, the recipient filters, a filter turned into a segment (roles, CSRF),
the comparison and its sorting; links from the campaign pages; other workspaces'
campaigns stay out of reach; the queries do not grow with the rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from patron.audience.models import Segment
from patron.core.roles import Role
from patron.mail import reports
from patron.mail.models import Campaign, CampaignStatus, Delivery
from patron.mail.views_reports import _hour_label, _hour_tick, build_chart
from tests.conftest import member
from tests.factories import PASSWORD, ContactFactory, WorkspaceFactory
from tests.mail.report_setup import LINKS, hit, make_story

pytestmark = pytest.mark.django_db


@pytest.fixture
def story(workspace, owner):
    return make_story(workspace, owner)


def as_role(workspace, role: str) -> Client:
    user = member(workspace, role)
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return client


def _text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def test_report_shows_the_numbers_as_cards(logged_in, story):
    response = logged_in.get(f"/campaigns/{story.campaign.pk}/report/")
    assert response.status_code == 200
    page = response.content.decode()
    text = _text(response)
    assert "Report: Spring news" in text
    assert re.search(r'id="card-delivered".*?report-number">5<', page, re.S)
    assert "6 sent of 8 recipients · 1 failed" in text
    assert re.search(r'id="card-opened".*?report-rate">60.0%<', page, re.S)
    assert "Unique: 3 · In all: 3" in text and "By machines, not counted: 1" in text
    assert re.search(r'id="card-clicked".*?report-rate">40.0%<', page, re.S)
    assert "Unique: 2 · In all: 3" in text and "66.7% of those who opened" in text
    assert re.search(r'id="card-not-opened".*?report-number">2<', page, re.S)
    assert "28.6% · 1 hard, 1 soft" in text
    assert re.search(r'id="card-unsubscribed".*?report-number">1<.*?20.0%', page, re.S)
    assert re.search(r'id="card-complained".*?report-number">1<.*?20.0%', page, re.S)


def test_report_click_map_with_share_bars(logged_in, story):
    page = logged_in.get(f"/campaigns/{story.campaign.pk}/report/").content.decode()
    rows = re.findall(r'<tr data-link="(\d)">(.*?)</tr>', page, re.S)
    assert [index for index, _row in rows] == ["0", "1", "2"]
    books = rows[0][1]
    assert LINKS[0] in books and 'rel="noopener noreferrer"' in books
    assert re.search(
        r'link-people">1<.*link-clicks">2<.*progress-67">67%<.*link-machine">0<', books, re.S
    )
    assert 'progress-33">33%<' in rows[1][1] and 'link-machine">1<' in rows[1][1]
    assert 'progress-0">0%<' in rows[2][1]


def test_report_draws_the_charts_inline_without_script_or_style(logged_in, story):
    page = logged_in.get(f"/campaigns/{story.campaign.pk}/report/").content.decode()
    hourly = page[page.index('id="chart-hourly"') : page.index('id="chart-daily"')]
    daily = page[page.index('id="chart-daily"') :]
    assert "<svg" in hourly and 'role="img"' in hourly
    # One bar per bucket with a count (empty buckets draw nothing), each with its tooltip:
    # ann's and gus's opens in three hours, ann's two clicks in one, cy's click on day 3.
    assert len(re.findall(r"<rect [^>]*><title>[^<]*: 1 opens</title>", hourly)) == 3
    assert len(re.findall(r"<title>[^<]*: 2 clicks</title>", hourly)) == 1
    assert len(re.findall(r"<title>[^<]*: 1 clicks</title>", daily)) == 1
    # The same numbers as a table.
    assert "The numbers as a table" in hourly
    body = page[page.index("<body") :]
    assert "<script" not in body and " style=" not in body


def test_report_of_a_campaign_that_did_not_start(logged_in, workspace, owner):
    draft = Campaign.objects.create(workspace=workspace, name="Not yet")
    text = _text(logged_in.get(f"/campaigns/{draft.pk}/report/"))
    assert "Nothing to report yet" in text and "card-delivered" not in text


def test_report_without_hits_says_so(logged_in, workspace, owner):
    story = make_story(workspace, owner)
    for made in story.hits:
        made.delete()
    page = logged_in.get(f"/campaigns/{story.campaign.pk}/report/").content.decode()
    assert 'id="timeline-empty"' in page
    assert "<rect" not in page


def test_report_queries_do_not_grow_with_rows(logged_in, workspace, owner, story):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert logged_in.get(f"/campaigns/{story.campaign.pk}/report/").status_code == 200
        return len(queries)

    count()  # the session's first read of the page settles what it caches
    before = count()
    for n in range(15):
        contact = ContactFactory(workspace=workspace)
        delivery = Delivery.objects.create(
            workspace=workspace,
            campaign=story.campaign,
            contact_id=contact.pk,
            email=contact.email,
            status="sent",
        )
        story.deliveries[f"x{n}"] = delivery
        hit(story, f"x{n}", "open", timedelta(hours=n))
        hit(story, f"x{n}", "click", timedelta(hours=n), link=n % 3)
    assert count() == before


def test_campaign_page_and_list_link_the_report(logged_in, story, workspace):
    detail = logged_in.get(f"/campaigns/{story.campaign.pk}/").content.decode()
    assert f'href="/campaigns/{story.campaign.pk}/report/" id="report-link"' in detail
    listing = logged_in.get("/campaigns/").content.decode()
    assert f'href="/campaigns/{story.campaign.pk}/report/" class="report-link"' in listing
    assert 'href="/campaigns/compare/" id="compare-link"' in listing
    draft = Campaign.objects.create(workspace=workspace, name="Draft one")
    listing = logged_in.get("/campaigns/").content.decode()
    assert f"/campaigns/{draft.pk}/report/" not in listing


# --- Recipients --------------------------------------------------------------------------------


def _emails(response) -> list[str]:
    return re.findall(r'data-recipient="([^"]+)"', response.content.decode())


def test_recipient_filters_as_tabs(logged_in, story):
    url = f"/campaigns/{story.campaign.pk}/report/recipients/"
    everyone = logged_in.get(url)
    assert len(_emails(everyone)) == 8
    assert 'id="make-segment"' not in everyone.content.decode()  # choose a filter first
    not_opened = logged_in.get(url, {"filter": "not_opened"})
    assert _emails(not_opened) == ["bob@lumiar.example", "fay@lumiar.example"]
    page = not_opened.content.decode()
    assert re.search(
        r'class="nav-link active" aria-current="page" href="\?filter=not_opened"', page
    )
    assert "Turn “did not open” into a segment" in _text(not_opened)
    rows = dict(
        re.findall(
            r'data-recipient="([^"]+)">(.*?)</tr>', logged_in.get(url).content.decode(), re.S
        )
    )
    assert re.search(
        r'recipient-opened">Yes.*recipient-clicked">Yes', rows["ann@lumiar.example"], re.S
    )
    assert 'recipient-bounce">Hard' in rows["eve@lumiar.example"]
    assert 'recipient-bounce">Soft' in rows["dee@lumiar.example"]
    assert _emails(logged_in.get(url, {"filter": "clicked"})) == [
        "ann@lumiar.example",
        "cy@lumiar.example",
    ]
    assert _emails(logged_in.get(url, {"filter": "unsubscribed"})) == ["cy@lumiar.example"]


def test_unknown_recipient_filter_says_so(logged_in, story):
    response = logged_in.get(
        f"/campaigns/{story.campaign.pk}/report/recipients/", {"filter": "x<y"}
    )
    assert response.status_code == 400
    assert "There is no filter “x&lt;y”: showing every recipient." in response.content.decode()
    assert len(_emails(response)) == 8


def test_recipients_are_paged_keeping_the_filter(logged_in, story, monkeypatch):
    monkeypatch.setattr("patron.mail.views_reports.RECIPIENTS_PER_PAGE", 2)
    url = f"/campaigns/{story.campaign.pk}/report/recipients/"
    first = logged_in.get(url, {"filter": "opened"})
    assert _emails(first) == ["ann@lumiar.example", "cy@lumiar.example"]
    assert 'href="?filter=opened&amp;page=2"' in first.content.decode()
    second = logged_in.get(url, {"filter": "opened", "page": 2})
    assert _emails(second) == ["gus@lumiar.example"]
    assert _emails(logged_in.get(url, {"page": 4})) == ["gus@lumiar.example", "hal@lumiar.example"]


def test_turn_a_filter_into_a_segment(logged_in, story, workspace):
    response = logged_in.post(
        f"/campaigns/{story.campaign.pk}/report/segment/", {"filter": "not_opened"}
    )
    segment = Segment.objects.for_workspace(workspace).get()
    assert response.status_code == 302
    assert response["Location"] == f"/segments/{segment.pk}/"
    assert segment.name == "Spring news: did not open"
    kinds = [condition["kind"] for condition in segment.definition["conditions"]]
    assert kinds == ["email.sent", "email.opened", "email.clicked", "email.bounced"]
    followed = logged_in.get(response["Location"])
    assert "Segment “Spring news: did not open” created" in followed.content.decode()


def test_segment_needs_a_known_filter(logged_in, story, workspace):
    response = logged_in.post(f"/campaigns/{story.campaign.pk}/report/segment/", {"filter": ""})
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/{story.campaign.pk}/report/recipients/"
    assert not Segment.objects.for_workspace(workspace).exists()
    followed = logged_in.get(response["Location"])
    assert "Choose which recipients the segment is made of." in followed.content.decode()


def test_segment_button_and_post_need_marketing_rights(story, workspace):
    sales = as_role(workspace, Role.SALES)  # sees campaigns and their results, edits no segments
    url = f"/campaigns/{story.campaign.pk}/report/recipients/"
    response = sales.get(url, {"filter": "not_opened"})
    assert response.status_code == 200 and 'id="make-segment"' not in response.content.decode()
    post = sales.post(f"/campaigns/{story.campaign.pk}/report/segment/", {"filter": "not_opened"})
    assert post.status_code == 403
    assert not Segment.objects.for_workspace(workspace).exists()
    marketing = as_role(workspace, Role.MARKETING)
    assert 'id="make-segment"' in marketing.get(url, {"filter": "opened"}).content.decode()


def test_segment_post_only_with_csrf(owner, story, workspace):
    client = Client(enforce_csrf_checks=True)
    assert client.login(email=owner.email, password=PASSWORD)
    response = client.post(f"/campaigns/{story.campaign.pk}/report/segment/", {"filter": "opened"})
    assert response.status_code == 403
    assert client.get(f"/campaigns/{story.campaign.pk}/report/segment/").status_code == 405
    assert not Segment.objects.for_workspace(workspace).exists()


def test_other_workspaces_campaigns_are_out_of_reach(logged_in):
    other = make_story(WorkspaceFactory(), None, name="Theirs")
    pk = other.campaign.pk
    assert logged_in.get(f"/campaigns/{pk}/report/").status_code == 404
    assert logged_in.get(f"/campaigns/{pk}/report/recipients/").status_code == 404
    assert (
        logged_in.post(f"/campaigns/{pk}/report/segment/", {"filter": "opened"}).status_code == 404
    )
    assert "Theirs" not in logged_in.get("/campaigns/compare/").content.decode()


def test_report_pages_need_a_login(client, story):
    response = client.get(f"/campaigns/{story.campaign.pk}/report/")
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- Compare -----------------------------------------------------------------------------------


def test_compare_campaigns_sorted_by_a_column(logged_in, story, workspace, owner):
    second = make_story(workspace, owner, name="Summer news", contacts=story.contacts)
    Campaign.objects.for_workspace(workspace).filter(pk=second.campaign.pk).update(
        started_at=story.campaign.started_at + timedelta(days=7)
    )
    hit(second, "fay", "open", timedelta(hours=2))
    Campaign.objects.create(workspace=workspace, name="A draft", status=CampaignStatus.DRAFT)

    response = logged_in.get("/campaigns/compare/")
    page = response.content.decode()
    assert re.findall(r'<tr data-campaign="([^"]+)"', page) == ["Summer news", "Spring news"]
    rows = dict(re.findall(r'<tr data-campaign="([^"]+)">(.*?)</tr>', page, re.S))
    assert 'compare-open-rate">80.0%<' in rows["Summer news"]
    assert 'compare-open-rate">60.0%<' in rows["Spring news"]
    assert f'href="/campaigns/{story.campaign.pk}/report/"' in rows["Spring news"]
    # The open rate column sorts from the largest; the next click turns it around.
    assert 'href="?sort=open_rate&amp;order=desc"' in page
    by_rate = logged_in.get(
        "/campaigns/compare/", {"sort": "open_rate", "order": "asc"}
    ).content.decode()
    assert re.findall(r'<tr data-campaign="([^"]+)"', by_rate) == ["Spring news", "Summer news"]
    assert 'aria-sort="ascending"' in by_rate and 'href="?sort=open_rate&amp;order=desc"' in by_rate
    odd = logged_in.get("/campaigns/compare/", {"sort": "subject", "order": "sideways"})
    assert odd.status_code == 200
    assert re.findall(r'<tr data-campaign="([^"]+)"', odd.content.decode()) == [
        "Summer news",
        "Spring news",
    ]


def test_compare_queries_do_not_grow_with_campaigns(logged_in, workspace, owner, story):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert logged_in.get("/campaigns/compare/").status_code == 200
        return len(queries)

    count()
    before = count()
    for n in range(4):
        make_story(workspace, owner, name=f"More {n}", contacts=story.contacts)
    assert count() == before


def test_compare_without_campaigns(logged_in):
    assert "No campaign has gone out yet" in _text(logged_in.get("/campaigns/compare/"))


def test_chart_geometry(settings):
    settings.TIME_ZONE = "UTC"
    start = datetime(2026, 3, 2, 18, tzinfo=UTC)
    buckets = [
        reports.Bucket(start=start + timedelta(hours=n), opens=7 if n == 1 else 0, clicks=n == 2)
        for n in range(12)
    ]
    chart = build_chart(buckets, _hour_label, 6, _hour_tick)
    assert chart.peak == 10  # 7 rounded up to 1, 2 or 5 times a power of ten
    opens = [bar for bar in chart.open_bars if bar.height]
    assert len(opens) == 1 and opens[0].title == "Mar 2, 19:00: 7 opens"
    assert opens[0].y + opens[0].height == chart.baseline
    click = next(bar for bar in chart.click_bars if bar.height)
    assert click.height * 7 == pytest.approx(opens[0].height)
    assert [tick.label for tick in chart.ticks] == ["Mar 2 18:00", "Mar 3 00:00"]
    assert chart.rows[1] == ("Mar 2, 19:00", 7, 0)
