-- expect: lock-timeout@3
-- A deliberate drop, accepted by name; the other findings still count.
ALTER TABLE users ADD COLUMN flags int DEFAULT 0;
-- nself-py: allow drop-table
DROP TABLE old_flags;
DROP TABLE old_settings; -- nself-py: allow drop-table, rename
