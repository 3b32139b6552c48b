-- expect: concurrently-in-transaction@4, concurrently-in-transaction@5
-- No -- hasura:no-transaction line: PostgreSQL refuses CONCURRENTLY in the migration's transaction.
SET lock_timeout = '5s';
CREATE INDEX CONCURRENTLY users_email ON users (email);
DROP INDEX CONCURRENTLY users_old;
