-- Issue 13: each integrated account's event inbox (POST /hooks/{token}) and
-- the events it received.
--
-- The inbox token is kept twice: its SHA-256 finds the inbox of a delivery,
-- and sealed under the master key (AAD "inbox-token:" || account id) so that
-- the runtime can put the inbox URL into the Malomo webhooks it creates. The
-- signing secret is sealed the same way (AAD "inbox-secret:" || account id).
CREATE TABLE event_inboxes (
    account_id    TEXT PRIMARY KEY REFERENCES integrated_accounts(id) ON DELETE CASCADE,
    token_hash    BLOB NOT NULL UNIQUE,
    token_sealed  BLOB NOT NULL,
    secret_sealed BLOB NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

-- `seq` never goes back, not even after a sweep emptied the table
-- (AUTOINCREMENT). `received_at` is Unix milliseconds. A redelivery has the
-- same `dedup_key` and is not stored twice.
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     TEXT NOT NULL REFERENCES integrated_accounts(id) ON DELETE CASCADE,
    topic          TEXT NOT NULL,
    received_at    INTEGER NOT NULL,
    dedup_key      TEXT NOT NULL,
    order_id       TEXT,
    order_number   TEXT,
    customer_email TEXT,
    tracking_code  TEXT,
    status         TEXT,
    payload        TEXT NOT NULL,
    UNIQUE (account_id, dedup_key)
) STRICT;
CREATE INDEX events_account_seq ON events(account_id, seq);
CREATE INDEX events_received ON events(received_at);
