#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance)
# against `malomo-mcp serve` on the embedded sandbox, and compares the result
# with the expected-failures baselines next to this script.
#
#   scripts/conformance.sh            # build, start, run, compare, stop
#
# Two passes, one per protocol wire the server speaks:
#   - `--requirements 2025-11-25`: the scenarios that revision requires, over
#     the initialize handshake and sessions;
#   - `--requirements 2026-07-28`: the same for the stateless revision
#     (per-request `_meta`, `server/discover`, routing headers);
# then a few spec scenarios the requirement sets run but do not score
# (pending or added after release) that apply to this server, one by one.
#
# Each pass is checked against scripts/conformance-baseline.<wire>.yml, which
# lists ONLY checks that need the suite's own fixture server (tools named
# test_*, its resources and prompts, sampling/elicitation round trips). Any
# other failing check fails this script, and so does a baselined check that
# now passes (remove it from the baseline then).
#
# Environment: CONFORMANCE_VERSION (pinned below), MALOMO_MCP_BIN (use this
# binary instead of building target/debug/malomo-mcp), CONFORMANCE_KEEP=1
# (keep the temp dir with the server log and database).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# 0.2.x is the first line of the suite that knows the 2026-07-28 revision
# (stateless requests), which this server serves; pinned exactly.
CONFORMANCE_VERSION=${CONFORMANCE_VERSION:-0.2.0-alpha.12}
SUITE_DIR=$ROOT/.conformance
PKG_DIR=$SUITE_DIR/node_modules/@modelcontextprotocol/conformance
RESULTS=$SUITE_DIR/results

say() { printf '[conformance] %s\n' "$*"; }

# --- the suite --------------------------------------------------------------
installed=$(node -p "try { require('$PKG_DIR/package.json').version } catch (e) { '' }" 2>/dev/null || true)
if [ "$installed" != "$CONFORMANCE_VERSION" ]; then
  say "installing @modelcontextprotocol/conformance@$CONFORMANCE_VERSION into .conformance/"
  mkdir -p "$SUITE_DIR"
  [ -f "$SUITE_DIR/package.json" ] || printf '{ "name": "malomo-mcp-conformance", "private": true }\n' >"$SUITE_DIR/package.json"
  (cd "$SUITE_DIR" && npm install --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION")
fi
# Node 20 has no fs.globSync; the suite only uses it in a command we do not
# run, but its ES-module import fails at load time. Drop the import.
if ! node -e 'process.exit(typeof require("fs").globSync === "function" ? 0 : 1)'; then
  sed -i -E 's/globSync as [A-Za-z_$][A-Za-z0-9_$]*,//; s/,globSync as [A-Za-z_$][A-Za-z0-9_$]*\}/}/' "$PKG_DIR/dist/index.js"
fi
SUITE=(node "$PKG_DIR/dist/index.js")
"${SUITE[@]}" --version >/dev/null

# --- the server -------------------------------------------------------------
# shellcheck source=lib/serve.sh
. "$ROOT/scripts/lib/serve.sh"
KEEP_TMP=${CONFORMANCE_KEEP:-}
start_server conformance

# --- the runs ---------------------------------------------------------------
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
failed=()

# run NAME LOG-ARGS...: runs the suite with a hard time limit, keeps its log.
run() {
  local name=$1
  shift
  local log=$RESULTS/$name.log
  if timeout 150 "${SUITE[@]}" server --url "$URL" --timeout 20000 -o "$RESULTS/$name" "$@" >"$log" 2>&1; then
    return 0
  fi
  return 1
}

# verdict NAME: the baseline verdict of a failed run, and the message of
# every check it did not expect.
verdict() {
  local log=$RESULTS/$1.log
  if ! grep -Eq 'Stale baseline entries|Unexpected failures' "$log"; then
    tail -n 40 "$log"
    return
  fi
  awk '/Stale baseline entries|Unexpected failures \(not in baseline\)/ { on = 1 } on' "$log"
  sed -n '/Unexpected failures (not in baseline)/,/^\s*$/p' "$log" | sed -n 's/^ *✗ //p' |
    while read -r entry; do
      node -e '
        const fs = require("fs"), path = require("path");
        const [dir, entry] = process.argv.slice(1);
        const [scenario, check] = entry.split(/:(.*)/s);
        for (const d of fs.readdirSync(dir)) {
          if (!d.startsWith(`server-${scenario}-2`)) continue;
          for (const c of JSON.parse(fs.readFileSync(path.join(dir, d, "checks.json"), "utf8"))) {
            if (!["FAILURE", "WARNING"].includes(c.status) || (check && c.id !== check)) continue;
            console.log(`    ${scenario}:${c.id} ${c.status}: ${String(c.errorMessage ?? "").slice(0, 500)}`);
          }
        }' "$RESULTS/$1" "$entry" || true
    done
}

for wire in 2025-11-25 2026-07-28; do
  baseline=scripts/conformance-baseline.$wire.yml
  say "requirements $wire (baseline $baseline)"
  if run "requirements-$wire" --requirements "$wire" --expected-failures "$baseline"; then
    echo "$(grep -E '^Total:' "$RESULTS/requirements-$wire.log") (checks, unscored extensions included); baseline check passed"
  else
    verdict "requirements-$wire"
    failed+=("requirements-$wire")
  fi
done

# Unscored spec scenarios that apply to a tools-only server: wire:scenario.
EXTRA=(
  2025-11-25:server-session-lifecycle
  2025-11-25:server-sse-polling
  2025-11-25:json-schema-2020-12
  2026-07-28:http-header-validation
  2026-07-28:http-custom-header-server-validation
  2026-07-28:json-schema-2020-12
)
for item in "${EXTRA[@]}"; do
  wire=${item%%:*}
  scenario=${item#*:}
  baseline=scripts/conformance-baseline.$wire.yml
  if run "$scenario-$wire" --scenario "$scenario" --spec-version "$wire" --expected-failures "$baseline"; then
    say "$scenario ($wire): ok"
  else
    say "$scenario ($wire): FAILED"
    verdict "$scenario-$wire"
    failed+=("$scenario-$wire")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  say "FAILED: ${failed[*]}"
  say "Logs and checks.json of every scenario: .conformance/results/<run>/"
  if grep -qs 'Stale baseline entries' "$RESULTS"/*.log; then
    say "A baselined check now passes: remove it from scripts/conformance-baseline.<wire>.yml."
  fi
  if grep -qs 'Unexpected failures' "$RESULTS"/*.log; then
    say "Unexpected failures: fix the server; baseline only checks that need the suite's fixture server."
  fi
  exit 1
fi
say "all conformance checks pass outside the fixture baseline"
