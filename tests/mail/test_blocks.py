"""The builder's document: every block type becomes MJML, bad input is refused naming
the block, and dynamic blocks are found again by ``referenced_segments``."""

from __future__ import annotations

import copy

import pytest

from patron.mail import blocks
from patron.mail.rendering import TemplateSource, check_template, compile_template

IMAGE = "https://cdn.example.org/picture.png"


def document(*items: dict) -> dict:
    doc = blocks.empty_document()
    doc["blocks"] = [dict(blocks.new_block(item["type"]), **item) for item in items]
    return doc


def render(doc: dict, **context) -> str:
    mjml = blocks.blocks_to_mjml(doc)
    return compile_template(TemplateSource("Hi", mjml, "mjml")).render(context).html


def test_logo_is_a_linked_image_of_the_chosen_width():
    mjml = blocks.blocks_to_mjml(
        document({"type": "logo", "src": IMAGE, "alt": "Acme", "href": "https://acme.example"})
    )
    assert f'<mj-image src="{IMAGE}" alt="Acme" href="https://acme.example" width="160px"' in mjml
    html = render(document({"type": "logo", "src": IMAGE, "alt": "Acme"}))
    assert 'alt="Acme"' in html and IMAGE in html


def test_heading_is_escaped_and_sized():
    mjml = blocks.blocks_to_mjml(document({"type": "heading", "text": "Tom & <Jerry>"}))
    assert "<h1" in mjml and "Tom &amp; &lt;Jerry&gt;" in mjml
    medium = blocks.blocks_to_mjml(document({"type": "heading", "text": "x", "size": "medium"}))
    assert "<h2" in medium


def test_text_keeps_formatting_and_drops_anything_dangerous():
    html = (
        '<p onclick="steal()">Hi <strong>bold</strong> <em>it</em> '
        '<a href="https://example.org" style="color:red">link</a></p>'
        "<ul><li>one</li></ul><script>alert(1)</script><img src=x onerror=alert(1)>"
        '<a href="javascript:alert(1)">bad</a>'
    )
    doc = blocks.validate_blocks(document({"type": "text", "text": html}))
    text = doc["blocks"][0]["text"]
    assert "<strong>bold</strong>" in text and "<em>it</em>" in text and "<li>one</li>" in text
    assert '<a href="https://example.org">link</a>' in text
    for bad in ("onclick", "script", "<img", "javascript:", "style="):
        assert bad not in text


def test_merge_tags_in_text_survive_and_render():
    doc = document({"type": "text", "text": '<p>Hi {{ contact.first_name | default: "you" }}</p>'})
    assert "Hi Ada" in render(doc, contact={"first_name": "Ada"})
    assert "Hi you" in render(doc, contact={})


def test_image_button_and_columns():
    doc = document(
        {"type": "image", "src": IMAGE, "alt": "A picture", "href": "https://e.org/a",
         "width": 300},
        {"type": "button", "label": "Buy", "url": "https://e.org/buy?a=1&b={{ contact.email }}"},
        {
            "type": "columns",
            "columns": [
                {"src": IMAGE, "alt": "One", "text": "<p>First</p>", "button_label": "Go",
                 "button_url": "https://e.org/1"},
                {"src": "", "alt": "", "text": "<p>Second</p>", "button_label": "",
                 "button_url": ""},
                {"src": "", "alt": "", "text": "<p>Third</p>", "button_label": "",
                 "button_url": ""},
            ],
        },
    )  # fmt: skip
    mjml = blocks.blocks_to_mjml(doc)
    assert 'width="300px"' in mjml and 'alt="A picture"' in mjml
    assert 'href="https://e.org/buy?a=1&amp;b={{ contact.email }}"' in mjml
    assert mjml.count("<mj-column>") == 2 + 3  # image + button sections, three columns
    html = render(doc, contact={"email": "ada@example.org"})
    assert "https://e.org/buy?a=1&amp;b=ada@example.org" in html
    assert "First" in html and "Third" in html


def test_divider_spacer_and_social():
    mjml = blocks.blocks_to_mjml(
        document(
            {"type": "divider", "color": "#ff0000", "thickness": 3},
            {"type": "spacer", "height": 40},
            {"type": "social", "facebook": "https://facebook.com/acme", "x": "https://x.com/acme"},
        )
    )
    assert '<mj-divider border-color="#ff0000" border-width="3px"' in mjml
    assert '<mj-spacer height="40px" />' in mjml
    assert 'name="facebook-noshare" href="https://facebook.com/acme"' in mjml
    assert 'name="x-noshare"' in mjml and "instagram" not in mjml  # empty links left out
    html = render(document({"type": "social", "facebook": "https://facebook.com/acme"}))
    assert 'href="https://facebook.com/acme"' in html and "sharer" not in html


