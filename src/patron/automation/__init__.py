"""Marketing automation: lead scoring, lifecycle stages, hand-off to sales, workflows."""
