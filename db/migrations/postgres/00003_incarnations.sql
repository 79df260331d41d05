-- +goose Up
-- The incarnation of the product each line took its stock from (see the
-- products module): stock goes back only to that incarnation. Lines
-- written before have none ('': whichever incarnation exists).
ALTER TABLE order_details ADD COLUMN product_incarnation text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE order_details DROP COLUMN product_incarnation;
