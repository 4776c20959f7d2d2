"""Background tasks of the automation app (registered by importing them)."""

from patron.automation.workflow_tasks import (  # noqa: F401
    advance_workflows,
    enrol_on_dates,
    follow_activity_for_workflows,
)
