"""The block builder's document, checked and turned into MJML on the server.

A design made in the builder is a JSON document::

    {"version": 1,
     "settings": {"background": "#f4f4f5", "content_background": "#ffffff", ...},
     "blocks": [{"type": "heading", "text": "Hello", "segment": null, ...}, ...]}

``BLOCK_TYPES`` describes every block type: its fields, their kinds and
defaults. The builder's script draws its forms from that description
(``builder_schema()``), and ``validate_blocks()`` checks a document against
it, refusing unknown block types and bad values with a message that names the
block ("Block 3 (Button): ..."). ``blocks_to_mjml()`` validates, then writes
the MJML itself: the client never sends MJML, and every value is escaped
(rich text goes through ``nh3`` with a short list of allowed tags).

A block may be shown to one segment only: it is then wrapped in
``{% if segments contains 12 %}...{% endif %}`` (the segment id as a number),
and ``referenced_segments()`` finds those ids in any body, built or written.

The same builder makes landing pages (``PAGE``, a ``Kit`` beside ``EMAIL``):
their blocks are the email blocks without the footer (no unsubscribe on a web
page) and without segments (a visitor is anonymous), plus a **form** block that
embeds one of the workspace's forms. Its MJML is a placeholder comment
(``<!--patron-form:12-->``) that the page fills with the form's HTML when it is
shown; no text a user writes can produce one (text is escaped, rich text has
its comments stripped).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from html import escape
from typing import Any

import nh3
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from patron.mail.rendering import link_problem

VERSION = 1
TEXT_LIMIT = 500
RICH_LIMIT = 20_000
MAX_BLOCKS = 200

RICH_TAGS = {"p", "br", "strong", "b", "em", "i", "u", "a", "ul", "ol", "li"}
RICH_ATTRIBUTES = {"a": {"href", "title"}}
RICH_SCHEMES = {"http", "https", "mailto", "tel"}

FONTS = {
    "sans": "Helvetica, Arial, sans-serif",
    "serif": "Georgia, 'Times New Roman', serif",
    "modern": "'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif",
    "mono": "'Courier New', Courier, monospace",
}
SOCIAL_NETWORKS = {
    # field name -> (MJML icon name, label); "-noshare" links the profile, not a share page
    "facebook": ("facebook", "Facebook"),
    "instagram": ("instagram", "Instagram"),
    "linkedin": ("linkedin", "LinkedIn"),
    "x": ("x", "X"),
    "youtube": ("youtube", "YouTube"),
}
FORM_SLOT = re.compile(r"<!--patron-form:(\d+)-->")
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
_SEGMENT_TEST = re.compile(r"{%-?\s*(?:if|elsif|unless)\s+segments\s+contains\s+(\d+)\s*-?%}")


class BlocksInvalid(ValueError):
    """A document the builder cannot use; ``index`` is the 1-based block at fault (0: the
    document or its settings)."""

    def __init__(self, message: str, index: int = 0) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class Field:
    name: str
    label: Any  # a lazy translation
    kind: str  # text, rich, url, image, color, choice, int, items
    default: Any = ""
    required: bool = False
    choices: tuple[tuple[str, Any], ...] = ()
    minimum: int = 0
    maximum: int = 0
    items: tuple[Field, ...] = ()  # for kind "items": the fields of each item
    help: Any = ""


@dataclass(frozen=True)
class BlockType:
    name: str
    label: Any
    fields: tuple[Field, ...]
    description: Any = ""
    extra: dict[str, Any] = field(default_factory=dict)


ALIGN = (
    ("left", gettext_lazy("Left")),
    ("center", gettext_lazy("Centre")),
    ("right", gettext_lazy("Right")),
)


def _align(default: str = "left") -> Field:
    return Field("align", gettext_lazy("Alignment"), "choice", default, choices=ALIGN)


def _link(name: str = "href", label: Any = None, required: bool = False) -> Field:
    return Field(name, label or gettext_lazy("Link"), "url", required=required)


COLUMN_FIELDS = (
    Field("src", gettext_lazy("Image"), "image"),
    Field("alt", gettext_lazy("Image description (alt text)"), "text"),
    Field("text", gettext_lazy("Text"), "rich"),
    Field("button_label", gettext_lazy("Button text"), "text"),
    _link("button_url", gettext_lazy("Button link")),
)

BLOCK_TYPES: dict[str, BlockType] = {
    block.name: block
    for block in (
        BlockType(
            "logo",
            gettext_lazy("Logo"),
            (
                Field("src", gettext_lazy("Logo image"), "image", required=True),
                Field("alt", gettext_lazy("Image description (alt text)"), "text", "Logo"),
                _link(),
                Field("width", gettext_lazy("Width (pixels)"), "int", 160, minimum=20, maximum=600),
                _align("center"),
            ),
            gettext_lazy("Your logo at the top, linked to your site."),
        ),
        BlockType(
            "heading",
            gettext_lazy("Header"),
            (
                Field("text", gettext_lazy("Heading"), "text", "A heading", required=True),
                Field(
                    "size",
                    gettext_lazy("Size"),
                    "choice",
                    "large",
                    choices=(("large", gettext_lazy("Large")), ("medium", gettext_lazy("Medium"))),
                ),
                _align(),
                Field("color", gettext_lazy("Text colour"), "color"),
            ),
            gettext_lazy("A title for the message or a section."),
        ),
        BlockType(
            "text",
            gettext_lazy("Text"),
            (
                Field("text", gettext_lazy("Text"), "rich", "<p>Write something here.</p>"),
                _align(),
            ),
            gettext_lazy("Paragraphs with bold, italic, links and lists."),
        ),
        BlockType(
            "image",
            gettext_lazy("Image"),
            (
                Field("src", gettext_lazy("Image"), "image", required=True),
                Field("alt", gettext_lazy("Image description (alt text)"), "text"),
                _link(),
                Field(
                    "width", gettext_lazy("Width (pixels, 0: full width)"), "int", 0, maximum=600
                ),
            ),
            gettext_lazy("A picture from the image library, optionally linked."),
        ),
        BlockType(
            "button",
            gettext_lazy("Button"),
            (
                Field("label", gettext_lazy("Button text"), "text", "Read more", required=True),
                _link("url", gettext_lazy("Link"), required=True),
                Field("color", gettext_lazy("Button colour"), "color", "#2563eb"),
                Field("text_color", gettext_lazy("Text colour"), "color", "#ffffff"),
                _align("center"),
            ),
            gettext_lazy("A call to action."),
        ),
        BlockType(
            "columns",
            gettext_lazy("Columns"),
            (
                Field(
                    "columns",
                    gettext_lazy("Columns"),
                    "items",
                    minimum=2,
                    maximum=3,
                    items=COLUMN_FIELDS,
                ),
            ),
            gettext_lazy("Two or three columns side by side (stacked on phones)."),
        ),
        BlockType(
            "divider",
            gettext_lazy("Divider"),
            (
                Field("color", gettext_lazy("Line colour"), "color", "#e5e7eb"),
                Field(
                    "thickness", gettext_lazy("Thickness (pixels)"), "int", 1, minimum=1, maximum=10
                ),
            ),
            gettext_lazy("A thin line between sections."),
        ),
        BlockType(
            "spacer",
            gettext_lazy("Spacer"),
            (Field("height", gettext_lazy("Height (pixels)"), "int", 24, minimum=4, maximum=200),),
            gettext_lazy("Empty space."),
        ),
        BlockType(
            "social",
            gettext_lazy("Social links"),
            (
                *(
                    _link(name, format_lazy(gettext_lazy("{network} address"), network=label))
                    for name, (_icon, label) in SOCIAL_NETWORKS.items()
                ),
                _align("center"),
            ),
            gettext_lazy("Icons linking to your social profiles; empty ones are left out."),
        ),
        BlockType(
            "footer",
            gettext_lazy("Footer"),
            (
                Field("text", gettext_lazy("Text above the address"), "rich"),
                Field(
                    "unsubscribe_label",
                    gettext_lazy("Unsubscribe link text"),
                    "text",
                    "Unsubscribe",
                    required=True,
                ),
                Field(
                    "preferences_label",
                    gettext_lazy("Preferences link text (empty: no link)"),
                    "text",
                    "Update your preferences",
                ),
            ),
            gettext_lazy("Your postal address and the unsubscribe link, as the law asks."),
        ),
    )
}

COMMON_FIELDS = (
    Field("background", gettext_lazy("Background colour (empty: as the message)"), "color"),
    Field(
        "segment",
        gettext_lazy("Show only to a segment"),
        "segment",
        None,
        help=gettext_lazy("Everyone else does not see this block."),
    ),
)

SETTINGS_FIELDS = (
    Field("background", gettext_lazy("Page background"), "color", "#f4f4f5"),
    Field("content_background", gettext_lazy("Content background"), "color", "#ffffff"),
    Field("text_color", gettext_lazy("Text colour"), "color", "#1f2937"),
    Field("link_color", gettext_lazy("Link colour"), "color", "#2563eb"),
    Field(
        "font",
        gettext_lazy("Font"),
        "choice",
        "sans",
        choices=(
            ("sans", "Helvetica / Arial"),
            ("serif", "Georgia"),
            ("modern", "Segoe UI / Roboto"),
            ("mono", "Courier"),
        ),
    ),
)


@dataclass(frozen=True)
class Kit:
    """What one kind of document may hold: its block types and the fields every block has."""

    name: str
    types: dict[str, BlockType]
    common: tuple[Field, ...]


FORM_BLOCK = BlockType(
    "form",
    gettext_lazy("Form"),
    (Field("form", gettext_lazy("Form"), "form", None, required=True),),
    gettext_lazy("One of your forms, sent without leaving the page."),
)

EMAIL = Kit("email", BLOCK_TYPES, COMMON_FIELDS)
PAGE = Kit(
    "page",
    {
        **{name: block for name, block in BLOCK_TYPES.items() if name != "footer"},
        "form": FORM_BLOCK,
    },
    tuple(spec for spec in COMMON_FIELDS if spec.kind != "segment"),
)


# --- Reading ---------------------------------------------------------------------------------


def empty_document() -> dict[str, Any]:
    return {
        "version": VERSION,
        "settings": {f.name: f.default for f in SETTINGS_FIELDS},
        "blocks": [],
    }


def new_block(kind: str, kit: Kit = EMAIL) -> dict[str, Any]:
    """A block of ``kind`` with its defaults (columns start with two)."""
    block_type = kit.types[kind]
    block: dict[str, Any] = {"type": kind}
    for spec in (*block_type.fields, *kit.common):
        if spec.kind == "items":
            block[spec.name] = [
                {item.name: item.default for item in spec.items} for _n in range(spec.minimum)
            ]
        else:
            block[spec.name] = spec.default
    return block


def is_built(blocks: Any) -> bool:
    """True when a content object was made in the builder (its body is generated)."""
    return isinstance(blocks, dict) and isinstance(blocks.get("blocks"), list)


def builder_schema(kit: Kit = EMAIL) -> dict[str, Any]:
    """What the builder's script needs to draw its forms (JSON-ready)."""

    def describe(spec: Field) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": spec.name,
            "label": str(spec.label),
            "kind": spec.kind,
            "default": spec.default,
            "required": spec.required,
        }
        if spec.choices:
            data["choices"] = [[value, str(label)] for value, label in spec.choices]
        if spec.kind in {"int", "items"}:
            data["min"], data["max"] = spec.minimum, spec.maximum
        if spec.items:
            data["items"] = [describe(item) for item in spec.items]
        if spec.help:
            data["help"] = str(spec.help)
        return data

    return {
        "types": [
            {
                "type": block.name,
                "label": str(block.label),
                "description": str(block.description),
                "fields": [describe(spec) for spec in block.fields],
                "defaults": new_block(block.name, kit),
            }
            for block in kit.types.values()
        ],
        "common": [describe(spec) for spec in kit.common],
        "settings": [describe(spec) for spec in SETTINGS_FIELDS],
    }


