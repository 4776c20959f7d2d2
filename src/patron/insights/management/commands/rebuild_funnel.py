"""``patron manage rebuild_funnel [--workspace SLUG]``: recompute the funnel's rollups
(``StageEntry`` and ``StageDay``) from the activity log.

The rollups are kept up to date from new lifecycle moves every minute; a rebuild
is for what new moves do not say: contacts merged (their events moved to the
surviving contact), or rollup rows lost or changed outside Patron.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from patron.core.models import Workspace
from patron.insights.rollups import rebuild_stage_entries


class Command(BaseCommand):
    help = "Recompute the funnel's rollups from the activity log (one workspace, or all)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--workspace", help="the workspace's short name (default: every one)")

    def handle(self, *args: Any, **options: Any) -> None:
        workspaces = Workspace.objects.order_by("pk")
        if options["workspace"]:
            workspaces = workspaces.filter(slug=options["workspace"])
            if not workspaces.exists():
                raise CommandError(f"No workspace {options['workspace']!r}.")
        for workspace in workspaces:
            made = rebuild_stage_entries(workspace.pk)
            self.stdout.write(f"{workspace.slug}: {made} stage entries.")
