"""Two contact indexes that others cover go: each import writes them for nothing.

``contact_company`` (workspace, company) repeats the index of the company
foreign key, and the tag links' index on contact_id is the head of their
unique (contact_id, tag_id) pair, which serves every lookup by contact.
"""

from django.db import migrations


def _contact_id_indexes(schema_editor, through):
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(
            cursor, through._meta.db_table
        )
    return [
        name
        for name, details in constraints.items()
        if details["index"]
        and not details["unique"]
        and not details["primary_key"]
        and details["columns"] == ["contact_id"]
    ]


def drop_tag_link_index(apps, schema_editor):
    through = apps.get_model("crm", "Contact").tags.through
    for name in _contact_id_indexes(schema_editor, through):
        schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def create_tag_link_index(apps, schema_editor):
    through = apps.get_model("crm", "Contact").tags.through
    if not _contact_id_indexes(schema_editor, through):
        contact = through._meta.get_field("contact")
        schema_editor.execute(schema_editor._create_index_sql(through, fields=[contact]))


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0018_contact_stage"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="contact", name="contact_company"),
        migrations.RunPython(drop_tag_link_index, create_tag_link_index),
    ]
