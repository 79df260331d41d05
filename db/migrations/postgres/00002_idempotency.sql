-- +goose Up
-- Idempotency-Key records of POST /orders. Times are Unix milliseconds so
-- that the same SQL serves PostgreSQL and the embedded store.
CREATE TABLE idempotency_keys (
    key            text PRIMARY KEY,
    request_hash   text NOT NULL,
    -- the reservation the order is placed under: after a crash, settling it
    -- tells whether the order committed
    reservation_id text NOT NULL,
    status         integer,  -- NULL while the first request runs
    body           bytea,
    started_at     bigint NOT NULL,
    expires_at     bigint NOT NULL
);
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
