"""`db run`, `db pull` and `schema check`: the schema engine's commands."""
