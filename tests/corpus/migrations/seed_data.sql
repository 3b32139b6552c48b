-- expect: none
-- Seed rows into tables this migration creates: new tables are empty and invisible to others.
CREATE TABLE roles (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE grants (role_id bigint NOT NULL REFERENCES roles (id), what text NOT NULL);
CREATE INDEX grants_role_id ON grants (role_id);
INSERT INTO roles (name) VALUES ('admin'), ('editor'), ('viewer');
INSERT INTO grants SELECT id, 'read' FROM roles;
UPDATE roles SET name = upper(name);
