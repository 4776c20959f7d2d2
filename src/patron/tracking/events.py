"""The event kinds the web tracker adds to the product's vocabulary.

Page views are ``page.viewed`` and custom events from a page or the API are
``custom.event`` with the event's name in ``properties["name"]`` (both
registered by the activity log); this adds the moment a visitor is recognised.
"""

from django.utils.translation import gettext_lazy as _

from patron.activity.kinds import register_kind

register_kind("web.identified", _("Recognised on the website"))
