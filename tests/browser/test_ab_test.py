"""A marketer tests two subjects on half of a list, people open B more, the scheduler
picks B after the wait and sends it to the rest; the campaign page and the report say so."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from patron.core.services import create_workspace
from patron.crm.models import Contact
from patron.mail import campaigns, pipeline
from patron.mail.models import Campaign, Delivery, OutboxMessage
from patron.tracking.models import Hit
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, ContactFactory, UserFactory
from tests.mail.campaign_helpers import subscribe, won_deal
from tests.mail.campaign_setup import GOOD_BODY, make_audience

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def marketer():
    user = UserFactory(email="ines@lumiar.example", name="Inês Sampaio")
    workspace = create_workspace(name="Livraria Lumiar", owner=user)
    people = make_audience(workspace)  # Ann and Bob are on the newsletter
    for n in range(30):
        reader = ContactFactory(
            workspace=workspace, first_name=f"Reader{n}", email=f"reader{n}@lumiar.example"
        )
        subscribe(reader, people.newsletter)
    campaign = campaigns.create_campaign(
        workspace,
        user=user,
        values={
            "name": "Spring news",
            "subject": "Spring at Lumiar",
            "format": "html",
            "body": GOOD_BODY,
            "audience": {"include": {"lists": [people.newsletter.pk]}},
        },
    )
    return user, workspace, campaign


def set_up_test(page, user, campaign, metric: str, *, hours: int, subject: str) -> None:
    """Log in and save the campaign as a 50 % test of A against B with ``subject``."""
    log_in(page, user.email, PASSWORD)
    page.goto(f"/campaigns/{campaign.pk}/")
    test = page.locator("#ab-test")
    test.get_by_label("Test variants on part of the audience first").check()
    test.get_by_label("Test share (% of the audience)").fill("50")
    test.get_by_label("Winner by").select_option(label=metric)
    test.get_by_label("Hours before the winner is chosen").fill(str(hours))
    test.get_by_label("Subject of variant B").fill(subject)
    page.get_by_role("button", name="Save campaign").click()
    expect(page.locator(".alert-success")).to_contain_text("Campaign “Spring news” saved.")


def test_a_subject_test_picks_the_winner_and_sends_it_to_the_rest(page, marketer, tmp_path: Path):
    user, workspace, campaign = marketer
    set_up_test(page, user, campaign, "Unique open rate", hours=2, subject="Last days of spring")
    expect(page.locator("#id_variant_b_subject")).to_have_value("Last days of spring")
    expect(page.locator("#checks-passed")).to_be_visible()

    page.get_by_role("button", name="Review and send…").click()
    expect(page.locator("#confirm-ab")).to_contain_text(
        "50% of them get the variants first; 2 hours after the start the winner goes to the rest."
    )
    page.get_by_role("button", name="Send now to 32 recipients").click()
    # The test group went at once (8 of A, 8 of B); the rest waits for the winner.
    expect(page.locator("#ab-testing")).to_contain_text(
        "A/B test: testing on 50% of the audience until"
    )
    expect(page.locator("#ab-status")).to_contain_text("16 recipients wait for the winner.")
    expect(page.locator("#campaign-progress-text")).to_contain_text("16 of 32 sent")
    page.screenshot(path=str(tmp_path / "ab-testing.png"), full_page=True)

    # The report (a page that does not poll, while this thread writes to the database).
    page.locator("#ab-status").get_by_role("link", name="Each variant's numbers").click()
    expect(page.locator("#ab-summary")).to_contain_text("No winner yet")
    expect(page.locator('#ab-variants tr[data-variant="rest"]')).to_contain_text(
        "16 waiting for the winner"
    )

    # People open B far more: 7 of 8 against 1 of 8.
    campaign = Campaign.objects.for_workspace(workspace).get(pk=campaign.pk)
    rows = Delivery.objects.for_workspace(workspace).filter(campaign=campaign)
    assert rows.filter(variant=0).count() == 8 and rows.filter(variant=1).count() == 8
    for row in [*rows.filter(variant=1)[:7], *rows.filter(variant=0)[:1]]:
        Hit.objects.create(
            workspace=workspace,
            kind="open",
            campaign_id=campaign.pk,
            delivery_id=row.pk,
            contact_id=row.contact_id,
            processed_at=timezone.now(),
        )
    # The scheduler's round after the wait: B wins, and the rest is sent B.
    counts = pipeline.advance_campaigns(campaign.ab_decide_at + timedelta(seconds=1))
    assert counts["decided"] == 1

    page.reload()
    expect(page.locator("#ab-summary")).to_contain_text("Variant B won")
    expect(page.locator("#ab-summary")).to_contain_text("(99% confidence)")
    winner = page.locator('#ab-variants tr[data-variant="B"]')
    expect(winner).to_contain_text("Winner")
    expect(winner.locator(".ab-open-rate")).to_have_text("87.5%")
    expect(page.locator('#ab-variants tr[data-variant="A"] .ab-open-rate')).to_have_text("12.5%")
    expect(page.locator('#ab-variants tr[data-variant="rest"]')).to_contain_text(
        "Variant B, the winner"
    )
    page.screenshot(path=str(tmp_path / "ab-report.png"), full_page=True)

    page.goto(f"/campaigns/{campaign.pk}/")
    expect(page.locator("#campaign-status")).to_have_text("Sent")
    expect(page.locator("#ab-winner")).to_have_text("A/B test: variant B won")
    expect(page.locator("#ab-status")).to_contain_text("(99% confidence)")
    expect(page.locator("#total-sent")).to_have_text("32")

    # Everyone got one message: the 8 of A with A's subject, the other 24 with B's.
    subjects = list(
        OutboxMessage.objects.filter(workspace=workspace).values_list("subject", flat=True)
    )
    assert len(subjects) == 32
    assert subjects.count("Spring at Lumiar") == 8
    assert subjects.count("Last days of spring") == 24
    recipients = [m.to[0] for m in OutboxMessage.objects.filter(workspace=workspace)]
    assert len(set(recipients)) == 32


def test_a_revenue_test_credits_the_deals_the_recipients_won(page, marketer):
    user, workspace, campaign = marketer
    set_up_test(
        page, user, campaign, "Revenue per recipient", hours=168, subject="Our spring offer"
    )
    expect(page.locator("#id_ab_metric")).to_have_value("revenue")

    page.get_by_role("button", name="Review and send…").click()
    expect(page.locator("#confirm-ab")).to_contain_text("168 hours after the start")
    page.get_by_role("button", name="Send now to 32 recipients").click()
    expect(page.locator("#ab-status")).to_contain_text("16 recipients wait for the winner.")

    # Two of B's recipients buy (900.00 and 300.00), one of A's (150.00).
    campaign = Campaign.objects.for_workspace(workspace).get(pk=campaign.pk)
    rows = Delivery.objects.for_workspace(workspace).filter(campaign=campaign)
    buyers = [*rows.filter(variant=1).order_by("pk")[:2], *rows.filter(variant=0)[:1]]
    for row, amount in zip(buyers, ("900.00", "300.00", "150.00"), strict=True):
        contact = Contact.objects.for_workspace(workspace).get(pk=row.contact_id)
        won_deal(workspace, [contact], amount, timezone.now())
    counts = pipeline.advance_campaigns(campaign.ab_decide_at + timedelta(seconds=1))
    assert counts["decided"] == 1

    page.goto(f"/campaigns/{campaign.pk}/report/")
    expect(page.locator("#ab-summary")).to_contain_text("Variant B won")
    expect(page.locator("#ab-summary")).to_contain_text("by revenue per recipient")
    winner = page.locator('#ab-variants tr[data-variant="B"]')
    expect(winner.locator(".ab-revenue")).to_have_text("$1,200.00")
    expect(winner.locator(".ab-revenue-per")).to_have_text("$150.00")
    expect(page.locator('#ab-variants tr[data-variant="A"] .ab-revenue-per')).to_have_text("$18.75")
    expect(page.locator("#ab-results")).to_contain_text("Welch")
