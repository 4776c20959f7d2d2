"""A/B tests on the pages and the API: the editor's section, the campaign page's status,
the report's table of variants, and the campaign and report endpoints."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from patron.crm.models import Contact
from patron.mail import ab_tests, campaigns, pipeline
from patron.mail.models import Campaign, Delivery, SendChunk
from patron.tracking.models import Hit
from tests.mail.campaign_helpers import won_deal
from tests.mail.campaign_setup import make_audience, ready_values

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(workspace):
    return make_audience(workspace)


@pytest.fixture
def draft(workspace, owner, people):
    return campaigns.create_campaign(workspace, user=owner, values=ready_values(people))


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
        "track_opens": "on",
        "track_clicks": "on",
    }
    audience = campaign.audience or {}
    for side in ("include", "exclude"):
        for kind in ("lists", "segments"):
            data[f"{side}_{kind}"] = [str(pk) for pk in (audience.get(side) or {}).get(kind, [])]
    data.update(overrides)
    return data


def sent_test(campaign: Campaign, owner, *, b_opens: int) -> Campaign:
    """Start a 50 % test of A against B, send it, and let ``b_opens`` of B's people open."""
    campaigns.update_campaign(
        campaign,
        user=owner,
        values={"ab_test": True, "ab_variants": [{"subject": "Plan B"}], "ab_share": 50},
    )
    campaigns.schedule_campaign(campaign, user=owner)
    pipeline.start_campaign(campaign.pk)
    for chunk_id in SendChunk.objects.for_workspace(campaign.workspace_id).values_list(
        "pk", flat=True
    ):
        pipeline.run_chunk(chunk_id)
    campaign.refresh_from_db()
    rows = Delivery.objects.for_workspace(campaign.workspace_id).filter(campaign=campaign)
    for row in rows.filter(variant=1)[:b_opens]:
        Hit.objects.create(
            workspace_id=row.workspace_id,
            kind="open",
            campaign_id=campaign.pk,
            delivery_id=row.pk,
            contact_id=row.contact_id,
            processed_at=timezone.now(),
        )
    return campaign


# --- The editor ------------------------------------------------------------------------------


