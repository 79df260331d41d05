-- +goose Up

-- Timestamps are TEXT in UTC, "YYYY-MM-DDTHH:MM:SS.sssZ", so that they sort
-- and compare as strings. Money is TEXT holding an exact decimal ("100000.99"):
-- REAL and NUMERIC would store it as a float and lose digits.

CREATE TABLE products (
    id                 TEXT PRIMARY KEY,
    title              TEXT NOT NULL,
    passenger_capacity INTEGER NOT NULL,
    maximum_speed      INTEGER NOT NULL,
    in_stock           INTEGER NOT NULL CHECK (in_stock >= 0)
);

-- Stock held per product by a reservation that is not yet committed or
-- released (products.Reservation). No foreign key: deleting a product
-- deletes its holds explicitly.
CREATE TABLE product_holds (
    reservation_id TEXT NOT NULL,
    product_id     TEXT NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity >= 0),
    PRIMARY KEY (reservation_id, product_id)
);

CREATE INDEX product_holds_product_id_idx ON product_holds (product_id);

-- One record per held reservation with its lines (JSON) and deadline (Unix
-- milliseconds), so that the recovery sweep can find expired ones.
CREATE TABLE product_reservations (
    id          TEXT PRIMARY KEY,
    lines       TEXT NOT NULL,
    deadline_ms INTEGER NOT NULL
);

CREATE INDEX product_reservations_deadline_idx ON product_reservations (deadline_ms);

-- Restock calls already applied, which makes Restock idempotent per id.
-- Markers older than a week are pruned.
CREATE TABLE product_restocks (
    id         TEXT PRIMARY KEY,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX product_restocks_created_at_idx ON product_restocks (created_at);

CREATE TABLE orders (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE order_details (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id   INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id TEXT NOT NULL,
    price      TEXT NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity >= 1),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX order_details_order_id_idx ON order_details (order_id);

-- Outcome of each stock reservation: the order that claimed it, or NULL when
-- the recovery sweep voided it because no order committed in time.
-- No foreign key: the outcome must outlive a deleted order.
CREATE TABLE stock_reservations (
    id         TEXT PRIMARY KEY,
    order_id   INTEGER,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Stock to give back (lines as JSON), written in the same transaction as the
-- order change that frees it and removed once the products store has it back.
CREATE TABLE stock_returns (
    id         TEXT PRIMARY KEY,
    lines      TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX stock_returns_created_at_idx ON stock_returns (created_at);

-- +goose Down
DROP TABLE stock_returns;
DROP TABLE stock_reservations;
DROP TABLE order_details;
DROP TABLE orders;
DROP TABLE product_restocks;
DROP TABLE product_reservations;
DROP TABLE product_holds;
DROP TABLE products;
