-- +goose Up
-- An Idempotency-Key's outcome is domain data: the order it placed, or the
-- refusal as a portable error ({"kind", "message", "fields"}), no longer
-- an HTTP status and response body. Records already completed are
-- converted.
ALTER TABLE idempotency_keys ADD COLUMN order_id bigint, ADD COLUMN refusal jsonb;
UPDATE idempotency_keys
SET order_id = (convert_from(body, 'UTF8')::jsonb ->> 'id')::bigint
WHERE status = 200;
UPDATE idempotency_keys
SET refusal = jsonb_build_object(
    'kind', CASE convert_from(body, 'UTF8')::jsonb ->> 'error'
        WHEN 'OUT_OF_STOCK' THEN 'out_of_stock'
        WHEN 'PRODUCT_NOT_FOUND' THEN 'product_not_found'
        ELSE 'invalid' END,
    'message', convert_from(body, 'UTF8')::jsonb ->> 'message')
WHERE status IS NOT NULL AND status <> 200;
ALTER TABLE idempotency_keys DROP COLUMN status, DROP COLUMN body;

-- +goose Down
ALTER TABLE idempotency_keys ADD COLUMN status integer, ADD COLUMN body bytea;
UPDATE idempotency_keys
SET status = 200, body = convert_to(json_build_object('id', order_id)::text, 'UTF8')
WHERE order_id IS NOT NULL;
UPDATE idempotency_keys
SET status = CASE refusal ->> 'kind' WHEN 'product_not_found' THEN 404 WHEN 'out_of_stock' THEN 409 ELSE 400 END,
    body = convert_to(json_build_object(
        'error', CASE refusal ->> 'kind' WHEN 'product_not_found' THEN 'PRODUCT_NOT_FOUND'
            WHEN 'out_of_stock' THEN 'OUT_OF_STOCK' ELSE 'VALIDATION_ERROR' END,
        'message', refusal ->> 'message')::text, 'UTF8')
WHERE refusal IS NOT NULL;
ALTER TABLE idempotency_keys DROP COLUMN order_id, DROP COLUMN refusal;
