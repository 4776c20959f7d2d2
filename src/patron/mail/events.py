"""The event kinds the mail app records on contacts' timelines (besides the shared
``email.*`` kinds of ``patron.activity.kinds``)."""

from django.utils.translation import gettext_lazy as _

from patron.activity.kinds import register_kind

register_kind("email.received", _("Email received"))
register_kind("email.failed", _("Email not sent"))
register_kind("email.preferences_changed", _("Email preferences changed"))
