"""The event kinds the audience records on contacts' timelines."""

from django.utils.translation import gettext_lazy as _

from patron.activity.kinds import register_kind

register_kind("list.subscribed", _("Subscribed to a list"))
register_kind("list.pending", _("Asked to confirm a subscription"))
register_kind("list.unsubscribed", _("Unsubscribed from a list"))
register_kind("list.cleaned", _("Cleaned from a list"))
register_kind("contact.suppressed", _("Address suppressed"))
register_kind("contact.unsuppressed", _("Address no longer suppressed"))
register_kind("segment.entered", _("Entered a segment"))
register_kind("segment.left", _("Left a segment"))