def test_the_editor_saves_the_test(logged_in, draft):
    page = logged_in.get(f"/campaigns/{draft.pk}/").content.decode()
    assert 'id="ab-test"' in page and "Variant B" in page and "Variant D" in page
    assert '<option value="revenue">Revenue per recipient</option>' in page
    response = logged_in.post(
        f"/campaigns/{draft.pk}/save/",
        editor_data(
            draft,
            ab_test="on",
            ab_share="30",
            ab_metric="click_rate",
            ab_wait_hours="6",
            variant_b_subject="Another subject",
            variant_c_from_name="Marta at Lumiar",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    draft.refresh_from_db()
    assert draft.ab_test is True
    assert (draft.ab_share, draft.ab_metric, draft.ab_wait_hours) == (30, "click_rate", 6)
    assert draft.ab_variants == [
        {"subject": "Another subject", "preheader": "", "from_name": ""},
        {"subject": "", "preheader": "", "from_name": "Marta at Lumiar"},
    ]
    page = logged_in.get(f"/campaigns/{draft.pk}/").content.decode()
    assert 'value="Another subject"' in page and 'value="Marta at Lumiar"' in page

    # Turned off, the variants stay for later.
    response = logged_in.post(
        f"/campaigns/{draft.pk}/save/",
        editor_data(
            draft,
            variant_b_subject="Another subject",
            variant_c_from_name="Marta at Lumiar",
        ),
    )
    draft.refresh_from_db()
    assert draft.ab_test is False and len(draft.ab_variants) == 2


def test_the_editor_says_what_is_wrong(logged_in, draft):
    response = logged_in.post(
        f"/campaigns/{draft.pk}/save/",
        editor_data(draft, ab_test="on", ab_share="80", ab_wait_hours="0"),
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Ensure this value is less than or equal to 50" in page
    draft.refresh_from_db()
    assert draft.ab_test is False
    # On, without a variant: the checks say so and sending is refused.
    logged_in.post(f"/campaigns/{draft.pk}/save/", editor_data(draft, ab_test="on"))
    page = logged_in.get(f"/campaigns/{draft.pk}/").content.decode()
    assert "Add variant B, or turn the A/B test off." in page and "A/B test" in page


# --- The campaign page and the report --------------------------------------------------------


def test_the_campaign_page_and_report_while_testing(logged_in, draft, owner):
    campaign = sent_test(draft, owner, b_opens=1)
    page = logged_in.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "A/B test: testing on 50% of the audience until" in page
    assert "Leading so far by unique open rate: variant B" in page
    assert "not significant" in page

    report = logged_in.get(f"/campaigns/{campaign.pk}/report/").content.decode()
    assert 'id="ab-variants"' in report and "No winner yet; variant B leads" in report
    assert 'data-variant="A"' in report and 'data-variant="B"' in report
    assert "Plan B" in report and "waiting for the winner" in report


def test_the_campaign_page_and_report_after_the_winner(logged_in, draft, owner):
    campaign = sent_test(draft, owner, b_opens=1)
    assert ab_tests.pick_winner(campaign.pk, now=campaign.ab_decide_at) is not None
    pipeline.advance_campaigns(campaign.ab_decide_at)
    campaign.refresh_from_db()
    page = logged_in.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "A/B test: variant B won" in page
    assert "By unique open rate, chosen" in page
    report = logged_in.get(f"/campaigns/{campaign.pk}/report/").content.decode()
    assert "Variant B won" in report and "Variant B, the winner" in report
    assert "Winner</span>" in report


def test_a_revenue_test_on_the_report_and_the_api(logged_in, api, draft, owner):
    campaigns.update_campaign(draft, user=owner, values={"ab_metric": "revenue"})
    campaign = sent_test(draft, owner, b_opens=0)
    b_row = (
        Delivery.objects.for_workspace(campaign.workspace_id)
        .filter(campaign=campaign, variant=1)
        .first()
    )
    contact = Contact.objects.for_workspace(campaign.workspace_id).get(pk=b_row.contact_id)
    won_deal(campaign.workspace, [contact], "1250.00", timezone.now())
    b_size = (
        Delivery.objects.for_workspace(campaign.workspace_id)
        .filter(campaign=campaign, variant=1)
        .count()
    )

    report = logged_in.get(f"/campaigns/{campaign.pk}/report/").content.decode()
    assert "No winner yet; variant B leads" in report
    assert "Welch" in report and 'class="text-end ab-revenue">$1,250.00<' in report
    per = Decimal("1250.00") / b_size
    assert f'class="text-end ab-revenue-per">${per:,.2f}<' in report
    assert (
        "Leading so far by revenue per recipient: variant B"
        in logged_in.get(f"/campaigns/{campaign.pk}/").content.decode()
    )

    test = api.get(f"/api/v1/campaigns/{campaign.pk}/report").json()["ab_test"]
    assert test["metric"] == "revenue"
    assert [Decimal(v["revenue"]) for v in test["variants"]] == [Decimal(0), Decimal("1250")]
    assert test["variants"][0]["revenue_per_recipient"] in ("0.00", "0", 0)


def test_a_campaign_without_a_test_shows_none(logged_in, draft, owner):
    campaigns.schedule_campaign(draft, user=owner)
    pipeline.start_campaign(draft.pk)
    assert 'id="ab-status"' not in logged_in.get(f"/campaigns/{draft.pk}/").content.decode()
    report = logged_in.get(f"/campaigns/{draft.pk}/report/").content.decode()
    assert 'id="ab-results"' not in report


# --- The API ---------------------------------------------------------------------------------


def test_the_api_writes_and_reads_the_test(api, people):
    payload = {
        **{k: v for k, v in ready_values(people).items() if k != "sender"},
        "sender_id": people.sender.pk,
        "ab_test": True,
        "ab_variants": [{"subject": "Plan B", "from_name": "Marta"}],
        "ab_metric": "click_rate",
    }
    response = api.post("/api/v1/campaigns", payload)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["ab_test"] is True and body["ab_metric"] == "click_rate"
    assert body["ab_variants"] == [{"subject": "Plan B", "preheader": "", "from_name": "Marta"}]
    assert (body["ab_share"], body["ab_wait_hours"], body["ab_winner"]) == (20, 4, None)

    url = f"/api/v1/campaigns/{body['id']}"
    response = api.patch(url, {"ab_share": 5, "ab_metric": "orders"})
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"ab_share", "ab_metric"}
    response = api.patch(url, {"ab_variants": []})
    assert response.status_code == 200 and response.json()["ab_variants"] == []
    checks = api.get(f"{url}/checks").json()
    assert any(p["part"] == "ab_test" and p["blocking"] for p in checks)


def test_the_report_api_gives_each_variant(api, draft, owner):
    campaign = sent_test(draft, owner, b_opens=1)
    body = api.get(f"/api/v1/campaigns/{campaign.pk}/report").json()
    test = body["ab_test"]
    assert test["decided"] is False and test["winner"] is None and test["leader"] == "B"
    assert [v["variant"] for v in test["variants"]] == ["A", "B"]
    assert test["variants"][1]["subject"] == "Plan B" and test["variants"][1]["opened"] == 1
    assert test["rest"]["variant"] == "rest"
    assert test["share"] == 50 and test["significant"] is False
    ab_tests.pick_winner(campaign.pk, now=campaign.ab_decide_at + timedelta(seconds=1))
    body = api.get(f"/api/v1/campaigns/{campaign.pk}/report").json()
    assert body["ab_test"]["winner"] == "B" and body["ab_test"]["decided"] is True
    assert api.get(f"/api/v1/campaigns/{campaign.pk}").json()["ab_winner"] == "B"


def test_the_editor_offers_saved_templates_as_a_variants_content(logged_in, draft):
    from patron.mail.models import EmailTemplate, TemplateKind

    design = EmailTemplate.objects.create(
        workspace=draft.workspace, name="Spring design", kind=TemplateKind.MARKETING,
        format="html", body="<p>Spring</p>",
    )  # fmt: skip
    EmailTemplate.objects.create(
        workspace=draft.workspace, name="A personal note", kind=TemplateKind.PERSONAL,
        format="html", body="<p>Hi</p>",
    )  # fmt: skip
    page = logged_in.get(f"/campaigns/{draft.pk}/").content.decode()
    assert "Content of variant B" in page and "Spring design" in page
    assert "A personal note" not in page
    response = logged_in.post(
        f"/campaigns/{draft.pk}/save/",
        editor_data(draft, ab_test="on", variant_b_template=str(design.pk)),
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.ab_variants == [
        {"subject": "", "preheader": "", "from_name": "", "template": design.pk}
    ]
    page = logged_in.get(f"/campaigns/{draft.pk}/").content.decode()
    assert f'<option value="{design.pk}" selected>Spring design</option>' in page


def test_the_editor_takes_a_send_time_variant(logged_in, draft):
    page = logged_in.get(f"/campaigns/{draft.pk}/").content.decode()
    assert "Send variant B later (hours)" in page
    response = logged_in.post(
        f"/campaigns/{draft.pk}/save/",
        editor_data(draft, ab_test="on", variant_b_delay_hours="4"),
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.ab_variants[0]["delay_hours"] == 4
    response = logged_in.post(
        f"/campaigns/{draft.pk}/save/",
        editor_data(draft, ab_test="on", variant_b_delay_hours="99"),
    )
    assert response.status_code == 400
