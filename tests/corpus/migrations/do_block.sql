-- expect: unknown-effects@4, lock-timeout@5
-- A DO block: its effects are invisible to a reader of the text, so it is flagged for review,
-- and (with no lock_timeout) so is the lock it may take.
DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_type WHERE typname = 'mood') THEN CREATE TYPE mood AS ENUM ('ok'); END IF; END $$;
ALTER TABLE users ADD COLUMN IF NOT EXISTS mood mood;
