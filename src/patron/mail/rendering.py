"""Email templates: compiled once, rendered per recipient, checked before sending.

A template is a subject, a body in MJML or HTML, and optionally a plain-text
part, all with Liquid merge tags (``{{ contact.first_name | default: "there" }}``).

``compile_template()`` does the expensive work once per template or campaign:
MJML becomes HTML (``mjml-python``, offline), the HTML's ``<style>`` rules are
inlined (``css-inline``), and the subject, HTML and text are parsed as Liquid.
``CompiledTemplate.render()`` is then all that remains per recipient.

Liquid runs sandboxed (python-liquid executes no Python; loops, output size
and nesting are capped below) with HTML auto-escaping in the HTML part, so a
contact named ``<script>`` stays text. Undefined variables render empty;
unknown filters are errors, reported by ``check_template()``.

Liquid tags survive MJML as text; in HTML, block tags (``{% if %}``...) are
kept in comments while styles are inlined, because an HTML parser moves any
text it finds between table rows out of the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import css_inline
import mjml
from django.utils.translation import gettext as _
from liquid import BoundTemplate, Environment
from liquid.exceptions import LiquidError

MJML, HTML = "mjml", "html"
FORMATS = (MJML, HTML)
# Gmail clips messages whose HTML is larger than this.
CLIP_BYTES = 102 * 1024
UNSUBSCRIBE_TAGS = ("unsubscribe_url", "preferences_url")
POSTAL_TAG = "postal_address"


class _Sandbox(Environment):
    """Liquid with limits: a template cannot loop, nest or write without bound."""

    loop_iteration_limit = 10_000
    output_stream_limit = 2_000_000
    context_depth_limit = 30
    local_namespace_limit = 100_000


HTML_LIQUID = _Sandbox(autoescape=True)
TEXT_LIQUID = _Sandbox(autoescape=False)


class TemplateError(ValueError):
    """A template that cannot be compiled, with where (part, line, column) and why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True)
class Problem:
    """One finding of the checks before sending."""

    code: str
    message: str
    part: str = "body"
    line: int | None = None
    column: int | None = None
    blocking: bool = True

    def __str__(self) -> str:
        where = self.part
        if self.line is not None:
            where += _(", line %(line)s, column %(column)s") % {
                "line": self.line,
                "column": self.column,
            }
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class TemplateSource:
    subject: str
    body: str
    format: str = HTML
    text: str = ""  # empty: generated from the HTML


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    html: str
    text: str


@dataclass
class CompiledTemplate:
    source: TemplateSource
    html: str  # after MJML and CSS inlining, Liquid still in it
    subject_template: BoundTemplate
    html_template: BoundTemplate
    text_template: BoundTemplate
    problems: list[Problem] = field(default_factory=list)
    text: str = ""  # the plain-text part's Liquid source (written or made from the HTML)

    def render(self, context: dict[str, Any]) -> RenderedMessage:
        subject = " ".join(self.subject_template.render(**context).split())
        html = self.html_template.render(**context)
        text = self.text_template.render(**context)
        return RenderedMessage(subject=subject, html=html, text=text)


# --- Compiling ------------------------------------------------------------------------------


def compile_template(source: TemplateSource) -> CompiledTemplate:
    """Compile once; raises ``TemplateError`` for Liquid or MJML that cannot be parsed."""
    if source.format not in FORMATS:
        raise TemplateError(Problem("format", _("Choose MJML or HTML."), part="body"))
    subject_template = _parse(TEXT_LIQUID, source.subject, "subject")
    _parse(HTML_LIQUID, source.body, "body")  # errors located in what the author wrote
    if source.format == MJML:
        try:
            html = mjml.mjml2html(source.body)
        except (ValueError, RuntimeError) as error:
            raise TemplateError(
                Problem("mjml", _("The MJML cannot be read: %(error)s") % {"error": error})
            ) from error
    else:
        html = _inline_css(source.body)  # MJML's output has its styles inlined already
    html_template = _parse(HTML_LIQUID, html, "body")
    text = source.text if source.text.strip() else html_to_text(html)
    text_template = _parse(TEXT_LIQUID, text, "text")
    return CompiledTemplate(
        source=source,
        html=html,
        subject_template=subject_template,
        html_template=html_template,
        text_template=text_template,
        text=text,
    )


def _parse(env: Environment, text: str, part: str) -> BoundTemplate:
    try:
        return env.from_string(text)
    except LiquidError as error:
        raise TemplateError(_liquid_problem(error, text, part)) from error


