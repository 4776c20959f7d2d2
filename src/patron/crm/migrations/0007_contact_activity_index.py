from django.db import migrations

# The contact list sorts by last activity, newest first, contacts without any
# activity last. PostgreSQL needs NULLS LAST spelled out in the index for that
# order; SQLite puts NULLs last in a descending index already and does not
# accept the clause. Hence raw SQL instead of Meta.indexes.


def create_index(apps, schema_editor):
    nulls = " NULLS LAST" if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS contact_activity ON crm_contact "
        f"(workspace_id, last_activity_at DESC{nulls})"
    )


def drop_index(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS contact_activity")


class Migration(migrations.Migration):
    dependencies = [("crm", "0006_imports")]

    operations = [migrations.RunPython(create_index, drop_index)]
