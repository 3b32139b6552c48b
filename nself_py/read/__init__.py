"""Read: schema.dbml and the live catalog into the schema model (plus the caches that skip work)."""
