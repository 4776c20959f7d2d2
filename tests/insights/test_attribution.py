"""Attribution: paths, the four models, and credits that add up to every deal's amount."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patron.activity.models import Event
from patron.insights import attribution
from patron.insights.periods import Filters
from tests.insights.conftest import Q1, at

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def touched(sales):
    """d5 (5,000 USD, won 21 Jan) has c1 with three touches before the win and one after;
    d8 (1,200 USD, won 1 Mar) has c2 with one touch; a won EUR deal has no contact."""
    from patron.mail.models import Campaign

    ws, c1, c2 = sales.workspace, sales.contacts["c1"], sales.contacts["c2"]
    spring = Campaign.objects.create(workspace=ws, name="Spring news", subject="Hi")
    sales.deals["d5"].contacts.add(c1)
    sales.deals["d8"].contacts.add(c2)
    for contact, kind, when, properties in [
        (c1, "email.clicked", at(1, 2), {"campaign": spring.pk, "url": "https://x.example/a"}),
        (
            c1,
            "page.viewed",
            at(1, 5),
            {"url": "/pricing", "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "q1"},
        ),
        (c1, "form.submitted", at(1, 10), {"form": "Demo request"}),
        (c1, "email.opened", at(1, 11), {"campaign": spring.pk}),  # not a touch
        (c1, "page.viewed", at(1, 25), {"url": "/after"}),  # after the win
        (c2, "page.viewed", at(2, 20), {"url": "/", "utm_source": "newsletter"}),
    ]:
        Event.objects.create(
            workspace=ws, kind=kind, contact_id=contact.pk, occurred_at=when, properties=properties
        )
    from tests.insights.conftest import _deal

    _deal(
        ws,
        sales.pipeline,
        sales.stages["Won"],
        "untouched",
        "999.99",
        "EUR",
        created_at=at(1, 1),
        closed_at=at(3, 10),
    )
    return sales


def test_paths_list_the_touches_before_each_win(touched):
    paths = {p.deal: p for p in attribution.paths(touched.workspace, Q1, Filters())}
    assert set(paths) == {"d5", "d8", "untouched"}
    d5 = paths["d5"]
    assert [(t.kind, t.channel, t.campaign) for t in d5.touches] == [
        ("email.clicked", "email", "Spring news"),
        ("page.viewed", "cpc", "q1"),
        ("form.submitted", "direct", ""),
    ]
    assert [(t.channel, t.detail) for t in paths["d8"].touches] == [("newsletter", "/")]
    assert paths["untouched"].touches == []


def test_credits_per_model_and_channel(touched):
    rows = {(r.key, r.currency): r for r in attribution.credits(touched.workspace, Q1, Filters())}
    email, cpc, direct = rows[("email", "USD")], rows[("cpc", "USD")], rows[("direct", "USD")]
    assert (email.first_touch, cpc.first_touch, direct.first_touch) == (D("5000"), 0, 0)
    assert (email.last_touch, cpc.last_touch, direct.last_touch) == (0, 0, D("5000"))
    # 5,000 in three: 1,666.67 + 1,666.67 + 1,666.66 (the leftover cent to the earlier touches).
    assert (email.linear, cpc.linear, direct.linear) == (
        D("1666.67"),
        D("1666.67"),
        D("1666.66"),
    )
    assert (email.position_based, cpc.position_based, direct.position_based) == (
        D("2000.00"),
        D("1000.00"),
        D("2000.00"),
    )
    newsletter = rows[("newsletter", "USD")]
    for model in attribution.MODELS:
        assert getattr(newsletter, model) == D("1200.00")  # one touch: everything
        # No touch at all: the whole amount to "no touch", in its own currency.
        assert getattr(rows[(attribution.NO_TOUCH, "EUR")], model) == D("999.99")
        usd = sum(getattr(r, model) for (key, currency), r in rows.items() if currency == "USD")
        assert usd == D("6200.00")  # d5 + d8: credits add up to the deals' amounts
    by_campaign = {
        r.key: r for r in attribution.credits(touched.workspace, Q1, Filters(), by="campaign")
    }
    assert by_campaign["Spring news"].first_touch == D("5000.00")
    assert by_campaign["q1"].linear == D("1666.67")


@pytest.mark.parametrize("count", [0, 1, 2, 3, 7])
@pytest.mark.parametrize("model", attribution.MODELS)
def test_every_model_credits_the_whole_amount(model, count):
    touches = [
        attribution.Touch(kind="page.viewed", occurred_at=None, channel=f"c{i}", campaign="")
        for i in range(count)
    ]
    path = attribution.DealPath(
        deal_id=1, deal="x", amount=D("100.01"), currency="USD", closed_at=None, touches=touches
    )
    parts = attribution.credit(path, model)
    assert sum(part for _touch, part in parts) == D("100.01")
    assert len(parts) == max(count, 1)


def test_position_based_weights():
    assert attribution.weights("position_based", 3) == [
        Fraction(2, 5),
        Fraction(1, 5),
        Fraction(2, 5),
    ]
    assert attribution.weights("position_based", 2) == [Fraction(1, 2)] * 2
    assert attribution.weights("position_based", 4)[1] == Fraction(1, 10)


@given(
    cents=st.integers(min_value=0, max_value=10**12),
    count=st.integers(min_value=1, max_value=40),
    model=st.sampled_from(attribution.MODELS),
)
def test_split_always_adds_up_to_the_cent(cents, count, model):
    amount = Decimal(cents) / 100
    parts = attribution.split(amount, attribution.weights(model, count))
    assert sum(parts) == amount
    assert all(part >= 0 for part in parts)


def test_paths_read_in_slices_of_contacts_are_the_same(touched, monkeypatch):
    # c1 is on both deals: its slice reaches from before d5's win to d8's.
    touched.deals["d8"].contacts.add(touched.contacts["c1"])
    whole = attribution.paths(touched.workspace, Q1, Filters())
    monkeypatch.setattr(attribution, "CONTACT_BATCH", 1)
    assert attribution.paths(touched.workspace, Q1, Filters()) == whole
    d8 = next(p for p in whole if p.deal == touched.deals["d8"].name)
    assert [t.detail for t in d8.touches] == [
        "https://x.example/a",
        "/pricing",
        "Demo request",
        "/after",
        "/",
    ]
