-- Per-server client tokens: the second factor of servers created with
-- require_api_token_auth. Only the SHA-256 of a token is stored; deleting a
-- server deletes its tokens.
CREATE TABLE mcp_client_tokens (
    id         TEXT PRIMARY KEY,
    server_id  TEXT NOT NULL REFERENCES mcp_servers(id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX mcp_client_tokens_server ON mcp_client_tokens(server_id);
