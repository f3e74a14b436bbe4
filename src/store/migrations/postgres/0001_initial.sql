-- The schema of the first release, as on SQLite. `seq` keeps insertion
-- order for listings (SQLite's rowid).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
CREATE TABLE integrated_accounts (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    base_url       TEXT NOT NULL,
    api_key_sealed BYTEA NOT NULL,
    api_key_masked TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    seq            BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE TABLE mcp_servers (
    id                     TEXT PRIMARY KEY,
    account_id             TEXT NOT NULL REFERENCES integrated_accounts(id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    token_hash             BYTEA NOT NULL UNIQUE,
    methods                TEXT[] NOT NULL,
    tags                   TEXT[] NOT NULL,
    require_api_token_auth BOOLEAN NOT NULL,
    expires_at             BIGINT,
    created_at             BIGINT NOT NULL,
    seq                    BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX mcp_servers_account ON mcp_servers(account_id);
CREATE INDEX mcp_servers_expires ON mcp_servers(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE admin_tokens (
    token_hash BYTEA PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- Every node caches resolved servers and drops its cache when it hears on
-- this channel (LISTEN malomo_mcp_changes) that anything they are made of
-- changed. A table whose rows a cached lookup depends on gets this trigger
-- (inserts cannot make a cached server stale: unknown tokens are never cached).
CREATE FUNCTION malomo_mcp_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('malomo_mcp_changes', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
CREATE TRIGGER integrated_accounts_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON integrated_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION malomo_mcp_notify_change();
CREATE TRIGGER mcp_servers_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON mcp_servers
    FOR EACH STATEMENT EXECUTE FUNCTION malomo_mcp_notify_change();
