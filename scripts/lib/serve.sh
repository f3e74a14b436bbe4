# Sourced by the scripts that drive a real `malomo-mcp serve` (conformance,
# Python SDK). Defines `start_server NAME [SERVE ARGS...]`, which builds the
# binary (unless MALOMO_MCP_BIN is set), starts it on a free loopback port
# with a fresh database on the embedded sandbox, waits for its MCP URL, and
# sets URL, SERVER_PID and TMP. An EXIT trap stops the server and removes
# TMP (kept when KEEP_TMP=1). The caller defines `say`.

SERVER_PID=
TMP=
URL=

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$TMP" ]; then
    if [ "${KEEP_TMP:-}" = 1 ]; then say "kept $TMP"; else rm -rf "$TMP"; fi
  fi
}

start_server() {
  local name=$1
  shift
  local bin
  if [ -n "${MALOMO_MCP_BIN:-}" ]; then
    bin=$MALOMO_MCP_BIN
  else
    say "cargo build --bin malomo-mcp"
    cargo build --quiet --bin malomo-mcp
    bin=$ROOT/target/debug/malomo-mcp
  fi
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/malomo-$name.XXXXXX")
  trap stop_server EXIT
  trap 'exit 130' INT TERM
  # Port 0: the kernel picks a free loopback port and the server prints the
  # URL with the port it got, so there is no race with other processes.
  env -u MALOMO_API_KEY -u MALOMO_BASE_URL -u MALOMO_MCP_ADMIN_TOKEN RUST_LOG=warn \
    "$bin" serve --listen 127.0.0.1:0 --db "$TMP/$name.db" "$@" \
    >"$TMP/server.out" 2>"$TMP/server.err" &
  SERVER_PID=$!
  for _ in $(seq 300); do
    URL=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+/mcp/[A-Za-z0-9_-]+' "$TMP/server.out" 2>/dev/null | head -n1 || true)
    [ -n "$URL" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      say "malomo-mcp serve exited before printing its MCP URL:"
      cat "$TMP/server.out" "$TMP/server.err" >&2
      exit 1
    fi
    sleep 0.1
  done
  if [ -z "$URL" ]; then
    say "malomo-mcp serve printed no MCP URL within 30 s:"
    cat "$TMP/server.out" "$TMP/server.err" >&2
    exit 1
  fi
  say "server pid $SERVER_PID at ${URL%/mcp/*}/mcp/<token>"
}
