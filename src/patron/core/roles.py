"""Roles and the permissions each one carries inside a workspace.

A permission is a plain string ``"<area>.<action>"``. Views and API endpoints
ask ``membership.can("crm.view_deals")``; nothing checks role names directly,
so a new role is one line here.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    SALES = "sales", _("Sales")
    MARKETING = "marketing", _("Marketing")
    SUPPORT = "support", _("Support")
    # Marketing work for an outside agency or freelancer: no deals, notes or tickets.
    AGENCY = "agency", _("Agency")


CONTACTS_VIEW = "crm.view_contacts"
CONTACTS_EDIT = "crm.edit_contacts"
DEALS_VIEW = "crm.view_deals"
DEALS_EDIT = "crm.edit_deals"
NOTES_VIEW = "crm.view_notes"
TICKETS_VIEW = "crm.view_tickets"
# Calls and meetings are the sales conversation itself (with notes), so the agency
# role, which works on marketing only, neither sees nor logs them.
CALLS_MEETINGS_VIEW = "crm.view_calls_and_meetings"
CALLS_MEETINGS_EDIT = "crm.log_calls_and_meetings"
# One-to-one email from a contact's page is part of the conversation with the
# customer, like calls: the agency role (marketing only) does not write it.
EMAIL_SEND = "crm.send_email"
MARKETING_EDIT = "marketing.edit"
OUTBOX_VIEW = "mail.view_outbox"
SENDERS_MANAGE = "mail.manage_senders"
# Campaigns: seeing them (and their results), writing drafts and test sends, and
# sending to an audience (schedule, pause, resume, cancel) are three steps a
# workspace may hand to different people.
CAMPAIGNS_VIEW = "mail.view_campaigns"
CAMPAIGNS_MANAGE = "mail.manage_campaigns"
CAMPAIGNS_SEND = "mail.send_campaigns"
# How mail leaves (SMTP servers, ESP keys) and the DKIM keys of sending domains:
# credentials, so owners and admins only.
DELIVERY_MANAGE = "mail.manage_delivery"
ACTIVITY_VIEW = "activity.view"
SETTINGS_MANAGE = "workspace.manage_settings"
MEMBERS_MANAGE = "workspace.manage_members"
API_KEYS_MANAGE = "workspace.manage_api_keys"
AUDIT_VIEW = "workspace.view_audit_log"
DATA_EXPORT = "workspace.export_data"

_EVERYTHING = frozenset(
    {
        CONTACTS_VIEW,
        CONTACTS_EDIT,
        DEALS_VIEW,
        DEALS_EDIT,
        NOTES_VIEW,
        TICKETS_VIEW,
        CALLS_MEETINGS_VIEW,
        CALLS_MEETINGS_EDIT,
        EMAIL_SEND,
        MARKETING_EDIT,
        OUTBOX_VIEW,
        SENDERS_MANAGE,
        CAMPAIGNS_VIEW,
        CAMPAIGNS_MANAGE,
        CAMPAIGNS_SEND,
        DELIVERY_MANAGE,
        ACTIVITY_VIEW,
        SETTINGS_MANAGE,
        MEMBERS_MANAGE,
        API_KEYS_MANAGE,
        AUDIT_VIEW,
        DATA_EXPORT,
    }
)
_TEAM = frozenset(
    {
        CONTACTS_VIEW,
        CONTACTS_EDIT,
        NOTES_VIEW,
        CALLS_MEETINGS_VIEW,
        CALLS_MEETINGS_EDIT,
        EMAIL_SEND,
        OUTBOX_VIEW,
        ACTIVITY_VIEW,
        # Sales and support see what marketing sent their contacts, and how it went.
        CAMPAIGNS_VIEW,
    }
)
_CAMPAIGNS = frozenset({CAMPAIGNS_VIEW, CAMPAIGNS_MANAGE, CAMPAIGNS_SEND})

PERMISSIONS: dict[str, frozenset[str]] = {
    Role.OWNER: _EVERYTHING,
    Role.ADMIN: _EVERYTHING,
    Role.SALES: _TEAM | {DEALS_VIEW, DEALS_EDIT, TICKETS_VIEW, DATA_EXPORT},
    # Marketing keeps the workspace's sender addresses; the agency role sends with them only.
    Role.MARKETING: _TEAM | _CAMPAIGNS | {DEALS_VIEW, MARKETING_EDIT, SENDERS_MANAGE, DATA_EXPORT},
    Role.SUPPORT: _TEAM | {TICKETS_VIEW},
    Role.AGENCY: _CAMPAIGNS | {CONTACTS_VIEW, CONTACTS_EDIT, MARKETING_EDIT, OUTBOX_VIEW},
}

# Who may hand out which role: nobody grants more than they hold.
GRANTABLE: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(Role.values),
    Role.ADMIN: frozenset(Role.values) - {Role.OWNER},
}


def has_permission(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())
