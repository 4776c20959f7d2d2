"""Signed addresses that lead back to Patron: the unsubscribe link and mailbox of a
message, and the per-contact reply address of one-to-one mail.

Each carries a token of ``patron.mail.tokens`` naming the workspace and the
contact (and for unsubscribes the campaign, 0 when none), so the link or the
address alone says who acts, and nobody can forge one for another contact:

- ``unsubscribe_url()``: ``{BASE_URL}/u/<token>/`` (kind ``unsub``), the page
  that confirms, and the target of RFC 8058 one-click POSTs;
- ``preferences_url()``: ``{BASE_URL}/u/<token>/preferences/``, the preference
  centre, with the same token: whoever may unsubscribe the contact from
  everything may also choose lists, and a message signs one token for its
  unsubscribe link, its ``mailto:`` and its preferences link;
- ``unsubscribe_mailto()``: ``unsubscribe+<token>@{RETURN_PATH_DOMAIN}``, the
  ``mailto:`` of ``List-Unsubscribe``, read by the inbound SMTP server;
- ``reply_address()``: ``reply+<token>@{INBOUND_DOMAIN}`` (kind ``reply``), the
  Reply-To of one-to-one mail: replies land on the contact's timeline.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse

from patron.mail import tokens

UNSUBSCRIBE_KIND = "unsub"
REPLY_KIND = "reply"
UNSUBSCRIBE_PREFIX = "unsubscribe+"
REPLY_PREFIX = "reply+"
BOUNCE_PREFIX = "bounce+"


# Stands for the token while a page's address is reversed once (see _page_url).
_MARK = "PLACEHOLDER"


@functools.lru_cache(maxsize=64)
def _page_template(name: str, base_url: str, urlconf: str, prefix: str) -> tuple[str, str]:
    # ``prefix`` is part of the key only: reverse() reads the script prefix itself.
    url = base_url + reverse(name, args=[_MARK], urlconf=urlconf)
    before, _mark, after = url.rpartition(_MARK)  # the path's, not the host's
    return before, after


def _page_url(name: str, token: str) -> str:
    """``BASE_URL`` + ``reverse(name, args=[token])``, reversed once per setting.

    A campaign asks for two addresses per recipient, and reverse() walks the
    URL patterns each time; here it does once per page and setting. Tokens are
    base64url, which reverse() leaves as they are, so putting one in the
    reversed address gives the same string.
    """
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    before, after = _page_template(name, settings.BASE_URL, urlconf, get_script_prefix())
    return before + token + after


def unsubscribe_token(workspace_id: int, contact_id: int, campaign_id: int = 0) -> str:
    return tokens.sign(UNSUBSCRIBE_KIND, workspace_id, contact_id, campaign_id)


def unsubscribe_url(workspace_id: int, contact_id: int, campaign_id: int = 0) -> str:
    """The absolute address of the unsubscribe page for one contact (and campaign)."""
    return unsubscribe_page(unsubscribe_token(workspace_id, contact_id, campaign_id))


def unsubscribe_mailto(workspace_id: int, contact_id: int, campaign_id: int = 0) -> str:
    """The address a ``List-Unsubscribe: <mailto:...>`` names."""
    return unsubscribe_address(unsubscribe_token(workspace_id, contact_id, campaign_id))


def unsubscribe_page(token: str) -> str:
    """The unsubscribe page of a token ``unsubscribe_token`` made."""
    return _page_url("unsubscribe:page", token)


def preferences_url(workspace_id: int, contact_id: int, campaign_id: int = 0) -> str:
    """The absolute address of the preference centre for one contact (and campaign)."""
    return preferences_page(unsubscribe_token(workspace_id, contact_id, campaign_id))


def preferences_page(token: str) -> str:
    """The preference centre of a token ``unsubscribe_token`` made."""
    return _page_url("unsubscribe:preferences", token)


def unsubscribe_address(token: str) -> str:
    """The unsubscribe mail address of a token ``unsubscribe_token`` made."""
    return f"{UNSUBSCRIBE_PREFIX}{token}@{settings.RETURN_PATH_DOMAIN}"


def read_unsubscribe_token(token: str) -> tuple[int, int, int] | None:
    """(workspace id, contact id, campaign id) of a valid token; None for anything else."""
    values = tokens.unsign(UNSUBSCRIBE_KIND, token)
    if values is None or len(values) != 3:
        return None
    return values[0], values[1], values[2]


def reply_address(workspace_id: int, contact_id: int) -> str:
    """The Reply-To of one-to-one mail to a contact."""
    token = tokens.sign(REPLY_KIND, workspace_id, contact_id)
    return f"{REPLY_PREFIX}{token}@{settings.INBOUND_DOMAIN}"


def read_reply_token(token: str) -> tuple[int, int] | None:
    values = tokens.unsign(REPLY_KIND, token)
    if values is None or len(values) != 2:
        return None
    return values[0], values[1]