def referenced_segments(body: str) -> set[int]:
    """The ids of the segments a body's dynamic blocks test (``segments contains N``)."""
    return {int(match.group(1)) for match in _SEGMENT_TEST.finditer(body or "")}


# --- Validation ------------------------------------------------------------------------------


def validate_blocks(
    document: Any,
    *,
    segment_ids: Collection[int] | None = None,
    kit: Kit = EMAIL,
    form_ids: Collection[int] | None = None,
) -> dict[str, Any]:
    """The document cleaned (defaults filled, rich text sanitised, unknown keys dropped).

    Raises ``BlocksInvalid`` naming the block at fault. ``segment_ids``, when
    given, are the segments a block may be limited to (the workspace's);
    ``form_ids`` likewise the forms a form block may show.
    """
    if isinstance(document, list):
        document = {"version": VERSION, "settings": {}, "blocks": document}
    if not isinstance(document, dict) or not isinstance(document.get("blocks"), list):
        raise BlocksInvalid(_("The design is not a builder document (no list of blocks)."))
    raw_settings = document.get("settings")
    if raw_settings is None:
        raw_settings = {}
    if not isinstance(raw_settings, dict):
        raise BlocksInvalid(_("The design's settings must be an object."))
    settings: dict[str, Any] = {}
    for spec in SETTINGS_FIELDS:
        try:
            settings[spec.name] = _value(spec, raw_settings.get(spec.name, spec.default))
        except ValueError as error:
            raise BlocksInvalid(
                _("Design settings: %(field)s: %(error)s") % {"field": spec.label, "error": error}
            ) from None
    raw_blocks = document["blocks"]
    if len(raw_blocks) > MAX_BLOCKS:
        raise BlocksInvalid(_("A design has at most %(count)s blocks.") % {"count": MAX_BLOCKS})
    blocks = [
        _validate_block(raw, index, segment_ids, kit, form_ids)
        for index, raw in enumerate(raw_blocks, start=1)
    ]
    return {"version": VERSION, "settings": settings, "blocks": blocks}


