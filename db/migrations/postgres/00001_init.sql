-- +goose Up
CREATE TABLE orders (
    id         serial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE order_details (
    id         serial PRIMARY KEY,
    order_id   integer NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id text NOT NULL,
    price      numeric(18, 2) NOT NULL CHECK (price >= 0),
    quantity   integer NOT NULL CHECK (quantity >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX order_details_order_id_idx ON order_details (order_id);

-- Outcome of each stock reservation: the order that claimed it, or NULL when
-- the recovery sweep voided it because no order committed in time.
-- No foreign key: the outcome must outlive a deleted order.
CREATE TABLE stock_reservations (
    id         text PRIMARY KEY,
    order_id   integer,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Stock to give back, written in the same transaction as the order change
-- that frees it and removed once the products store has it back.
CREATE TABLE stock_returns (
    id         text PRIMARY KEY,
    lines      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE stock_returns;
DROP TABLE stock_reservations;
DROP TABLE order_details;
DROP TABLE orders;