def test_footer_carries_address_and_unsubscribe_so_checks_pass():
    doc = document({"type": "text"}, {"type": "footer"})
    mjml = blocks.blocks_to_mjml(doc)
    assert check_template(TemplateSource("Hi", mjml, "mjml")) == []
    html = render(
        doc, postal_address="1 Main St\nSpringfield", unsubscribe_url="https://u.example/x"
    )
    assert "1 Main St\nSpringfield" in html and 'href="https://u.example/x"' in html
    without = blocks.blocks_to_mjml(document({"type": "text"}))
    codes = {problem.code for problem in check_template(TemplateSource("Hi", without, "mjml"))}
    assert {"unsubscribe", "postal_address"} <= codes


def test_settings_set_colours_and_font():
    doc = document({"type": "text"})
    doc["settings"].update(background="#000000", font="serif", link_color="#ff00ff")
    mjml = blocks.blocks_to_mjml(doc)
    assert '<mj-body background-color="#000000"' in mjml
    assert "Georgia" in mjml and "a { color: #ff00ff; }" in mjml


def test_a_segment_block_is_wrapped_and_found_again():
    doc = document({"type": "text", "text": "<p>For VIPs</p>", "segment": 12}, {"type": "footer"})
    mjml = blocks.blocks_to_mjml(doc)
    assert "{% if segments contains 12 %}<mj-section" in mjml
    assert blocks.referenced_segments(mjml) == {12}
    assert "For VIPs" in render(doc, segments=[12])
    assert "For VIPs" not in render(doc, segments=[3])


def test_referenced_segments_reads_hand_written_bodies():
    body = (
        "{% if segments contains 3 %}a{% endif %}{%- if segments contains 40 -%}b{% endif %}"
        "{% unless segments contains 7 %}c{% endunless %}{{ segments }}"
        "{% if x contains 9 %}{% endif %}"
    )
    assert blocks.referenced_segments(body) == {3, 40, 7}
    assert blocks.referenced_segments("") == set()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "carousel"}, "Block 1: unknown block type “carousel”"),
        ({"type": "button", "label": "Go", "url": "www.example"}, "Block 1 (Button): Link:"),
        ({"type": "button", "label": "", "url": "https://e.org"}, "Button text: this is required"),
        ({"type": "image", "src": "javascript:alert(1)"}, "Block 1 (Image): Image: an image needs"),
        ({"type": "divider", "color": "red; x"}, "Line colour: “red; x” is not a colour"),
        ({"type": "spacer", "height": 5000}, "Height (pixels): enter a number from 4 to 200"),
        ({"type": "spacer", "height": "tall"}, "enter a whole number"),
        ({"type": "heading", "text": "Hi", "align": "justify"}, "Alignment: choose one of"),
        ({"type": "columns", "columns": [{}]}, "Columns: between 2 and 3 are needed"),
        ({"type": "text", "segment": "vip"}, "Show only to a segment: choose a segment"),
    ],
)
def test_bad_blocks_are_refused_naming_the_block(change, message):
    raw = {"type": change["type"]}
    if change["type"] in blocks.BLOCK_TYPES:
        raw = blocks.new_block(change["type"])
        if change["type"] == "image":
            raw["src"] = IMAGE
    raw.update(change)
    with pytest.raises(blocks.BlocksInvalid) as caught:
        blocks.blocks_to_mjml({"version": 1, "settings": {}, "blocks": [raw]})
    assert message in str(caught.value)
    assert caught.value.index == 1


def test_a_segment_outside_the_allowed_set_is_refused():
    doc = document({"type": "text", "segment": 5})
    assert blocks.validate_blocks(doc, segment_ids={5})["blocks"][0]["segment"] == 5
    with pytest.raises(blocks.BlocksInvalid, match="does not exist in this workspace"):
        blocks.validate_blocks(doc, segment_ids={6})


def test_not_a_document_is_refused():
    for bad in ("<mjml/>", {"blocks": "x"}, {"blocks": [], "settings": []}, 3):
        with pytest.raises(blocks.BlocksInvalid):
            blocks.validate_blocks(bad)


def test_unknown_keys_are_dropped_and_defaults_filled():
    doc = blocks.validate_blocks([{"type": "spacer", "evil": "<script>"}])
    assert doc["blocks"] == [{"type": "spacer", "height": 24, "background": "", "segment": None}]
    assert doc["settings"]["font"] == "sans"


def test_attribute_values_cannot_break_out():
    doc = document({"type": "image", "src": IMAGE, "alt": 'x" onload="evil'})
    mjml = blocks.blocks_to_mjml(doc)
    assert 'alt="x&quot; onload=&quot;evil"' in mjml
    tagged = document(
        {"type": "image", "src": IMAGE, "alt": '{{ contact.first_name | default: "a" }}'}
    )
    assert "alt=\"{{ contact.first_name | default: 'a' }}\"" in blocks.blocks_to_mjml(tagged)


def test_the_schema_describes_every_block_type():
    schema = blocks.builder_schema()
    assert [t["type"] for t in schema["types"]] == list(blocks.BLOCK_TYPES)
    for block_type in schema["types"]:
        # A new block's defaults are a valid block once its required image is set.
        block = copy.deepcopy(block_type["defaults"])
        for key in ("src",):
            if key in block:
                block[key] = IMAGE
        if block["type"] == "button":
            block["url"] = "https://e.org"
        blocks.validate_blocks([block])
