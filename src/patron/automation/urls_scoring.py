from django.urls import path

from patron.automation import views_scoring as views
from patron.core.tenancy import register_url_parameter

app_name = "automation_scoring"

register_url_parameter("scoring_rule_id", "automation.ScoringRule")
register_url_parameter("lifecycle_rule_id", "automation.LifecycleRule")
register_url_parameter("recompute_id", "automation.ScoreRecompute")
register_url_parameter("handoff_id", "automation.Handoff")

urlpatterns = [
    path("automation/scoring/", views.scoring_home, name="home"),
    path("automation/scoring/rules/new/", views.rule_create, name="rule_create"),
    path("automation/scoring/rules/<int:scoring_rule_id>/", views.rule_edit, name="rule_edit"),
    path(
        "automation/scoring/rules/<int:scoring_rule_id>/delete/",
        views.rule_delete,
        name="rule_delete",
    ),
    path("automation/scoring/settings/", views.settings_update, name="settings"),
    path("automation/scoring/lifecycle/", views.lifecycle_rule_create, name="lifecycle_create"),
    path(
        "automation/scoring/lifecycle/<int:lifecycle_rule_id>/delete/",
        views.lifecycle_rule_delete,
        name="lifecycle_delete",
    ),
    path("automation/scoring/reapply/", views.reapply, name="reapply"),
    path(
        "automation/scoring/reapply/<int:recompute_id>/",
        views.reapply_progress,
        name="reapply_progress",
    ),
    path("contacts/<int:contact_id>/score-history/", views.score_history, name="score_history"),
    path("handoffs/", views.handoff_list, name="handoff_list"),
    path("handoffs/<int:handoff_id>/accept/", views.handoff_accept, name="handoff_accept"),
    path("handoffs/<int:handoff_id>/reject/", views.handoff_reject, name="handoff_reject"),
]
