"""The full-text index of the log store, on PostgreSQL only (SQLite searches with LIKE).

Not declared in LogEntry.Meta: a GIN index cannot be created on SQLite, and both
backends run the same migrations. The expression must stay identical to
monitoring.logs.services.SEARCH_VECTOR, or PostgreSQL will not use the index.
"""

from django.db import migrations

INDEX = "logentry_search"
CREATE = (
    f"CREATE INDEX IF NOT EXISTS {INDEX} ON logs_logentry USING gin ("
    "to_tsvector('simple'::regconfig, COALESCE(message, '') || ' ' || COALESCE((context ->> 'exception'), '')))"
)


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [("logs", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
