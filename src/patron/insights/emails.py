"""Dashboards sent by email on their schedule (see ``tasks.send_dashboard_emails``).

A schedule is claimed with one conditional UPDATE of its ``next_send_at``
(like the scheduler's jobs), so two workers never send the same round twice.
Each recipient gets the widgets their own role may read, as numbers and
tables (mail programs do not show SVG reliably), each with a link to the
report in Patron. A round that fails is recorded on the schedule
(``last_error``, shown on the dashboard's page) and tried again after
``RETRY_AFTER``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from patron.core.models import Membership
from patron.core.services import send_workspace_mail
from patron.insights import selectors
from patron.insights.models import DashboardSchedule
from patron.insights.services import PERIODS

logger = logging.getLogger(__name__)
RETRY_AFTER = timedelta(minutes=30)


def send_dashboard(schedule: DashboardSchedule, *, now: datetime | None = None) -> int:
    """Email the dashboard to each recipient who is still an active member; returns how many."""
    dashboard = schedule.dashboard
    workspace = dashboard.workspace
    widgets = selectors.widgets(dashboard)
    sent = 0
    memberships = (
        Membership.objects.for_workspace(workspace)
        .filter(is_active=True, user__in=schedule.recipients.all(), user__is_active=True)
        .select_related("user", "workspace")
    )
    today = timezone.localdate(now, timezone=selectors.workspace_zone(workspace))
    for membership in memberships:
        with translation.override(workspace.language):
            shown = [selectors.show_widget(w, membership, today=today) for w in widgets]
            subject = _("%(dashboard)s: %(workspace)s on %(day)s") % {
                "dashboard": dashboard.name,
                "workspace": workspace.name,
                "day": today.isoformat(),
            }
        send_workspace_mail(
            workspace=workspace,
            to=membership.user.email,
            subject=subject,
            template="insights/email/dashboard",
            context={
                "dashboard": dashboard,
                "workspace": workspace,
                "user": membership.user,
                "shown_widgets": shown,
                "base_url": settings.BASE_URL,
                "today": today,
            },
        )
        sent += 1
    return sent


def send_due_dashboards(now: datetime | None = None) -> int:
    """Send every scheduled dashboard that is due (across workspaces); returns the emails sent."""
    now = now or timezone.now()
    sent = 0
    due = (
        DashboardSchedule.objects.unscoped().filter(next_send_at__lte=now).order_by("next_send_at")
    )
    for schedule in due.select_related("dashboard__workspace")[:100]:
        claimed = (
            DashboardSchedule.objects.unscoped()
            .filter(pk=schedule.pk, next_send_at=schedule.next_send_at)
            .update(next_send_at=now + PERIODS[schedule.frequency])
        )
        if not claimed:
            continue
        try:
            sent += send_dashboard(schedule, now=now)
        except Exception as error:
            logger.exception("Emailing dashboard %s failed", schedule.dashboard_id)
            DashboardSchedule.objects.unscoped().filter(pk=schedule.pk).update(
                last_error=f"{type(error).__name__}: {error}"[:1000],
                next_send_at=now + RETRY_AFTER,
            )
        else:
            DashboardSchedule.objects.unscoped().filter(pk=schedule.pk).update(
                last_sent_at=now, last_error=""
            )
    return sent
