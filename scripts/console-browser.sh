#!/usr/bin/env bash
# The admin console in a real browser: starts `malomo-mcp serve` (embedded
# sandbox), creates an admin token in its database, and drives headless
# Chromium through WebDriver (Python selenium) over the whole console flow:
# scripts/console_browser.py. Screenshots go to docs/console/ (regenerated,
# never compared). Installs Debian's chromium + chromium-driver when missing
# (as root, e.g. in CI) and selenium, pinned, into the git-ignored .venv-ci/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SELENIUM_VERSION=4.51.0
MCP_SDK_VERSION=2.3.0
VENV=$ROOT/.venv-ci

say() { printf '[console-browser] %s\n' "$*"; }

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    say "needs chromium and chromium-driver (apt-get install chromium chromium-driver)"
    exit 1
  fi
  say "installing chromium and chromium-driver"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if ! "$VENV/bin/pip" show selenium 2>/dev/null | grep -qx "Version: $SELENIUM_VERSION" \
   || ! "$VENV/bin/pip" show mcp 2>/dev/null | grep -qx "Version: $MCP_SDK_VERSION"; then
  say "installing selenium==$SELENIUM_VERSION and mcp==$MCP_SDK_VERSION into .venv-ci/"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "selenium==$SELENIUM_VERSION" "mcp==$MCP_SDK_VERSION"
fi

# shellcheck source=lib/serve.sh
. "$ROOT/scripts/lib/serve.sh"
start_server console --rate-burst 100000 --rate-per-sec 10000
BIN=${MALOMO_MCP_BIN:-$ROOT/target/debug/malomo-mcp}
BASE=${URL%/mcp/*}

LINK=
for _ in $(seq 50); do
  LINK=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+/console/first-run\?token=[A-Za-z0-9_-]+' "$TMP/server.out" || true)
  [ -n "$LINK" ] && break
  sleep 0.1
done
[ -n "$LINK" ] || { say "serve printed no console sign-in link"; cat "$TMP/server.out" >&2; exit 1; }

ADMIN=$("$BIN" admin-token create --db "$TMP/console.db" 2>/dev/null \
  | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["admin_token"])')

mkdir -p "$TMP/chrome"
# selenium must not go looking for a driver on the network.
export SE_OFFLINE=true CHROME_PROFILE=$TMP/chrome FAILURE_DIR=$TMP
export PATH=$VENV/bin:$PATH
if ! timeout 300 "$VENV/bin/python" "$ROOT/scripts/console_browser.py" \
    "$BASE" "$ADMIN" "$LINK" "$BIN" "$ROOT/docs/console"; then
  say "failed; server log:"
  tail -n 40 "$TMP/server.err" >&2 || true
  exit 1
fi
