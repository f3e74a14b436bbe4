-- Issue 13: each integrated account's event inbox (POST /hooks/{token}) and
-- the events it received (same meaning as on SQLite).
--
-- The inbox token is kept twice: its SHA-256 finds the inbox of a delivery,
-- and sealed under the master key so that the runtime can put the inbox URL
-- into the Malomo webhooks it creates. The signing secret is sealed too.
CREATE TABLE event_inboxes (
    account_id    TEXT PRIMARY KEY REFERENCES integrated_accounts(id) ON DELETE CASCADE,
    token_hash    BYTEA NOT NULL UNIQUE,
    token_sealed  BYTEA NOT NULL,
    secret_sealed BYTEA NOT NULL,
    created_at    BIGINT NOT NULL
);

-- `received_at` is Unix milliseconds. A redelivery has the same `dedup_key`
-- and is not stored twice. Each stored event is announced to every node
-- with NOTIFY malomo_mcp_events (sent by the inserting transaction).
CREATE TABLE events (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES integrated_accounts(id) ON DELETE CASCADE,
    topic          TEXT NOT NULL,
    received_at    BIGINT NOT NULL,
    dedup_key      TEXT NOT NULL,
    order_id       TEXT,
    order_number   TEXT,
    customer_email TEXT,
    tracking_code  TEXT,
    status         TEXT,
    payload        TEXT NOT NULL,
    UNIQUE (account_id, dedup_key)
);
CREATE INDEX events_account_seq ON events(account_id, seq);
CREATE INDEX events_received ON events(received_at);
