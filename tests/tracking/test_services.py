"""Judging hits (machine or person) and putting people's opens and clicks on the timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from patron.activity.models import Event
from patron.tracking import ingest, services
from patron.tracking.models import Hit, HitKind, MachineReason
from tests.tracking.helpers import message_urls

pytestmark = pytest.mark.django_db

SENT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LATER = SENT + timedelta(hours=1)
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari"


def hit(workspace, kind=HitKind.OPEN, *, at=LATER, link=None, delivery=20, contact=30, **values):
    row = Hit(
        workspace=workspace,
        kind=kind,
        campaign_id=10,
        delivery_id=delivery,
        contact_id=contact,
        link=link,
        occurred_at=at,
        sent_at=SENT,
        user_agent=values.pop("user_agent", BROWSER),
        ip=values.pop("ip", "198.51.100.7"),
        **values,
    )
    row.save()
    return row


def judge(now=LATER + timedelta(minutes=5)) -> int:
    return services.process_hits(now=now)


def reason(row: Hit) -> str:
    row.refresh_from_db()
    assert row.processed_at is not None
    return row.machine


def test_a_persons_open_and_click_become_timeline_events(workspace):
    message_urls(workspace)  # links 0 and 1 of campaign 10
    hit(workspace)
    hit(workspace, HitKind.CLICK, link=1, at=LATER + timedelta(seconds=30))
    assert judge() == 2
    events = Event.objects.for_workspace(workspace).order_by("occurred_at")
    assert [(e.kind, e.contact_id) for e in events] == [
        ("email.opened", 30),
        ("email.clicked", 30),
    ]
    assert events[0].properties == {"campaign": 10, "delivery": 20}
    assert events[1].properties == {
        "campaign": 10,
        "delivery": 20,
        "link": 1,
        "url": "https://shop.example/b",
    }
    assert (events[1].source_type, events[1].source_id) == ("mail.campaign", "10")
    assert judge() == 0  # judged once only


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"method": "HEAD"}, MachineReason.HEAD_REQUEST),
        ({"user_agent": "Mozilla/5.0"}, MachineReason.PRIVACY_PROXY),
        ({"ip": "17.58.100.3"}, MachineReason.PRIVACY_PROXY),
        ({"user_agent": "Barracuda Sentinel (EE)"}, MachineReason.SCANNER_AGENT),
        ({"user_agent": "python-requests/2.32"}, MachineReason.SCANNER_AGENT),
        ({"at": SENT + timedelta(seconds=1)}, MachineReason.TOO_SOON),
        ({}, ""),
        ({"user_agent": "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"}, ""),
    ],
)
def test_machine_opens_are_flagged_and_kept_off_the_timeline(workspace, values, expected):
    row = hit(workspace, **values)
    judge()
    assert reason(row) == expected
    assert Event.objects.for_workspace(workspace).count() == (0 if expected else 1)


def test_the_privacy_proxy_rule_is_about_opens_not_clicks(workspace):
    message_urls(workspace)
    row = hit(workspace, HitKind.CLICK, link=0, ip="17.58.100.3", user_agent=BROWSER)
    judge()
    assert reason(row) == ""


def test_every_link_clicked_at_once_is_a_scanner_and_one_link_twice_is_not(workspace):
    message_urls(workspace)
    burst = [
        hit(workspace, HitKind.CLICK, link=0, at=LATER),
        hit(workspace, HitKind.CLICK, link=1, at=LATER + timedelta(milliseconds=600)),
    ]
    person = [
        hit(workspace, HitKind.CLICK, link=0, at=LATER, delivery=21, contact=31),
        hit(workspace, HitKind.CLICK, link=0, at=LATER + timedelta(seconds=1), delivery=21,
            contact=31),
        hit(workspace, HitKind.CLICK, link=1, at=LATER + timedelta(seconds=40), delivery=21,
            contact=31),
    ]  # fmt: skip
    judge()
    assert [reason(row) for row in burst] == [MachineReason.ALL_LINKS] * 2
    assert [reason(row) for row in person] == ["", "", ""]
    assert Event.objects.for_workspace(workspace).filter(contact_id=30).count() == 0
    assert Event.objects.for_workspace(workspace).filter(contact_id=31).count() == 3


def test_a_burst_split_across_two_rounds_is_still_seen(workspace):
    message_urls(workspace)
    first = hit(workspace, HitKind.CLICK, link=0, at=LATER)
    second = hit(workspace, HitKind.CLICK, link=1, at=LATER + timedelta(seconds=1))
    # The first round runs when only the first click is due.
    services.process_hits(now=LATER + timedelta(seconds=5.5))
    assert reason(first) == MachineReason.ALL_LINKS
    second.refresh_from_db()
    assert second.processed_at is None
    judge()
    assert reason(second) == MachineReason.ALL_LINKS
    assert not Event.objects.for_workspace(workspace).exists()


def test_hits_wait_until_they_settle(workspace, settings):
    row = hit(workspace, at=LATER)
    assert services.process_hits(now=LATER + timedelta(seconds=1)) == 0
    row.refresh_from_db()
    assert row.processed_at is None
    assert services.process_hits(now=LATER + timedelta(seconds=settings.TRACKING_SETTLE_SECONDS))


def row(workspace, **values) -> ingest.HitRow:
    given = {
        "workspace_id": workspace.pk, "kind": HitKind.OPEN, "campaign_id": 10,
        "delivery_id": 20, "contact_id": 30, "link": None, "occurred_at": LATER,
        "sent_at": SENT, "method": "GET", "ip": "198.51.100.7", "user_agent": BROWSER,
    }  # fmt: skip
    return ingest.HitRow(**{**given, **values})


def test_spooled_hits_are_written_and_judged(workspace, settings, tmp_path):
    settings.TRACKING_SPOOL_DIR = tmp_path / "spool"
    ingest.spool([row(workspace), row(workspace, ip=None, user_agent="Mozilla/5.0 ünïcode")])
    assert len(list((tmp_path / "spool").glob("*.jsonl"))) == 1
    judge()
    assert not list((tmp_path / "spool").glob("*"))
    hits = Hit.objects.for_workspace(workspace)
    assert sorted(hits.values_list("user_agent", flat=True)) == [BROWSER, "Mozilla/5.0 ünïcode"]
    assert Event.objects.for_workspace(workspace).filter(kind="email.opened").count() == 2


def test_hits_the_database_refuses_go_to_the_spool(workspace, settings, tmp_path):
    settings.TRACKING_SPOOL_DIR = tmp_path / "spool"
    # A row the table refuses (here: no campaign) is kept, not lost.
    assert ingest.write_hits([row(workspace, campaign_id=None)]) is False
    (spooled,) = (tmp_path / "spool").glob("*.jsonl")
    assert ingest.read_spool_file(spooled)[0].campaign_id is None
    assert not Hit.objects.unscoped().exists()


def test_spooled_hits_refused_again_are_set_aside_and_the_rest_written(workspace, settings):
    ingest.spool([row(workspace, campaign_id=None)])
    ingest.spool([row(workspace)])
    judge()
    folder = settings.TRACKING_SPOOL_DIR
    assert len(list(folder.glob("*.refused"))) == 1
    assert not list(folder.glob("*.jsonl"))
    assert Hit.objects.for_workspace(workspace).count() == 1


def test_hits_are_stored_as_they_came_whatever_their_text(workspace):
    odd = "Mozilla/5.0 \\ back\tslash\nnew\rline ünïcode 🙂 \\N"
    ingest.insert_rows([row(workspace, user_agent=odd, ip=None, link=3, kind=HitKind.CLICK)])
    hit = Hit.objects.for_workspace(workspace).get()
    assert hit.user_agent == odd
    assert (hit.ip, hit.link, hit.kind, hit.machine) == (None, 3, "click", "")
    assert (hit.occurred_at, hit.sent_at) == (LATER, SENT)
