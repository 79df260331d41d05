-- +goose Up
-- An Idempotency-Key's outcome is domain data: the order it placed, or the
-- refusal as a portable error (JSON {"kind", "message", "fields"}), no
-- longer an HTTP status and response body. Records already completed are
-- converted.
ALTER TABLE idempotency_keys ADD COLUMN order_id INTEGER;
ALTER TABLE idempotency_keys ADD COLUMN refusal TEXT;
UPDATE idempotency_keys
SET order_id = json_extract(CAST(body AS TEXT), '$.id')
WHERE status = 200;
UPDATE idempotency_keys
SET refusal = json_object(
    'kind', CASE json_extract(CAST(body AS TEXT), '$.error')
        WHEN 'OUT_OF_STOCK' THEN 'out_of_stock'
        WHEN 'PRODUCT_NOT_FOUND' THEN 'product_not_found'
        ELSE 'invalid' END,
    'message', json_extract(CAST(body AS TEXT), '$.message'))
WHERE status IS NOT NULL AND status <> 200;
ALTER TABLE idempotency_keys DROP COLUMN status;
ALTER TABLE idempotency_keys DROP COLUMN body;

-- +goose Down
ALTER TABLE idempotency_keys ADD COLUMN status INTEGER;
ALTER TABLE idempotency_keys ADD COLUMN body BLOB;
UPDATE idempotency_keys
SET status = 200, body = CAST(json_object('id', order_id) AS BLOB)
WHERE order_id IS NOT NULL;
UPDATE idempotency_keys
SET status = CASE json_extract(refusal, '$.kind') WHEN 'product_not_found' THEN 404 WHEN 'out_of_stock' THEN 409 ELSE 400 END,
    body = CAST(json_object(
        'error', CASE json_extract(refusal, '$.kind') WHEN 'product_not_found' THEN 'PRODUCT_NOT_FOUND'
            WHEN 'out_of_stock' THEN 'OUT_OF_STOCK' ELSE 'VALIDATION_ERROR' END,
        'message', json_extract(refusal, '$.message')) AS BLOB)
WHERE refusal IS NOT NULL;
ALTER TABLE idempotency_keys DROP COLUMN order_id;
ALTER TABLE idempotency_keys DROP COLUMN refusal;
