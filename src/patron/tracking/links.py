"""Tracked links in campaign mail: the open pixel, the click redirect and UTM parameters.

A campaign is compiled once for sending (``patron.mail.pipeline.prepare``);
``rewrite()`` then replaces each web link of the HTML and the plain text with
a Liquid placeholder, ``{{ patron_links[N] }}``, and adds the open pixel,
``{{ patron_open }}``. Per recipient only the tokens remain to be signed
(``recipient_urls()``): a token names the workspace, campaign, delivery and
contact, the second the message was made (to tell link scanners, which click
within seconds of delivery, from people) and, for clicks, the link's number.
Where a click leads is not in the token but in the campaign's ``TrackedLink``
rows: a token can only ever lead to a link the campaign itself contains.

Links with merge tags in their address (``https://x.test/{{ contact.id }}``)
are left as they are: their destination differs per recipient.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.encoding import iri_to_uri

from patron.mail import tokens
from patron.tracking.models import TrackedLink

OPEN_KIND = "open"
CLICK_KIND = "click"
OPEN_PATH = "/t/o/"
CLICK_PATH = "/t/c/"
LINKS_VARIABLE = "patron_links"
OPEN_VARIABLE = "patron_open"

_ANCHOR_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_TEXT_URL = re.compile(r"""https?://[^\s<>"'{}\[\]]+""", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
# Punctuation that ends a sentence rather than the address written before it.
_TRAILING = ".,;:!?)"
PIXEL = (
    '<img src="{{ ' + OPEN_VARIABLE + ' }}" width="1" height="1" alt="" '
    'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">'
)


@dataclass(frozen=True)
class Utm:
    """The UTM parameters a campaign adds to its links (a parameter already there stays)."""

    source: str
    medium: str
    campaign: str

    def add_to(self, url: str) -> str:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        present = {name for name, _value in query}
        for name, value in (
            ("utm_source", self.source),
            ("utm_medium", self.medium),
            ("utm_campaign", self.campaign),
        ):
            if value and name not in present:
                query.append((name, value))
        return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class Rewritten:
    """A message's HTML and text with placeholders, and the destinations in link order."""

    html: str
    text: str
    urls: list[str] = field(default_factory=list)


def trackable(url: str) -> bool:
    """A web address without merge tags: the only kind of link a redirect may stand for."""
    if "{{" in url or "{%" in url:
        return False
    if any(ord(character) < 32 or character == "\x7f" for character in url.strip()):
        return False  # control characters have no place in an address (nor in a header)
    parts = urlsplit(url.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def as_uri(url: str) -> str:
    """``url`` in ASCII, as a Location header needs it: an international domain name in
    its IDNA form, other non-ASCII characters percent-encoded."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host.isascii():
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_host = host
        parts = parts._replace(netloc=parts.netloc.replace(host, ascii_host))
    return iri_to_uri(urlunsplit(parts))


def rewrite(
    html_source: str,
    text_source: str,
    *,
    track_clicks: bool,
    track_opens: bool,
    utm: Utm | None = None,
) -> Rewritten:
    """The message with its web links rewritten (see the module docstring).

    With click tracking off, links only get the UTM parameters (when given).
    The same address in the HTML and the text is one link.
    """
    urls: list[str] = []
    numbers: dict[str, int] = {}

    def destination(url: str) -> str:
        url = as_uri(url.strip())
        return utm.add_to(url) if utm is not None else url

    def placeholder(url: str) -> str:
        target = destination(url)
        if not track_clicks:
            return target
        number = numbers.get(target)
        if number is None:
            number = numbers[target] = len(urls)
            urls.append(target)
        return f"{{{{ {LINKS_VARIABLE}[{number}] }}}}"

    def anchor(match: re.Match[str]) -> str:
        url = html.unescape(match.group(3))
        if not trackable(url):
            return match.group(0)
        value = placeholder(url)
        if not track_clicks:
            value = html.escape(value, quote=True)
        return f"{match.group(1)}{match.group(2)}{value}{match.group(2)}"

    def text_link(match: re.Match[str]) -> str:
        url = match.group(0)
        trailing = ""
        while url and url[-1] in _TRAILING:
            trailing = url[-1] + trailing
            url = url[:-1]
        if not trackable(url):
            return match.group(0)
        return placeholder(url) + trailing

    new_html = _ANCHOR_HREF.sub(anchor, html_source)
    new_text = _TEXT_URL.sub(text_link, text_source)
    if track_opens:
        ends = list(_BODY_END.finditer(new_html))
        if not ends:
            new_html += PIXEL
        else:
            at = ends[-1].start()
            new_html = new_html[:at] + PIXEL + new_html[at:]
    return Rewritten(html=new_html, text=new_text, urls=urls)


def register_links(*, workspace_id: int, campaign_id: int, urls: Sequence[str]) -> list[int]:
    """The number of each of ``urls`` among the campaign's tracked links, adding new ones.

    Every worker compiling the campaign calls this; a link keeps the number it
    got first, so a message sent before an edit still leads where it said.
    """
    for _attempt in range(5):
        known = dict(
            TrackedLink.objects.for_workspace(workspace_id)
            .filter(campaign_id=campaign_id)
            .values_list("url", "index")
        )
        missing = [url for url in dict.fromkeys(urls) if url not in known]
        if not missing:
            return [known[url] for url in urls]
        start = max(known.values(), default=-1) + 1
        try:
            with transaction.atomic():
                TrackedLink.objects.bulk_create(
                    TrackedLink(
                        workspace_id=workspace_id,
                        campaign_id=campaign_id,
                        index=start + offset,
                        url=url,
                    )
                    for offset, url in enumerate(missing)
                )
        except IntegrityError:
            continue  # another worker numbered links at the same moment: read theirs
    raise RuntimeError(f"Could not number the links of campaign {campaign_id}")


def campaign_links(workspace_id: int, campaign_id: int) -> dict[int, str]:
    """A campaign's tracked links: number -> destination."""
    return dict(
        TrackedLink.objects.for_workspace(workspace_id)
        .filter(campaign_id=campaign_id)
        .values_list("index", "url")
    )


@dataclass(frozen=True, slots=True)
class RecipientUrls:
    open: str
    links: list[str]


def tracking_base() -> str:
    return settings.TRACKING_BASE_URL


def recipient_urls(
    *,
    workspace_id: int,
    campaign_id: int,
    delivery_id: int,
    contact_id: int,
    made_at: int,
    link_numbers: Sequence[int],
) -> RecipientUrls:
    """The open pixel and click addresses of one message (``made_at``: Unix seconds)."""
    base = settings.TRACKING_BASE_URL
    values = (workspace_id, campaign_id, delivery_id, contact_id, made_at)
    return RecipientUrls(
        open=f"{base}{OPEN_PATH}{tokens.sign(OPEN_KIND, *values)}",
        links=[
            f"{base}{CLICK_PATH}{tokens.sign(CLICK_KIND, *values, number)}"
            for number in link_numbers
        ],
    )


@dataclass(frozen=True, slots=True)
class TokenValues:
    workspace_id: int
    campaign_id: int
    delivery_id: int
    contact_id: int
    made_at: int
    link: int | None = None


def read_open_token(token: str) -> TokenValues | None:
    values = tokens.unsign(OPEN_KIND, token)
    if values is None or len(values) != 5:
        return None
    return TokenValues(*values)


def read_click_token(token: str) -> TokenValues | None:
    values = tokens.unsign(CLICK_KIND, token)
    if values is None or len(values) != 6:
        return None
    return TokenValues(*values)
