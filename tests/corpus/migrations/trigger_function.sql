-- expect: unknown-effects@5
-- A trigger keeps updated_at current; plpgsql body with semicolons and a dollar quote inside.
-- CREATE TRIGGER takes SHARE ROW EXCLUSIVE on users: fine, with the timeout set first.
SET lock_timeout = '5s';
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  NEW.updated_at := now(); RETURN NEW; -- '$not$ a quote'
END; $body$;
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
