-- +goose Up
-- Idempotency-Key records of POST /orders; see the PostgreSQL migration.
CREATE TABLE idempotency_keys (
    key            TEXT PRIMARY KEY,
    request_hash   TEXT NOT NULL,
    reservation_id TEXT NOT NULL,
    status         INTEGER,
    body           BLOB,
    started_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
