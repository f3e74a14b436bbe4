#!/usr/bin/env bash
# The client compatibility matrix: real MCP clients that nobody here wrote,
# each connecting to `malomo-mcp` the way its users configure it, listing the
# tools and calling list_all_malomo_orders {customer_email:
# "sarah.smith@example.com"}, checking that Sarah's orders come back.
#
#   client                                   version  how
#   official Python SDK (mcp, PyPI)          2.3.0    scripts/python-client.sh (URL form, both protocol modes)
#   official TypeScript SDK (npm)            1.32.2   Streamable HTTP, URL form (/mcp/<token>) and
#                                                     header form (/mcp + Authorization: Bearer <token>)
#   mcp-remote (npm; Claude Desktop's bridge) 0.15.1  `mcp-remote <URL>` and `mcp-remote <base>/mcp
#                                                     --header "Authorization: Bearer <token>"`,
#                                                     driven over its stdin by the TS SDK
#   malomo-mcp stdio (Claude Desktop command) this    `malomo-mcp stdio --sandbox`, driven over its stdin
#   README.md's JSON configurations                   Claude Desktop (stdio, mcp-remote both forms),
#                                                     Cursor, VS Code: run as written (scripts/clients/readme.mjs)
#
# npm packages are pinned exactly in scripts/clients/package.json and its
# lock file and run on Node >= 20.18.1; they are installed with `npm ci` into
# scripts/clients/node_modules (git-ignored). Exits non-zero when any client
# fails; prints a summary line `N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CLIENTS=$ROOT/scripts/clients

say() { printf '[clients] %s\n' "$*"; }

# --- the clients --------------------------------------------------------------
if ! (cd "$CLIENTS" && npm ls --all >/dev/null 2>&1); then
  say "npm ci (@modelcontextprotocol/sdk, mcp-remote) into scripts/clients/node_modules"
  (cd "$CLIENTS" && npm ci --no-audit --no-fund --loglevel=error)
fi
say "node $(node --version)"

# --- the server ---------------------------------------------------------------
# shellcheck source=lib/serve.sh
. "$ROOT/scripts/lib/serve.sh"
start_server clients --rate-burst 100000 --rate-per-sec 10000
BIN=${MALOMO_MCP_BIN:-$ROOT/target/debug/malomo-mcp}

passed=0
failed=0
run() {
  local name=$1
  shift
  local out
  if out=$(timeout 120 "$@" 2>"$TMP/$name.err"); then
    passed=$((passed + 1))
    say "PASS $name"
    printf '%s\n' "$out" | sed 's/^/    /'

  else
    failed=$((failed + 1))
    say "FAIL $name:"
    sed 's/^/    /' "$TMP/$name.err" >&2
  fi
}

# The header form: the same server at /mcp with the capability token as a
# bearer header (what Claude Code --header, Cursor and VS Code send).
TOKEN=${URL##*/mcp/}
HEADER_URL=${URL%/mcp/*}/mcp
CLIENT=(node "$CLIENTS/client.mjs")
REMOTE=$CLIENTS/node_modules/.bin/mcp-remote
run typescript-sdk-url "${CLIENT[@]}" http "$URL"
run typescript-sdk-header "${CLIENT[@]}" http "$HEADER_URL" "$TOKEN"
# mcp-remote keeps OAuth state under its config dir: a fresh one per run.
MCP_REMOTE_CONFIG_DIR=$TMP/mcp-remote-url \
  run mcp-remote-url "${CLIENT[@]}" stdio "$REMOTE" "$URL"
# As README's Claude Desktop snippet: the header from an environment variable.
MCP_REMOTE_CONFIG_DIR=$TMP/mcp-remote-header MALOMO_MCP_AUTH="Bearer $TOKEN" \
  run mcp-remote-header "${CLIENT[@]}" stdio "$REMOTE" "$HEADER_URL" --header 'Authorization:${MALOMO_MCP_AUTH}'
RUST_LOG=warn run stdio-binary "${CLIENT[@]}" stdio "$BIN" stdio --sandbox
MALOMO_MCP_BIN=$BIN run python-sdk "$ROOT/scripts/python-client.sh"
# README.md's JSON client configurations (Claude Desktop both ways, Cursor,
# VS Code), run as written but for the placeholders.
MCP_REMOTE_CONFIG_DIR=$TMP/mcp-remote-readme RUST_LOG=warn \
  run readme-snippets node "$CLIENTS/readme.mjs" "$ROOT/README.md" "$URL" "$BIN"

say "client matrix: $passed passed, $failed failed"
printf '%s passed, %s failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
