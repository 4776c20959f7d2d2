"""A/B tests: the settings, the split at the start, each variant's messages through a
real SMTP server, the rest held back, the winner chosen from people's hits and sent to
the rest, pause and cancel during the wait, and the z-test."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time

from patron.core.models import AuditEntry
from patron.mail import ab_tests, campaigns, pipeline, reports
from patron.mail.models import Campaign, CampaignStatus, ChunkState, Delivery, SendChunk
from patron.tracking.models import Hit, MachineReason
from tests.mail.campaign_helpers import (
    draft,
    mailing_list,
    subscribers,
    verified_sender,
    won_deal,
)
from tests.mail.sink import Sink

pytestmark = pytest.mark.django_db

B = {"subject": "Last chance, {{ contact.first_name }}", "from_name": "Ana at Acme"}
B_STORED = {**B, "preheader": ""}


@pytest.fixture
def sink(settings):
    with Sink() as server:
        settings.EMAIL_TRANSPORT = "smtp"
        settings.SMTP_URLS = [server.url]
        yield server.recorder


@pytest.fixture
def sender(workspace):
    return verified_sender(workspace)


def deliveries(campaign: Campaign):
    return Delivery.objects.for_workspace(campaign.workspace_id).filter(campaign=campaign)


def work(campaign: Campaign) -> None:
    for chunk_id in (
        SendChunk.objects.for_workspace(campaign.workspace_id)
        .filter(campaign=campaign)
        .values_list("pk", flat=True)
    ):
        pipeline.run_chunk(chunk_id)
    campaign.refresh_from_db()


def ab_draft(workspace, owner, people=40, **values):
    news = mailing_list(workspace)
    subscribers(workspace, news, people)
    given = {
        "ab_test": True,
        "ab_variants": [B],
        "ab_share": 20,
        "ab_wait_hours": 4,
        **values,
    }
    return draft(workspace, owner, news, **given)


def start(campaign: Campaign, owner) -> Campaign:
    campaigns.schedule_campaign(campaign, user=owner)
    pipeline.start_campaign(campaign.pk)
    campaign.refresh_from_db()
    return campaign


def hit(delivery: Delivery, kind: str = "open", **values) -> Hit:
    return Hit.objects.create(
        workspace_id=delivery.workspace_id,
        kind=kind,
        campaign_id=delivery.campaign_id,
        delivery_id=delivery.pk,
        contact_id=delivery.contact_id,
        processed_at=timezone.now(),
        **values,
    )


# --- Settings --------------------------------------------------------------------------------


def test_settings_are_checked(workspace, owner, sender):
    campaign = draft(workspace, owner)
    campaigns.update_campaign(
        campaign,
        user=owner,
        values={
            "ab_test": True,
            "ab_variants": [{"subject": "  Other   subject ", "preheader": "", "from_name": ""}],
            "ab_share": "30",
            "ab_metric": "click_rate",
            "ab_wait_hours": 12,
        },
    )
    campaign.refresh_from_db()
    assert campaign.ab_variants == [{"subject": "Other subject", "preheader": "", "from_name": ""}]
    assert (campaign.ab_share, campaign.ab_metric, campaign.ab_wait_hours) == (30, "click_rate", 12)

    bad = {
        "ab_share": 70,
        "ab_wait_hours": 337,
        "ab_metric": "orders",
        "ab_variants": [{"subject": "x"}] * 4,
    }
    with pytest.raises(campaigns.CampaignInvalid) as caught:
        campaigns.update_campaign(campaign, user=owner, values=bad)
    assert set(caught.value.errors) == {"ab_share", "ab_wait_hours", "ab_metric", "ab_variants"}
    assert "revenue per recipient" in caught.value.errors["ab_metric"]
    assert "14 days" in caught.value.errors["ab_wait_hours"]
    campaigns.update_campaign(
        campaign, user=owner, values={"ab_metric": "revenue", "ab_wait_hours": 336}
    )
    campaign.refresh_from_db()
    assert (campaign.ab_metric, campaign.ab_wait_hours) == ("revenue", 336)
    with pytest.raises(campaigns.CampaignInvalid) as caught:
        campaigns.update_campaign(
            campaign, user=owner, values={"ab_variants": [{"subject": "x", "body": "<p>"}]}
        )
    assert "body cannot be set" in caught.value.errors["ab_variants"]


def test_the_checks_name_what_keeps_a_test_from_running(workspace, owner, sender):
    campaign = ab_draft(workspace, owner, people=2, ab_variants=[])
    codes = [problem.code for problem in campaigns.check_campaign(campaign)]
    assert "ab_no_variant" in codes
    campaigns.update_campaign(
        campaign,
        user=owner,
        values={
            "ab_variants": [
                {"subject": campaign.subject},  # the same as A
                {"subject": "Hi {{ contact.first_name "},  # does not compile
            ],
            "track_opens": False,
        },
    )
    problems = {p.code: p for p in campaigns.check_campaign(campaign) if p.part == "ab_test"}
    assert "Variant B is the same as A" in problems["ab_same"].message
    assert any(p.message.startswith("Variant C: ") for p in problems.values())
    assert "needs open tracking" in problems["ab_tracking"].message
    with pytest.raises(campaigns.CampaignInvalid):
        campaigns.schedule_campaign(campaign, user=owner)


def test_a_test_cannot_go_in_each_recipients_time_zone(workspace, owner, sender):
    campaign = ab_draft(workspace, owner, people=2)
    with pytest.raises(campaigns.CampaignInvalid) as caught:
        campaigns.schedule_campaign(
            campaign, user=owner, at=timezone.now() + timedelta(hours=1), local_time=True
        )
    assert "each recipient's time zone" in caught.value.errors["send_at"]


def test_a_duplicate_keeps_the_test_settings_not_the_result(workspace, owner, sender):
    campaign = ab_draft(workspace, owner, people=2, ab_metric="click_rate")
    Campaign.objects.for_workspace(workspace).filter(pk=campaign.pk).update(
        ab_winner=1, ab_confidence=0.99
    )
    campaign.refresh_from_db()
    copy = campaigns.duplicate_campaign(campaign, user=owner)
    assert (copy.ab_test, copy.ab_variants, copy.ab_metric) == (True, [B_STORED], "click_rate")
    assert copy.ab_winner is None and copy.ab_confidence is None


# --- The split -------------------------------------------------------------------------------


def test_the_test_group_is_split_evenly_and_the_rest_waits(workspace, owner, sender, settings):
    settings.SEND_CHUNK_SIZE = 7
    campaign = ab_draft(
        workspace, owner, people=50, ab_share=30, ab_variants=[B, {"subject": "Third"}]
    )
    before = timezone.now()
    campaign = start(campaign, owner)
    assert campaign.total == 50 and campaign.status == CampaignStatus.SENDING
    assert (
        before + timedelta(hours=4) <= campaign.ab_decide_at <= timezone.now() + timedelta(hours=4)
    )
    rows = deliveries(campaign)
    sizes = {v: rows.filter(variant=v).count() for v in (0, 1, 2)}
    assert sizes == {0: 5, 1: 5, 2: 5}  # 30 % of 50, in three
    assert not rows.filter(variant__isnull=False, not_before__isnull=False).exists()
    assert set(rows.filter(variant__isnull=True).values_list("not_before", flat=True)) == {
        ab_tests.HELD
    }
    assert rows.filter(variant__isnull=True).count() == 35


def test_the_group_sizes_round_and_keep_one_per_variant():
    assert ab_tests.test_size(1000, 10, 2) == 100
    assert ab_tests.test_size(15, 10, 2) == 2
    assert ab_tests.test_size(3, 50, 4) == 3
    assert ab_tests.test_size(0, 20, 2) == 0


def test_the_pick_is_random(workspace, owner, sender):
    first = start(ab_draft(workspace, owner, people=40), owner)
    picked = set(deliveries(first).filter(variant=1).values_list("contact_id", flat=True))
    others = []
    for _n in range(3):
        copy = start(campaigns.duplicate_campaign(first, user=owner), owner)
        others.append(set(deliveries(copy).filter(variant=1).values_list("contact_id", flat=True)))
    assert all(len(group) == 4 for group in [picked, *others])
    assert any(group != picked for group in others)


# --- Sending the test and the winner ---------------------------------------------------------


def test_each_variant_sends_its_own_then_the_winner_goes_to_the_rest(
    workspace, owner, sender, sink, settings
):
    settings.SEND_CHUNK_SIZE = 10
    campaign = start(ab_draft(workspace, owner, people=40, ab_share=50), owner)
    work(campaign)

    # The test: 10 messages of A, 10 of B, each with its subject and sender name.
    assert len(sink.messages) == 20
    assert campaign.status == CampaignStatus.SENDING
    rows = {row.email: row for row in deliveries(campaign)}
    for received in sink.messages:
        message = received.message
        row = rows[received.recipients[0]]
        first = "R" + received.recipients[0].split("@")[0].removeprefix("reader")
        if row.variant == 0:
            assert message["Subject"] == f"News for {first}"
            assert message["From"].addresses[0].display_name == "Acme News"
        else:
            assert row.variant == 1
            assert message["Subject"] == f"Last chance, {first}"
            assert message["From"].addresses[0].display_name == "Ana at Acme"
    waiting = SendChunk.objects.for_workspace(workspace).filter(campaign=campaign)
    assert set(waiting.values_list("state", flat=True)) == {ChunkState.WAITING}
    assert set(waiting.values_list("wake_at", flat=True)) == {ab_tests.HELD}

    # Not yet due: nothing is decided and nothing more goes.
    assert pipeline.advance_campaigns()["decided"] == 0
    assert len(sink.messages) == 20

    # People open B more; a machine's opens of A do not count.
    a_rows = [row for row in rows.values() if row.variant == 0]
    b_rows = [row for row in rows.values() if row.variant == 1]
    for row in b_rows[:7]:
        hit(row)
    hit(a_rows[0])
    for row in a_rows[1:]:
        hit(row, machine=MachineReason.PRIVACY_PROXY)
    with freeze_time(campaign.ab_decide_at + timedelta(seconds=1)):
        counts = pipeline.advance_campaigns()
    assert counts["decided"] == 1 and counts["woken"] == 4  # every chunk held some
    campaign.refresh_from_db()
    assert campaign.ab_winner == 1 and campaign.ab_decided_at is not None
    assert campaign.ab_confidence == pytest.approx(ab_tests.confidence(7, 10, 1, 10))
    assert campaign.ab_confidence > 0.95
    assert campaign.status == CampaignStatus.SENT  # the immediate backend ran the rest

    # The rest got B; nobody got two messages.
    assert len(sink.messages) == 40
    recipients = [r for m in sink.messages for r in m.recipients]
    assert len(set(recipients)) == 40
    rest = {row.email for row in rows.values() if row.variant is None}
    for received in sink.messages:
        if received.recipients[0] in rest:
            assert received.message["Subject"].startswith("Last chance, ")
            assert received.message["From"].addresses[0].display_name == "Ana at Acme"
    assert AuditEntry.objects.filter(workspace=workspace, action="campaign.ab_decided").exists()
    # Deciding again does nothing.
    assert ab_tests.pick_winner(campaign.pk) is None


def test_a_tie_goes_to_a(workspace, owner, sender, sink):
    campaign = start(ab_draft(workspace, owner, people=20, ab_share=50), owner)
    work(campaign)
    a_row = deliveries(campaign).filter(variant=0).first()
    b_row = deliveries(campaign).filter(variant=1).first()
    hit(a_row)
    hit(b_row)
    with freeze_time(campaign.ab_decide_at + timedelta(minutes=1)):
        pipeline.advance_campaigns()
    campaign.refresh_from_db()
    assert campaign.ab_winner == 0 and campaign.ab_confidence == 0.0


def test_winner_by_click_rate(workspace, owner, sender, sink):
    campaign = start(
        ab_draft(workspace, owner, people=20, ab_share=50, ab_metric="click_rate"), owner
    )
    work(campaign)
    for row in deliveries(campaign).filter(variant=0):
        hit(row)  # A is opened by everyone, clicked by nobody
    b_row = deliveries(campaign).filter(variant=1).first()
    hit(b_row, kind="click", link=0)
    assert ab_tests.pick_winner(campaign.pk, now=campaign.ab_decide_at) is not None
    campaign.refresh_from_db()
    assert campaign.ab_winner == 1
    assert campaign.ab_confidence < ab_tests.SIGNIFICANT


def test_pause_during_the_wait_decides_after_the_resume(workspace, owner, sender, sink):
    campaign = start(ab_draft(workspace, owner, people=20), owner)
    work(campaign)
    assert len(sink.messages) == 4
    campaigns.pause_campaign(campaign, user=owner)
    later = campaign.ab_decide_at + timedelta(hours=1)
    with freeze_time(later):
        assert pipeline.advance_campaigns()["decided"] == 0
    campaign.refresh_from_db()
    assert campaign.ab_decided_at is None and len(sink.messages) == 4
    # Resumed, the workers find only held rows and wait again.
    campaigns.resume_campaign(campaign, user=owner)
    work(campaign)
    assert len(sink.messages) == 4 and campaign.status == CampaignStatus.SENDING
    with freeze_time(later):
        assert pipeline.advance_campaigns()["decided"] == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT and len(sink.messages) == 20


def test_cancel_during_the_wait_sends_no_more(workspace, owner, sender, sink):
    campaign = start(ab_draft(workspace, owner, people=20), owner)
    work(campaign)
    campaigns.cancel_campaign(campaign, user=owner)
    with freeze_time(campaign.ab_decide_at + timedelta(hours=1)):
        assert pipeline.advance_campaigns()["decided"] == 0
    work(campaign)
    assert len(sink.messages) == 4
    assert deliveries(campaign).filter(variant__isnull=True, status="cancelled").count() == 16


def test_a_campaign_without_a_test_is_not_touched(workspace, owner, sender, sink):
    news = mailing_list(workspace)
    subscribers(workspace, news, 5)
    campaign = draft(workspace, owner, news, ab_variants=[B])  # variants kept, test off
    campaign = start(campaign, owner)
    assert campaign.ab_decide_at is None
    assert not deliveries(campaign).filter(variant__isnull=False).exists()
    work(campaign)
    assert campaign.status == CampaignStatus.SENT
    assert all(m.message["Subject"].startswith("News for") for m in sink.messages)


def test_everyone_in_the_test_is_decided_for_the_report(workspace, owner, sender, sink):
    campaign = start(ab_draft(workspace, owner, people=2, ab_share=10), owner)
    work(campaign)
    assert campaign.status == CampaignStatus.SENT  # both were in the test, nobody waits
    with freeze_time(campaign.ab_decide_at):
        assert ab_tests.decide_due() == 1
    campaign.refresh_from_db()
    assert campaign.ab_winner == 0


# --- The numbers -----------------------------------------------------------------------------


def test_the_z_test():
    # 20 % of 1000 against 25 % of 1000: pooled 22.5 %, z = 2.677, two-sided p = 0.0074.
    value = ab_tests.confidence(200, 1000, 250, 1000)
    assert value == pytest.approx(0.99258, abs=1e-4)
    # 10 % against 12 % of 500 each: z = 1.01, not significant.
    assert ab_tests.confidence(50, 500, 60, 500) == pytest.approx(math.erf(1.0107 / 2**0.5), 1e-3)
    assert ab_tests.confidence(5, 10, 5, 10) == 0.0
    assert ab_tests.confidence(0, 10, 0, 10) == 0.0
    assert ab_tests.confidence(1, 0, 1, 10) is None


def test_judge_takes_the_weakest_comparison():
    def result(index, delivered, opened):
        return ab_tests.VariantResult(index, "", "", "", delivered, delivered, delivered, opened, 0)

    found = [result(0, 1000, 200), result(1, 1000, 260), result(2, 1000, 250)]
    outcome = ab_tests.judge(found, "open_rate")
    assert outcome.leader == 1
    assert outcome.confidence == pytest.approx(ab_tests.confidence(260, 1000, 250, 1000))
    assert not outcome.significant
    assert ab_tests.judge([result(0, 0, 0), result(1, 0, 0)], "open_rate").leader == 0


def test_the_test_of_two_means():
    # A: 1,000 recipients, 10 of them won 500.00 each: mean 5, variance 2,477.48;
    # B: 1,000 recipients, 30 won 500.00: mean 15, variance 7,282.28.
    # z = 10 / sqrt(2.47748 + 7.28228) = 3.2010: 99.86 %.
    a = (5000.0, 10 * 500.0**2, 1000)
    b = (15000.0, 30 * 500.0**2, 1000)
    assert ab_tests.mean_confidence(*a, *b) == pytest.approx(math.erf(3.20096 / 2**0.5), 1e-6)
    # 1 against 2 winners of 500.00 among 100 each: variances 2,500 and 4,949.49,
    # z = 5 / sqrt(25 + 49.4949) = 0.5793, not significant.
    small = ab_tests.mean_confidence(500.0, 500.0**2, 100, 1000.0, 2 * 500.0**2, 100)
    assert small == pytest.approx(math.erf(0.57930 / 2**0.5), 1e-4)
    assert ab_tests.mean_confidence(0.0, 0.0, 50, 0.0, 0.0, 50) == 0.0
    assert ab_tests.mean_confidence(500.0, 500.0**2, 1, 0.0, 0.0, 50) is None


def test_winner_by_revenue(workspace, owner, sender, sink):
    from decimal import Decimal

    from patron.crm.models import Contact

    campaign = start(ab_draft(workspace, owner, people=40, ab_share=50, ab_metric="revenue"), owner)
    work(campaign)
    a_rows = list(deliveries(campaign).filter(variant=0).order_by("pk"))
    b_rows = list(deliveries(campaign).filter(variant=1).order_by("pk"))
    assert len(a_rows) == len(b_rows) == 10

    def people(rows):
        return list(
            Contact.objects.for_workspace(workspace).filter(pk__in=[r.contact_id for r in rows])
        )

    after = timezone.now() + timedelta(hours=1)
    won_deal(workspace, people(a_rows[:1]), "300.00", after)
    # B: one deal of 1,000.00 shared by two recipients, and one of 99.99 alone.
    won_deal(workspace, people(b_rows[:2]), "1000.00", after)
    won_deal(workspace, people(b_rows[2:3]), "99.99", after)
    # Not counted: another currency, a deal closed before the message, one still open,
    # one closed after the decision.
    won_deal(workspace, people(a_rows[1:2]), "5000.00", after, currency="EUR")
    won_deal(workspace, people(a_rows[2:3]), "5000.00", timezone.now() - timedelta(days=1))
    won_deal(workspace, people(a_rows[3:4]), "5000.00", after, won=False)
    won_deal(workspace, people(a_rows[4:5]), "5000.00", campaign.ab_decide_at + timedelta(hours=1))

    revenue = ab_tests.variant_revenue(campaign, until=campaign.ab_decide_at)
    assert revenue[0] == (Decimal("300.00"), pytest.approx(300.0**2))
    assert revenue[1] == (Decimal("1099.99"), pytest.approx(2 * 500.0**2 + 99.99**2))
    assert None not in revenue  # the rest got nothing yet

    assert ab_tests.pick_winner(campaign.pk, now=campaign.ab_decide_at) is not None
    campaign.refresh_from_db()
    assert campaign.ab_winner == 1
    expected = ab_tests.mean_confidence(300.0, 300.0**2, 10, 1099.99, 2 * 500.0**2 + 99.99**2, 10)
    assert campaign.ab_confidence == pytest.approx(expected)
    assert campaign.ab_confidence < ab_tests.SIGNIFICANT  # three deals prove little
    with freeze_time(campaign.ab_decide_at):
        shown = ab_tests.state(campaign)
    assert shown is not None
    assert [v.revenue_per_recipient for v in shown.variants] == [
        Decimal("30.00"),
        Decimal("110.00"),
    ]


def test_a_revenue_test_needs_no_tracking(workspace, owner, sender):
    campaign = ab_draft(
        workspace, owner, people=4, ab_metric="revenue", track_opens=False, track_clicks=False
    )
    codes = [problem.code for problem in campaigns.check_campaign(campaign)]
    assert "ab_tracking" not in codes


def test_the_report_counts_each_variant(workspace, owner, sender, sink):
    campaign = start(ab_draft(workspace, owner, people=20, ab_share=50), owner)
    work(campaign)
    for row in deliveries(campaign).filter(variant=1)[:3]:
        hit(row)
        hit(row, kind="click", link=0)
    numbers = reports.variant_numbers(campaign)
    assert (numbers[0].sent, numbers[0].opened) == (5, 0)
    assert (numbers[1].sent, numbers[1].opened, numbers[1].clicked) == (5, 3, 3)
    assert numbers[None].recipients == 10 and numbers[None].sent == 0
    shown = ab_tests.state(campaign)
    assert shown is not None and not shown.decided and shown.leader_letter == "B"
    assert shown.waiting == 10
    assert [v.open_rate for v in shown.variants] == [0.0, 0.6]


# --- Content variants ------------------------------------------------------------------------

TEMPLATE_BODY = (
    "<html><body><p>Big news, {{ contact.first_name }}!</p>"
    '<p><a href="https://acme.example/sale">The sale</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> · {{ postal_address }}</p>'
    "</body></html>"
)


def saved_template(workspace, body=TEMPLATE_BODY, **values):
    from patron.mail.models import EmailTemplate, TemplateKind

    given = {"name": "Sale design", "kind": TemplateKind.MARKETING, "format": "html"}
    return EmailTemplate.objects.create(workspace=workspace, body=body, **{**given, **values})


def test_a_variant_can_send_a_saved_templates_content(
    client, workspace, owner, sender, sink, settings
):
    settings.SEND_CHUNK_SIZE = 10
    design = saved_template(workspace)
    campaign = start(
        ab_draft(workspace, owner, people=20, ab_share=50,
                 ab_variants=[{"template": str(design.pk)}]),
        owner,
    )  # fmt: skip
    assert campaign.ab_variants == [{"subject": "", "preheader": "", "from_name": "",
                                     "template": design.pk}]  # fmt: skip
    work(campaign)
    rows = {row.email: row for row in deliveries(campaign)}
    assert len(sink.messages) == 10
    for received in sink.messages:
        html = received.message.get_body(("html",)).get_content()
        first = "R" + received.recipients[0].split("@")[0].removeprefix("reader")
        # Both keep A's subject; B has the template's content, with its links tracked.
        assert received.message["Subject"] == f"News for {first}"
        if rows[received.recipients[0]].variant == 1:
            assert f"Big news, {first}!" in html and "/t/c/" in html
        else:
            assert f"Hello {first}," in html and "Big news" not in html
    # The view-in-browser page of a B message shows B.
    b_row = next(row for row in rows.values() if row.variant == 1)
    from patron.mail import tokens

    page = client.get(f"/m/{tokens.sign('view', workspace.pk, b_row.pk)}/")
    assert "Big news" in page.content.decode()


def test_a_variants_template_must_be_the_workspaces_and_must_pass_the_checks(
    workspace, owner, sender
):
    from tests.factories import WorkspaceFactory

    elsewhere = saved_template(WorkspaceFactory())
    news = mailing_list(workspace)
    subscribers(workspace, news, 3)
    with pytest.raises(campaigns.CampaignInvalid) as caught:
        draft(workspace, owner, news, ab_test=True, ab_variants=[{"template": elsewhere.pk}])
    assert "ab_variants" in caught.value.errors
    broken = saved_template(workspace, body="<p>{% if %}</p>", name="Broken")
    campaign = draft(workspace, owner, news, ab_test=True, ab_variants=[{"template": broken.pk}])
    problems = [p for p in campaigns.check_campaign(campaign) if p.part == "ab_test"]
    assert problems and problems[0].message.startswith("Variant B: ")
    missing = saved_template(workspace, body="<p>No way out</p>", name="No unsubscribe")
    campaign.ab_variants = [{"template": missing.pk}]
    problems = [p for p in campaigns.check_campaign(campaign) if p.part == "ab_test"]
    assert any("unsubscribe" in p.message.lower() for p in problems)


# --- Send-time variants ----------------------------------------------------------------------


def test_a_send_time_test_sends_each_variant_at_its_time_and_the_rest_at_the_winners(
    workspace, owner, sender, sink, settings
):
    settings.SEND_CHUNK_SIZE = 100
    start_at = timezone.now()
    with freeze_time(start_at):
        campaign = start(
            ab_draft(workspace, owner, people=20, ab_share=50, ab_wait_hours=2,
                     ab_variants=[{"delay_hours": "3"}]),
            owner,
        )  # fmt: skip
        assert campaign.ab_variants == [
            {"subject": "", "preheader": "", "from_name": "", "delay_hours": 3}
        ]
        # The wait runs from the later variant's send.
        assert campaign.ab_decide_at == campaign.started_at + timedelta(hours=5)
        work(campaign)
    assert len(sink.messages) == 5  # A now; B waits three hours
    b_rows = deliveries(campaign).filter(variant=1)
    assert {row.not_before for row in b_rows} == {campaign.started_at + timedelta(hours=3)}
    with freeze_time(campaign.started_at + timedelta(hours=3, minutes=1)):
        pipeline.advance_campaigns()
        work(campaign)
    assert len(sink.messages) == 10
    for row in deliveries(campaign).filter(variant=1)[:4]:
        hit(row)
    decided = campaign.started_at + timedelta(hours=5, minutes=1)
    with freeze_time(decided):
        pipeline.advance_campaigns()
    campaign.refresh_from_db()
    assert campaign.ab_winner == 1
    # The rest goes at B's time of day: start + 3 h, the next day.
    expected = campaign.started_at + timedelta(hours=27)
    rest = deliveries(campaign).filter(variant__isnull=True)
    assert {row.not_before for row in rest} == {expected}
    assert len(sink.messages) == 10
    with freeze_time(expected + timedelta(minutes=1)):
        pipeline.advance_campaigns()
        work(campaign)
    assert len(sink.messages) == 20


def test_a_variants_delay_is_checked(workspace, owner):
    news = mailing_list(workspace)
    with pytest.raises(campaigns.CampaignInvalid) as caught:
        draft(workspace, owner, news, ab_test=True, ab_variants=[{"delay_hours": 100}])
    assert "0 to 72 hours" in caught.value.errors["ab_variants"]
