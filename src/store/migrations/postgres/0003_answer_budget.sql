-- A provisioned server's answer budget in bytes, replacing each get and
-- list tool's own (NULL: the tools' budgets from the spec).
ALTER TABLE mcp_servers ADD COLUMN answer_budget BIGINT;
