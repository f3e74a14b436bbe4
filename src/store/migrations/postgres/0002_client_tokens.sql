-- Per-server client tokens: the second factor of servers created with
-- require_api_token_auth. Only the SHA-256 of a token is stored; deleting a
-- server deletes its tokens. `seq` keeps insertion order for listings.
CREATE TABLE mcp_client_tokens (
    id         TEXT PRIMARY KEY,
    server_id  TEXT NOT NULL REFERENCES mcp_servers(id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    seq        BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX mcp_client_tokens_server ON mcp_client_tokens(server_id);

-- Nodes cache client tokens found valid: a revocation must reach them.
CREATE TRIGGER mcp_client_tokens_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON mcp_client_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION malomo_mcp_notify_change();
