"""Rewriting a message's links, UTM parameters, numbering links, and the tokens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patron.tracking import links
from patron.tracking.models import TrackedLink

HTML = (
    "<html><body>"
    '<a href="https://shop.example/a?x=1&amp;y=2">A</a>'
    "<a class=\"button\" href='https://shop.example/b'>B</a>"
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a>'
    '<a href="https://shop.example/p/{{ contact.id }}">Yours</a>'
    '<a href="mailto:help@shop.example">Write</a>'
    '<a href="https://shop.example/a?x=1&amp;y=2">A again</a>'
    "</body></html>"
)
TEXT = "A: https://shop.example/a?x=1&y=2. B (https://shop.example/b)\n{{ unsubscribe_url }}"


def test_web_links_become_numbered_placeholders_and_the_pixel_goes_before_the_body_end():
    rewritten = links.rewrite(HTML, TEXT, track_clicks=True, track_opens=True)
    assert rewritten.urls == ["https://shop.example/a?x=1&y=2", "https://shop.example/b"]
    assert rewritten.html.count("{{ patron_links[0] }}") == 2
    assert "href='{{ patron_links[1] }}'" in rewritten.html
    # Merge-tag links, personal links and mailto stay as written.
    assert 'href="{{ unsubscribe_url }}"' in rewritten.html
    assert 'href="https://shop.example/p/{{ contact.id }}"' in rewritten.html
    assert 'href="mailto:help@shop.example"' in rewritten.html
    assert rewritten.html.endswith(links.PIXEL + "</body></html>")
    # The text part shares the numbers; the sentence's punctuation stays outside the link.
    assert rewritten.text.startswith("A: {{ patron_links[0] }}. B ({{ patron_links[1] }})")


def test_without_tracking_links_only_get_utm_parameters():
    utm = links.Utm(source="patron", medium="email", campaign="spring-sale")
    rewritten = links.rewrite(HTML, TEXT, track_clicks=False, track_opens=False, utm=utm)
    assert rewritten.urls == []
    assert "patron_open" not in rewritten.html
    assert (
        'href="https://shop.example/a?x=1&amp;y=2&amp;utm_source=patron&amp;utm_medium=email'
        '&amp;utm_campaign=spring-sale"'
    ) in rewritten.html
    tagged = "https://shop.example/b?utm_source=patron&utm_medium=email&utm_campaign=spring-sale"
    assert f"{tagged})" in rewritten.text


def test_a_utm_parameter_already_in_the_link_is_kept():
    utm = links.Utm(source="patron", medium="email", campaign="c")
    assert utm.add_to("https://x.example/?utm_source=ads#top") == (
        "https://x.example/?utm_source=ads&utm_medium=email&utm_campaign=c#top"
    )


def test_a_message_without_body_tag_gets_the_pixel_at_the_end():
    rewritten = links.rewrite("<p>Hi</p>", "", track_clicks=True, track_opens=True)
    assert rewritten.html == "<p>Hi</p>" + links.PIXEL


@pytest.mark.django_db
def test_links_keep_their_numbers_and_new_ones_come_after(workspace):
    first = links.register_links(
        workspace_id=workspace.pk, campaign_id=7, urls=["https://a.example", "https://b.example"]
    )
    again = links.register_links(
        workspace_id=workspace.pk, campaign_id=7, urls=["https://c.example", "https://a.example"]
    )
    assert first == [0, 1]
    assert again == [2, 0]
    assert TrackedLink.objects.for_workspace(workspace).filter(campaign_id=7).count() == 3


def test_tokens_carry_the_message_and_link_and_refuse_the_other_kind(settings):
    urls = links.recipient_urls(
        workspace_id=3, campaign_id=40, delivery_id=123456, contact_id=99, made_at=1_700_000_000,
        link_numbers=[0, 5],
    )  # fmt: skip
    open_token = urls.open.rsplit("/", 1)[1]
    click_token = urls.links[1].rsplit("/", 1)[1]
    assert urls.open.startswith(settings.TRACKING_BASE_URL + "/t/o/")
    assert links.read_open_token(open_token) == links.TokenValues(3, 40, 123456, 99, 1_700_000_000)
    assert links.read_click_token(click_token) == links.TokenValues(
        3, 40, 123456, 99, 1_700_000_000, 5
    )
    assert links.read_click_token(open_token) is None
    assert links.read_open_token(click_token) is None


@given(st.text(max_size=60))
def test_anything_that_is_not_a_token_is_refused(text):
    assert links.read_click_token(text) is None
    assert links.read_open_token(text) is None


@given(st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=5))
def test_a_token_changed_anywhere_is_refused(position, flip):
    token = (
        links.recipient_urls(
            workspace_id=1, campaign_id=2, delivery_id=3, contact_id=4, made_at=5, link_numbers=[1]
        )
        .links[0]
        .rsplit("/", 1)[1]
    )
    position %= len(token)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    replacement = alphabet[(alphabet.index(token[position]) + 1 + flip) % len(alphabet)]
    tampered = token[:position] + replacement + token[position + 1 :]
    assert links.read_click_token(tampered) is None


def test_destinations_are_uris_and_addresses_with_control_characters_are_left_alone():
    html = (
        '<a href="https://café.example/menü?q=ä">Menu</a>'
        '<a href="https://shop.example/a&#13;&#10;Set-Cookie: x=1">Bad</a>'
    )
    rewritten = links.rewrite(html, "", track_clicks=True, track_opens=False)
    assert rewritten.urls == ["https://xn--caf-dma.example/men%C3%BC?q=%C3%A4"]
    assert "Set-Cookie" in rewritten.html  # not rewritten: stays the author's own text
