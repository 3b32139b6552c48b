-- hasura:no-transaction
-- expect: none
-- The online forms: timeouts, concurrent index builds, NOT VALID + VALIDATE, unique via index.
SET lock_timeout = '5s';
SET statement_timeout = '0';
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_created_at ON orders (created_at);
DROP INDEX CONCURRENTLY IF EXISTS orders_old;
CREATE UNIQUE INDEX CONCURRENTLY orders_number_key ON orders (number);
ALTER TABLE orders ADD CONSTRAINT orders_number_key UNIQUE USING INDEX orders_number_key;
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;
ALTER TABLE orders ADD COLUMN note text DEFAULT 'none';
RESET lock_timeout;
RESET statement_timeout;
