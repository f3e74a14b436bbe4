#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster: initdb in a temp dir
# owned by the unprivileged `postgres` user, listening on a Unix socket only
# (no TCP port to collide with anyone), stopped and removed on exit. The
# command sees MALOMO_MCP_TEST_DATABASE_URL, which the PostgreSQL tests of
# `cargo test` need (each test makes its own database there).
#
#   scripts/with-postgres.sh cargo test --workspace
#
# Installs Debian's postgresql package when it is missing and we are root.
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "with-postgres: PostgreSQL is not installed (apt-get install postgresql)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

# PostgreSQL refuses to run as root: run the cluster as `postgres` (created
# by the package) when we are root, else as ourselves.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

dir=$(mktemp -d /tmp/malomo-pg.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres: "$dir"
cleanup() {
  as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start \
  -o "-k $dir -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  >/dev/null || { cat "$dir/log" >&2; exit 1; }

export MALOMO_MCP_TEST_DATABASE_URL="postgresql://postgres@localhost/postgres?host=$dir"
echo "with-postgres: cluster at $dir ($("$bin/postgres" --version))" >&2
"$@"
