"""Audiences: who a send is for, as lists and segments to include and to exclude.

A campaign (or any mass send) names its audience as
``{"include": {"lists": [...], "segments": [...]}, "exclude": {...}}``.
``audience_contacts()`` turns it into one query on ``crm.Contact``:

- a **list** contributes its *subscribed* members (pending, unsubscribed and
  cleaned subscriptions are not on the list for sending purposes, whether
  included or excluded);
- a **segment** contributes the contacts its definition matches *now*
  (compiled, not its stored memberships, which may be up to a refresh behind);
- a contact is in the audience if any include matches and no exclude does.

This decides *who is meant*; whether a message may actually go to someone
(suppression, consent, an address at all) is decided after, by the one
sending gate every path passes through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _

from patron.audience import segments
from patron.audience.models import MailingList, Segment, Subscription, SubscriptionStatus
from patron.core.models import Workspace
from patron.crm.models import Contact

SIDES = ("include", "exclude")
KINDS = ("lists", "segments")


class AudienceInvalid(ValueError):
    """An audience that cannot be resolved, with a message saying which part and why."""


@dataclass(frozen=True)
class Audience:
    include_lists: tuple[int, ...] = ()
    include_segments: tuple[int, ...] = ()
    exclude_lists: tuple[int, ...] = ()
    exclude_segments: tuple[int, ...] = ()

    def as_json(self) -> dict[str, dict[str, list[int]]]:
        return {
            "include": {"lists": list(self.include_lists), "segments": list(self.include_segments)},
            "exclude": {"lists": list(self.exclude_lists), "segments": list(self.exclude_segments)},
        }


def validate_audience(workspace: Workspace, data: Any) -> Audience:
    """Normalise ``data`` into an ``Audience`` of this workspace's lists and segments.

    Raises ``AudienceInvalid`` naming what is wrong: an unknown list or segment,
    a part that is not a list of ids, nothing to include, or a segment whose
    definition no longer compiles (a tag it names was deleted, say).
    """
    if not isinstance(data, dict):
        raise AudienceInvalid(_("An audience is an object with “include” and “exclude”."))
    unknown = set(data) - set(SIDES)
    if unknown:
        raise AudienceInvalid(
            _("Unknown audience part: %(parts)s.") % {"parts": ", ".join(sorted(unknown))}
        )
    ids: dict[tuple[str, str], tuple[int, ...]] = {}
    for side in SIDES:
        part = data.get(side) or {}
        if not isinstance(part, dict) or set(part) - set(KINDS):
            raise AudienceInvalid(
                _("“%(side)s” takes “lists” and “segments”, each a list of ids.") % {"side": side}
            )
        for kind in KINDS:
            ids[side, kind] = _ids(part.get(kind) or [], side, kind)
    if not ids["include", "lists"] and not ids["include", "segments"]:
        raise AudienceInvalid(_("Choose at least one list or segment to send to."))

    lists = set(MailingList.objects.for_workspace(workspace).values_list("pk", flat=True))
    known_segments = {segment.pk: segment for segment in Segment.objects.for_workspace(workspace)}
    vocab = segments.vocabulary(workspace)
    for side in SIDES:
        for pk in ids[side, "lists"]:
            if pk not in lists:
                raise AudienceInvalid(_("There is no list %(id)s.") % {"id": pk})
        for pk in ids[side, "segments"]:
            segment = known_segments.get(pk)
            if segment is None:
                raise AudienceInvalid(_("There is no segment %(id)s.") % {"id": pk})
            try:
                segments.validate(workspace, segment.definition, vocab=vocab)
            except segments.SegmentInvalid as error:
                raise AudienceInvalid(
                    _("Segment “%(name)s” cannot be used: %(error)s")
                    % {"name": segment.name, "error": error}
                ) from error
    return Audience(
        include_lists=ids["include", "lists"],
        include_segments=ids["include", "segments"],
        exclude_lists=ids["exclude", "lists"],
        exclude_segments=ids["exclude", "segments"],
    )


def _ids(value: Any, side: str, kind: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise AudienceInvalid(
            _("“%(side)s.%(kind)s” must be a list of ids.") % {"side": side, "kind": kind}
        )
    found: list[int] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | str) or not str(item).isdigit():
            raise AudienceInvalid(
                _("“%(side)s.%(kind)s” holds %(item)r, which is not an id.")
                % {"side": side, "kind": kind, "item": item}
            )
        if int(item) not in found:
            found.append(int(item))
    return tuple(found)


def audience_q(workspace: Workspace, audience: Audience) -> Q:
    """The audience as a ``Q`` on ``crm.Contact`` (subqueries only)."""
    vocab = segments.vocabulary(workspace)
    definitions = dict(
        Segment.objects.for_workspace(workspace)
        .filter(pk__in=[*audience.include_segments, *audience.exclude_segments])
        .values_list("pk", "definition")
    )

    def on_lists(ids: tuple[int, ...]) -> Q:
        return Q(
            Exists(
                Subscription.objects.for_workspace(workspace).filter(
                    contact_id=OuterRef("pk"),
                    mailing_list_id__in=ids,
                    status=SubscriptionStatus.SUBSCRIBED,
                )
            )
        )

    def in_segments(ids: tuple[int, ...]) -> list[Q]:
        return [
            segments.compile_definition(workspace, definitions[pk], vocab=vocab)
            for pk in ids
            if pk in definitions
        ]

    included = [*in_segments(audience.include_segments)]
    if audience.include_lists:
        included.append(on_lists(audience.include_lists))
    excluded = [*in_segments(audience.exclude_segments)]
    if audience.exclude_lists:
        excluded.append(on_lists(audience.exclude_lists))
    if not included:
        return Q(pk__in=[])
    query = _any(included)
    if excluded:
        # A contact an exclusion's condition cannot decide (NULL in SQL) is kept
        # out too: "not in the segment" must mean "known not to match".
        query &= ~Q(
            pk__in=Contact.objects.for_workspace(workspace).filter(_any(excluded)).values("pk")
        )
    return query


def _any(parts: list[Q]) -> Q:
    combined = parts[0]
    for part in parts[1:]:
        combined |= part
    return combined


def audience_contacts(workspace: Workspace, audience: Audience) -> QuerySet[Contact]:
    """The contacts an audience means, as one query (not yet through the sending gate)."""
    return Contact.objects.for_workspace(workspace).filter(audience_q(workspace, audience))


def describe_audience(workspace: Workspace, audience: Audience) -> str:
    """“Newsletter, Engaged VIPs; except Customers” for summaries and audit."""
    names = {
        ("lists", pk): name
        for pk, name in MailingList.objects.for_workspace(workspace).values_list("pk", "name")
    }
    names.update(
        {
            ("segments", pk): name
            for pk, name in Segment.objects.for_workspace(workspace).values_list("pk", "name")
        }
    )

    def named(kind: str, ids: tuple[int, ...]) -> list[str]:
        return [names.get((kind, pk), f"#{pk}") for pk in ids]

    included = named("lists", audience.include_lists) + named("segments", audience.include_segments)
    excluded = named("lists", audience.exclude_lists) + named("segments", audience.exclude_segments)
    text = ", ".join(included)
    if excluded:
        text += _("; except %(names)s") % {"names": ", ".join(excluded)}
    return text
