-- expect: lock-timeout@4, drop-column@4, drop-table@5, truncate@6, truncate-cascade@6
-- expect: delete-all@7, change-column-type@8, rename@9, rename@10, drop-cascade@11
-- Everything here loses data or breaks running clients.
ALTER TABLE ONLY public.users DROP COLUMN nickname;
DROP TABLE IF EXISTS audit_log;
TRUNCATE sessions CASCADE;
DELETE FROM tokens;
ALTER TABLE users ALTER COLUMN age TYPE smallint USING age::smallint;
ALTER TABLE users RENAME COLUMN email TO email_address;
ALTER TABLE "Posts" RENAME TO posts;
DROP SCHEMA legacy CASCADE;
