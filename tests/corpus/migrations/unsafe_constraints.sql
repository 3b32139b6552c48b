-- expect: constraint-not-valid@4, constraint-not-valid@5, add-unique-blocking@6
-- expect: create-index-blocking@7, drop-index-blocking@8, validate-same-transaction@10
SET lock_timeout = '2s';
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0);
ALTER TABLE orders ADD CONSTRAINT orders_number_key UNIQUE (number);
CREATE INDEX orders_created_at ON orders (created_at);
DROP INDEX orders_old;
ALTER TABLE orders ADD CONSTRAINT orders_state_known CHECK (state IN ('new', 'paid')) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_state_known;