def _validate_block(
    raw: Any,
    index: int,
    segment_ids: Collection[int] | None,
    kit: Kit = EMAIL,
    form_ids: Collection[int] | None = None,
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BlocksInvalid(_("Block %(index)s is not an object.") % {"index": index}, index)
    kind = raw.get("type")
    block_type = kit.types.get(kind) if isinstance(kind, str) else None
    if block_type is None:
        raise BlocksInvalid(
            _("Block %(index)s: unknown block type “%(type)s”.")
            % {"index": index, "type": str(kind)[:40]},
            index,
        )
    clean: dict[str, Any] = {"type": block_type.name}
    for spec in (*block_type.fields, *kit.common):
        try:
            clean[spec.name] = _value(spec, raw.get(spec.name, spec.default))
            chosen = clean[spec.name] if spec.kind == "segment" else None
            if chosen is not None and segment_ids is not None and chosen not in segment_ids:
                raise ValueError(_("that segment does not exist in this workspace."))
            chosen = clean[spec.name] if spec.kind == "form" else None
            if chosen is not None and form_ids is not None and chosen not in form_ids:
                raise ValueError(_("that form does not exist in this workspace."))
        except ValueError as error:
            raise BlocksInvalid(
                _("Block %(index)s (%(type)s): %(field)s: %(error)s")
                % {"index": index, "type": block_type.label, "field": spec.label, "error": error},
                index,
            ) from None
    return clean


def _value(spec: Field, value: Any) -> Any:
    """One field's value, cleaned; ``ValueError`` says what is wrong with it."""
    if spec.kind == "items":
        if not isinstance(value, list) or not spec.minimum <= len(value) <= spec.maximum:
            raise ValueError(
                _("between %(min)s and %(max)s are needed.")
                % {"min": spec.minimum, "max": spec.maximum}
            )
        items = []
        for position, item in enumerate(value, start=1):
            if not isinstance(item, dict):
                raise ValueError(_("item %(n)s is not an object.") % {"n": position})
            cleaned = {}
            for sub in spec.items:
                try:
                    cleaned[sub.name] = _value(sub, item.get(sub.name, sub.default))
                except ValueError as error:
                    raise ValueError(
                        _("column %(n)s, %(field)s: %(error)s")
                        % {"n": position, "field": sub.label, "error": error}
                    ) from None
            items.append(cleaned)
        return items
    if spec.kind == "segment":
        if value in (None, ""):
            return None
        if isinstance(value, bool) or not str(value).isdigit():
            raise ValueError(_("choose a segment."))
        return int(value)
    if spec.kind == "form":
        if isinstance(value, bool) or not str(value or "").isdigit():
            raise ValueError(_("choose a form."))
        return int(value)
    if spec.kind == "int":
        if isinstance(value, bool):
            raise ValueError(_("enter a whole number."))
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(_("enter a whole number.")) from None
        if not spec.minimum <= number <= spec.maximum and not (number == 0 and spec.minimum == 0):
            raise ValueError(
                _("enter a number from %(min)s to %(max)s.")
                % {"min": spec.minimum, "max": spec.maximum}
            )
        return number
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValueError(_("enter text."))
    value = value.strip()
    if spec.required and not value:
        raise ValueError(_("this is required."))
    if spec.kind == "rich":
        if len(value) > RICH_LIMIT:
            raise ValueError(_("keep it under %(count)s characters.") % {"count": RICH_LIMIT})
        return sanitize_rich_text(value)
    if len(value) > TEXT_LIMIT:
        raise ValueError(_("keep it under %(count)s characters.") % {"count": TEXT_LIMIT})
    if spec.kind == "text":
        return " ".join(value.split())
    if spec.kind == "color":
        if value and not _COLOR.match(value):
            raise ValueError(_("“%(value)s” is not a colour like #1a2b3c.") % {"value": value})
        return value.lower()
    if spec.kind == "choice":
        allowed = [choice for choice, _label in spec.choices]
        if value not in allowed:
            raise ValueError(_("choose one of %(choices)s.") % {"choices": ", ".join(allowed)})
        return value
    if spec.kind == "url" and value:
        problem = link_problem(value)
        if problem:
            raise ValueError(problem)
    if spec.kind == "image" and value and not re.match(r"^https?://[^\s\"'<>]+$", value):
        raise ValueError(_("an image needs a full web address (https://...)."))
    return value


def sanitize_rich_text(value: str) -> str:
    """The builder's rich text with only what mail needs: paragraphs, bold, italic,
    underline, links and lists. Scripts, styles and event attributes are removed."""
    return nh3.clean(
        value,
        tags=RICH_TAGS,
        attributes=RICH_ATTRIBUTES,
        url_schemes=RICH_SCHEMES,
        link_rel=None,
        strip_comments=True,
    ).strip()


# --- MJML ------------------------------------------------------------------------------------


def blocks_to_mjml(
    blocks: Any,
    *,
    segment_ids: Collection[int] | None = None,
    kit: Kit = EMAIL,
    form_ids: Collection[int] | None = None,
) -> str:
    """The MJML for a builder document (validated first: ``BlocksInvalid`` on bad input)."""
    document = validate_blocks(blocks, segment_ids=segment_ids, kit=kit, form_ids=form_ids)
    settings = document["settings"]
    font = FONTS[settings["font"]]
    head = (
        "<mj-head>"
        "<mj-attributes>"
        f'<mj-all font-family="{_attr(font)}" />'
        f'<mj-text color="{settings["text_color"]}" font-size="16px" line-height="1.6" />'
        '<mj-button font-size="16px" font-weight="bold" border-radius="6px" '
        'inner-padding="12px 28px" />'
        "</mj-attributes>"
        "<mj-style>"
        f"a {{ color: {settings['link_color']}; }} "
        "p { margin: 0 0 12px; } ul, ol { margin: 0 0 12px; padding-left: 24px; } "
        "h1, h2 { margin: 0; } .footer p { margin: 0 0 8px; }"
        "</mj-style>"
        "</mj-head>"
    )
    sections = []
    for block in document["blocks"]:
        section = _SECTION_WRITERS[block["type"]](block, settings)
        background = block["background"] or settings["content_background"]
        section = section.replace("<mj-section", f'<mj-section background-color="{background}"', 1)
        if block.get("segment") is not None:
            section = f"{{% if segments contains {block['segment']} %}}{section}{{% endif %}}"
        sections.append(section)
    body = "\n".join(sections)
    return (
        f'<mjml>{head}<mj-body background-color="{settings["background"]}" width="600px">\n'
        f"{body}\n</mj-body></mjml>\n"
    )


def _text(value: str) -> str:
    """Plain text inside an element (quotes kept, so merge tags with "..." still parse)."""
    return escape(value, quote=False)


def _attr(value: str) -> str:
    """An attribute value: double quotes inside merge tags become single quotes (Liquid
    reads both), any others are escaped."""
    value = re.sub(r"{{.*?}}", lambda m: m.group(0).replace('"', "'"), value)
    return escape(value, quote=False).replace('"', "&quot;")


def _href(value: str) -> str:
    return f' href="{_attr(value)}"' if value else ""


def _section(content: str, padding: str = "8px 0") -> str:
    return f'<mj-section padding="{padding}"><mj-column>{content}</mj-column></mj-section>'


def _logo(block: dict[str, Any], settings: dict[str, Any]) -> str:
    return _section(
        f'<mj-image src="{_attr(block["src"])}" alt="{_attr(block["alt"])}"{_href(block["href"])}'
        f' width="{block["width"]}px" align="{block["align"]}" padding="16px 24px" />',
        "16px 0 8px",
    )


def _heading(block: dict[str, Any], settings: dict[str, Any]) -> str:
    tag, size = ("h1", "28px") if block["size"] == "large" else ("h2", "22px")
    color = f' color="{block["color"]}"' if block["color"] else ""
    return _section(
        f'<mj-text align="{block["align"]}"{color} padding="8px 24px">'
        f'<{tag} style="font-size:{size};line-height:1.25;">{_text(block["text"])}</{tag}>'
        "</mj-text>"
    )


def _rich(block: dict[str, Any], settings: dict[str, Any]) -> str:
    return _section(
        f'<mj-text align="{block["align"]}" padding="8px 24px">{block["text"]}</mj-text>'
    )


def _image(block: dict[str, Any], settings: dict[str, Any]) -> str:
    width = f' width="{block["width"]}px"' if block["width"] else ""
    return _section(
        f'<mj-image src="{_attr(block["src"])}" alt="{_attr(block["alt"])}"'
        f'{_href(block["href"])}{width} padding="8px 24px" />'
    )


def _button(block: dict[str, Any], settings: dict[str, Any]) -> str:
    return _section(
        f'<mj-button href="{_attr(block["url"])}" background-color="{block["color"]}"'
        f' color="{block["text_color"]}" align="{block["align"]}" padding="12px 24px">'
        f"{_text(block['label'])}</mj-button>",
        "8px 0 16px",
    )


def _columns(block: dict[str, Any], settings: dict[str, Any]) -> str:
    columns = []
    for column in block["columns"]:
        parts = []
        if column["src"]:
            parts.append(
                f'<mj-image src="{_attr(column["src"])}" alt="{_attr(column["alt"])}"'
                f'{_href(column["button_url"])} padding="8px 12px" />'
            )
        if column["text"]:
            parts.append(f'<mj-text padding="8px 12px">{column["text"]}</mj-text>')
        if column["button_label"] and column["button_url"]:
            parts.append(
                f'<mj-button href="{_attr(column["button_url"])}"'
                f' background-color="{settings["link_color"]}" align="left"'
                f' padding="8px 12px">{_text(column["button_label"])}</mj-button>'
            )
        columns.append(f"<mj-column>{''.join(parts)}</mj-column>")
    return f'<mj-section padding="8px 12px">{"".join(columns)}</mj-section>'


def _divider(block: dict[str, Any], settings: dict[str, Any]) -> str:
    return _section(
        f'<mj-divider border-color="{block["color"]}" border-width="{block["thickness"]}px"'
        ' padding="8px 24px" />'
    )


def _spacer(block: dict[str, Any], settings: dict[str, Any]) -> str:
    return _section(f'<mj-spacer height="{block["height"]}px" />', "0")


def _social(block: dict[str, Any], settings: dict[str, Any]) -> str:
    links = "".join(
        f'<mj-social-element name="{icon}-noshare" href="{_attr(block[name])}">'
        f"{_text(label)}</mj-social-element>"
        for name, (icon, label) in SOCIAL_NETWORKS.items()
        if block[name]
    )
    return _section(
        f'<mj-social mode="horizontal" align="{block["align"]}" icon-size="24px"'
        f' font-size="13px" color="{settings["text_color"]}" padding="8px 24px">{links}'
        "</mj-social>"
    )


def _footer(block: dict[str, Any], settings: dict[str, Any]) -> str:
    links = [f'<a href="{{{{ unsubscribe_url }}}}">{_text(block["unsubscribe_label"])}</a>']
    if block["preferences_label"]:
        links.append(f'<a href="{{{{ preferences_url }}}}">{_text(block["preferences_label"])}</a>')
    return _section(
        '<mj-text css-class="footer" align="center" font-size="12px" line-height="1.5"'
        ' color="#6b7280" padding="16px 24px">'
        f"{block['text']}"
        '<p style="white-space:pre-line;">{{ postal_address }}</p>'
        f"<p>{' · '.join(links)}</p>"
        "</mj-text>",
        "8px 0 24px",
    )


def _form(block: dict[str, Any], settings: dict[str, Any]) -> str:
    return _section(f'<mj-text padding="8px 24px"><!--patron-form:{block["form"]}--></mj-text>')


_SECTION_WRITERS = {
    "form": _form,
    "logo": _logo,
    "heading": _heading,
    "text": _rich,
    "image": _image,
    "button": _button,
    "columns": _columns,
    "divider": _divider,
    "spacer": _spacer,
    "social": _social,
    "footer": _footer,
}
