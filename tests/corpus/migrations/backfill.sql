-- expect: update-all@6, set-not-null@7, lock-timeout@5, add-column-required@8
SET statement_timeout = '1min';
-- Data migration: add, backfill every row, then require. The backfill locks every row, the
-- SET NOT NULL scans under ACCESS EXCLUSIVE, and the last column cannot be added with rows.
ALTER TABLE users ADD COLUMN display_name text;
UPDATE users SET display_name = coalesce(nickname, email);
ALTER TABLE users ALTER COLUMN display_name SET NOT NULL;
ALTER TABLE users ADD COLUMN tier int NOT NULL;
