"""Migrations: the Hasura migration folders on disk: list, read, write, conflicts."""
