-- The schema of the first release (recorded then as PRAGMA user_version = 1).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
CREATE TABLE integrated_accounts (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    base_url       TEXT NOT NULL,
    api_key_sealed BLOB NOT NULL,
    api_key_masked TEXT NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE TABLE mcp_servers (
    id                     TEXT PRIMARY KEY,
    account_id             TEXT NOT NULL REFERENCES integrated_accounts(id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    token_hash             BLOB NOT NULL UNIQUE,
    methods                TEXT NOT NULL,
    tags                   TEXT NOT NULL,
    require_api_token_auth INTEGER NOT NULL,
    expires_at             INTEGER,
    created_at             INTEGER NOT NULL
) STRICT;
CREATE INDEX mcp_servers_account ON mcp_servers(account_id);
CREATE INDEX mcp_servers_expires ON mcp_servers(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE admin_tokens (
    token_hash BLOB PRIMARY KEY,
    created_at INTEGER NOT NULL
) STRICT;
