-- +goose Up
-- Every product gets an incarnation: a product deleted and created again
-- under the same id is another incarnation, and stock taken for an order
-- line goes back only to the incarnation it came from. Lines written
-- before have none ('': whichever incarnation exists).
ALTER TABLE products ADD COLUMN incarnation TEXT NOT NULL DEFAULT '';
UPDATE products SET incarnation = lower(hex(randomblob(8)));
ALTER TABLE order_details ADD COLUMN product_incarnation TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE order_details DROP COLUMN product_incarnation;
ALTER TABLE products DROP COLUMN incarnation;
