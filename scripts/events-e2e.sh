#!/usr/bin/env bash
# Issue 13 end to end through the official Python MCP SDK (mcp, pinned like
# scripts/python-client.sh): a client subscribes to malomo://events, calls
# subscribe_to_malomo_events twice (one webhook), a sandbox order with an `FA`
# tracking code fails on the sandbox's ticks, the client is notified within
# 1 s and lists the failure exactly once; over 2025-11-25 resources/subscribe
# and 2026-07-28 subscriptions/listen. Loopback only, bounded in time; see
# scripts/events_e2e.py. Exits non-zero on any failed check.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MCP_SDK_VERSION=2.3.0
VENV=$ROOT/.venv-ci

say() { printf '[events-e2e] %s\n' "$*"; }

if ! "$VENV/bin/pip" show mcp 2>/dev/null | grep -qx "Version: $MCP_SDK_VERSION"; then
  say "installing mcp==$MCP_SDK_VERSION into .venv-ci/"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "mcp==$MCP_SDK_VERSION"
fi
if [ -z "${MALOMO_MCP_BIN:-}" ]; then
  say "cargo build --bin malomo-mcp"
  cargo build --quiet --bin malomo-mcp
fi
timeout 300 "$VENV/bin/python" "$ROOT/scripts/events_e2e.py" "${MALOMO_MCP_BIN:-$ROOT/target/debug/malomo-mcp}"
