"""nself-py: keep a PostgreSQL database in step with schema.dbml through Hasura migrations."""

__version__ = "0.2.0"
