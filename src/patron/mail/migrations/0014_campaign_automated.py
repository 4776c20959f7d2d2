from django.db import migrations, models


def mark_workflow_campaigns(apps, schema_editor):
    """The campaigns that workflows' email steps made before the flag existed."""
    Campaign = apps.get_model("mail", "Campaign")
    WorkflowEmail = apps.get_model("automation", "WorkflowEmail")
    Campaign.objects.filter(pk__in=WorkflowEmail.objects.values("campaign_id")).update(
        automated=True
    )


class Migration(migrations.Migration):
    dependencies = [
        ("mail", "0013_ab_revenue"),
        ("automation", "0002_workflows"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="automated",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(mark_workflow_campaigns, migrations.RunPython.noop),
    ]