def _liquid_problem(error: LiquidError, text: str, part: str) -> Problem:
    index = error.token.start_index if error.token is not None else -1
    if index < 0:
        index = len(text)  # "expected endif": the template ended too early
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return Problem("liquid", str(error.message or error), part=part, line=line, column=column)


_BLOCK_TAG = re.compile(r"{%-?.*?-?%}", re.DOTALL)
_PROTECTED = re.compile(r"<!--PATRON(\{%.*?%\})PATRON-->", re.DOTALL)
# Never fetch a stylesheet a template names: no requests to wherever an author points.
# Media queries stay in <style> (they cannot be inlined).
_INLINER = css_inline.CSSInliner(
    keep_style_tags=True, keep_link_tags=True, load_remote_stylesheets=False
)


def _inline_css(html: str) -> str:
    """Inline <style> rules, keeping Liquid block tags where the author put them."""
    protected = _BLOCK_TAG.sub(_protect, html)
    inlined = css_inline.inline(protected, keep_style_tags=True)
    return re.sub(
        r"<!--PATRON(\{%.*?%\})PATRON-->", lambda m: unescape(m.group(1)), inlined, flags=re.DOTALL
    )


def _protect(match: re.Match[str]) -> str:
    text, start = match.string, match.start()
    if text.rfind("<", 0, start) > text.rfind(">", 0, start):
        return match.group(0)  # inside a tag's attributes: leave it alone
    return f"<!--PATRON{match.group(0)}PATRON-->"


# --- Plain text ------------------------------------------------------------------------------


