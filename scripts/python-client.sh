#!/usr/bin/env bash
# Drives `malomo-mcp serve` (embedded sandbox) with the official Python MCP
# SDK, a second real client next to rmcp's: scripts/python_client.py, in the
# handshake and the 2026-07-28 modes. Installs the SDK, pinned, into a
# git-ignored virtualenv (.venv-ci/) from PyPI. Exits non-zero on any failed
# check.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MCP_SDK_VERSION=2.3.0
VENV=$ROOT/.venv-ci

say() { printf '[python-sdk] %s\n' "$*"; }

if ! "$VENV/bin/python" -c "import mcp, sys; sys.exit(0 if mcp.__version__ == '$MCP_SDK_VERSION' else 1)" 2>/dev/null \
   && ! "$VENV/bin/pip" show mcp 2>/dev/null | grep -qx "Version: $MCP_SDK_VERSION"; then
  say "installing mcp==$MCP_SDK_VERSION into .venv-ci/"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "mcp==$MCP_SDK_VERSION"
fi

# shellcheck source=lib/serve.sh
. "$ROOT/scripts/lib/serve.sh"
# A bucket the checks cannot drain: rate limiting has tests of its own.
start_server python-sdk --rate-burst 100000 --rate-per-sec 10000

timeout 120 "$VENV/bin/python" "$ROOT/scripts/python_client.py" "$URL"
