"""Drafts: the content a new campaign starts with, and deleting a draft — the one
write the pages and the API need beyond ``patron.mail.campaigns`` (whose status
machine has no "deleted" state).

Only a draft is deleted: one conditional DELETE (``WHERE status = 'draft'``), so a
campaign scheduled a moment earlier by someone else is kept and the caller gets
``CampaignStateError``. Audited as ``campaign.deleted``.
"""

from __future__ import annotations

from pathlib import Path

from django.db import transaction
from django.utils.translation import gettext as _

from patron.core.models import User
from patron.core.services import record_audit
from patron.mail import rendering
from patron.mail.campaigns import CampaignStateError
from patron.mail.models import Campaign, CampaignStatus

# Read as plain text, never through Django's template engine: the merge tags are Liquid.
_STARTERS = Path(__file__).parent / "templates" / "mail" / "starters"
_STARTER_FILES = {rendering.MJML: "campaign.mjml", rendering.HTML: "campaign.html"}


def starter_body(format: str) -> str:
    """A greeting, a button and the footer the law asks for (postal address,
    unsubscribe): a new draft passes the content checks before a word is written."""
    return (_STARTERS / _STARTER_FILES[format]).read_text(encoding="utf-8")


@transaction.atomic
def delete_draft(campaign: Campaign, *, user: User | None) -> None:
    deleted, _rows = (
        Campaign.objects.for_workspace(campaign.workspace_id)
        .filter(pk=campaign.pk, status=CampaignStatus.DRAFT)
        .delete()
    )
    if not deleted:
        fresh = Campaign.objects.for_workspace(campaign.workspace_id).filter(pk=campaign.pk).first()
        raise CampaignStateError(fresh or campaign, _("deleted"))
    record_audit(
        workspace=campaign.workspace,
        actor=user,
        action="campaign.deleted",
        target=campaign.name,
        data={"campaign": campaign.pk},
    )