class _TextMaker(HTMLParser):
    BLOCKS = {"p", "div", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol"}
    SKIP = {"style", "head", "title", "script"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in self.BLOCKS:
            self.out.append("\n\n")
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(self.skipping - 1, 0)
        elif tag in self.BLOCKS:
            self.out.append("\n\n")
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href and not href.startswith(("#", "mailto:")):
                self.out.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(re.sub(r"\s+", " ", data))

    def handle_comment(self, data: str) -> None:
        if data.startswith("PATRON{%"):
            self.out.append(data[len("PATRON") : -len("PATRON")])


def html_to_text(html: str) -> str:
    """A readable plain-text part: paragraphs, list items, links as "text (url)"."""
    maker = _TextMaker()
    maker.feed(_BLOCK_TAG.sub(lambda m: f"<!--PATRON{m.group(0)}PATRON-->", html))
    maker.close()
    text = "".join(maker.out)
    lines = [" ".join(line.split()) for line in text.splitlines()]  # trims what joined
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


# --- Checks before sending -------------------------------------------------------------------


class _LinkFinder(HTMLParser):
    """Links and images with their place in what the author wrote (HTML or MJML)."""

    LINKS = {"a", "mj-button", "mj-social-element", "mj-navbar-link"}
    IMAGES = {"img", "mj-image"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[int, int, str]] = []
        self.images: list[tuple[int, int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        line, column = self.getpos()
        if tag in self.LINKS and values.get("href") is not None:
            self.links.append((line, column + 1, values["href"] or ""))
        if tag in self.IMAGES and not (values.get("alt") or "").strip():
            self.images.append((line, column + 1, values.get("src") or ""))


_LIQUID_OUTPUT = re.compile(r"{{.*?}}", re.DOTALL)


def check_template(
    source: TemplateSource, *, sample: dict[str, Any] | None = None, postal_address: str = ""
) -> list[Problem]:
    """Everything worth knowing before a send, blocking problems first.

    Blocking: Liquid or MJML that does not compile, an unknown filter, no
    unsubscribe or preferences link, no postal address, malformed links.
    Warnings: HTML over 102 KB (Gmail clips it), images without alt text.
    """
    try:
        compiled = compile_template(source)
    except TemplateError as error:
        return [error.problem]
    problems: list[Problem] = []
    try:
        rendered = compiled.render(sample or {})
    except LiquidError as error:
        problems.append(_liquid_problem(error, source.body, "body"))
        rendered = RenderedMessage(source.subject, compiled.html, "")
    if not rendered.subject.strip():
        problems.append(Problem("subject", _("The subject is empty."), part="subject"))

    tags = {match.group(0) for match in _LIQUID_OUTPUT.finditer(compiled.html)}
    if not any(name in tag for tag in tags for name in UNSUBSCRIBE_TAGS):
        problems.append(
            Problem(
                "unsubscribe",
                _("Add an unsubscribe link: {{ unsubscribe_url }} or {{ preferences_url }}."),
            )
        )
    address = postal_address.strip()
    if not any(POSTAL_TAG in tag for tag in tags) and not (address and address in compiled.html):
        problems.append(
            Problem("postal_address", _("Add your postal address: {{ postal_address }}."))
        )

    finder = _LinkFinder()
    finder.feed(source.body)
    for line, column, href in finder.links:
        message = link_problem(href)
        if message:
            problems.append(Problem("link", message, line=line, column=column))
    for line, column, src in finder.images:
        problems.append(
            Problem(
                "alt",
                _("The image %(src)s has no alt text.") % {"src": src or _("(no source)")},
                line=line,
                column=column,
                blocking=False,
            )
        )
    size = len(rendered.html.encode("utf-8"))
    if size > CLIP_BYTES:
        problems.append(
            Problem(
                "size",
                _("The HTML is %(size)s KB; Gmail clips messages over 102 KB.")
                % {"size": size // 1024},
                blocking=False,
            )
        )
    return sorted(problems, key=lambda problem: not problem.blocking)


def link_problem(href: str) -> str | None:
    """Why a link would not work, or None. Merge tags are taken as filled in."""
    value = href.strip()
    if not value:
        return _("A link has no address.")
    if value.startswith("{{") and value.endswith("}}") and value.count("{{") == 1:
        return None  # the whole address is a merge tag: filled in at send time
    if value.startswith("#") or value.startswith("{{"):
        return None
    probe = _LIQUID_OUTPUT.sub("x", value)
    parts = urlsplit(probe)
    if parts.scheme in ("mailto", "tel"):
        return None if parts.path else _("The link %(href)s has no address.") % {"href": href}
    if parts.scheme not in ("http", "https"):
        return _("The link %(href)s should start with https:// or http://.") % {"href": href}
    if " " in probe or not parts.netloc or "." not in (parts.hostname or ""):
        return _("The link %(href)s is not a valid web address.") % {"href": href}
    return None


# --- Merge tags ------------------------------------------------------------------------------

CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "mobile_phone",
    "job_title",
    "street",
    "postal_code",
    "city",
    "region",
    "country",
    "language",
    "lifecycle_stage",
    "score",
)
COMPANY_FIELDS = ("name", "domain", "industry", "size", "phone", "city", "region", "country")


def contact_context(contact: Any, **extra: Any) -> dict[str, Any]:
    """The merge-tag variables for one contact: ``contact``, ``company``, ``owner``.

    Custom fields appear under their keys beside the standard ones
    (``{{ contact.customer_tier }}``); ``extra`` adds links and sender data
    (``unsubscribe_url``, ``preferences_url``, ``view_in_browser_url``,
    ``postal_address``).
    """
    values = {name: getattr(contact, name, "") for name in CONTACT_FIELDS}
    values["birthday"] = contact.birthday
    values["custom"] = contact.custom
    company = getattr(contact, "company", None)
    company_values = None
    if company is not None:
        company_values = {name: getattr(company, name, "") for name in COMPANY_FIELDS}
        company_values["custom"] = company.custom
    owner = getattr(contact, "owner", None)
    owner_values = {"name": owner.name, "email": owner.email} if owner is not None else None
    return values_context(values, company_values, owner_values, **extra)


def values_context(
    contact: dict[str, Any],
    company: dict[str, Any] | None,
    owner: dict[str, Any] | None,
    **extra: Any,
) -> dict[str, Any]:
    """``contact_context`` from plain values (a database row), for the send pipeline.

    ``contact`` holds ``CONTACT_FIELDS`` plus ``birthday`` and ``custom``;
    ``company`` holds ``COMPANY_FIELDS`` plus ``custom`` (or is None);
    ``owner`` holds ``name`` and ``email`` (or is None).
    """
    values = {name: contact.get(name, "") for name in CONTACT_FIELDS}
    first, last = values["first_name"], values["last_name"]
    values["full_name"] = f"{first} {last}".strip() if first and last else (first or last or "")
    birthday = contact.get("birthday")
    values["birthday"] = birthday.isoformat() if birthday else ""
    custom = {
        key: value for key, value in (contact.get("custom") or {}).items() if key not in values
    }
    company_values: dict[str, Any] = {}
    if company is not None:
        company_values = {name: company.get(name) or "" for name in COMPANY_FIELDS}
        company_values.update(
            {k: v for k, v in (company.get("custom") or {}).items() if k not in company_values}
        )
    return {
        "contact": {**custom, **values},
        "company": company_values,
        "owner": dict(owner) if owner else {},
        **extra,
    }
