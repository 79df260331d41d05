-- +goose Up
-- The transactional outbox of order events. Each row is written in the
-- transaction of the order change it reports (only when events are on:
-- amqp_url set) and published to RabbitMQ by the event relay, which sets
-- published_at once the broker confirmed it. Published rows are purged
-- after events_retention.
--
-- body is the message body exactly as it is sent (text, not jsonb, which
-- would reorder its keys). Per order, events are published in id order:
-- the relay takes only the first pending event of each order.
CREATE TABLE outbox (
    id             bigserial PRIMARY KEY,
    message_id     uuid NOT NULL,
    order_id       bigint NOT NULL,
    event_type     text NOT NULL,
    schema_version integer NOT NULL,
    body           text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz
);

-- The relay's scan of pending events in id order, and its check that an
-- event is the first pending one of its order; both stay small however
-- many published rows the retention keeps.
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_pending_order_idx ON outbox (order_id, id) WHERE published_at IS NULL;
-- The purge of published rows.
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

-- +goose Down
DROP TABLE outbox;
