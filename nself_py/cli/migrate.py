"""`db migrate:*` and `db status`: applying, rolling back and reporting migrations."""
