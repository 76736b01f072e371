#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests of the PostgreSQL store, on 127.0.0.1 only.
#   eval "$(bash Tools/ci/postgres.sh start)"   # prints the exports: STORYLOOM_TEST_POSTGRES, STORYLOOM_PG_DIR
#   bash Tools/ci/postgres.sh stop               # stops the server started in $STORYLOOM_PG_DIR (by its PID), removes it
# Port: $STORYLOOM_PG_PORT (default 55432). Installs Debian's postgresql when no server binaries are found.
set -euo pipefail

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
# The server refuses to run as root: as root, run its tools as the postgres user.
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-}" in
start)
  if [ -z "$(bindir)" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "installing: postgresql" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  fi
  bin="$(bindir)"
  port="${STORYLOOM_PG_PORT:-55432}"
  dir="$(mktemp -d /tmp/storyloom-pg.XXXXXX)"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  as_server "$bin/initdb" -D "$dir/data" --auth=trust --no-sync -U postgres >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_server "$bin/pg_ctl" -D "$dir/data" -w -l "$dir/log" \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >&2 \
    || { cat "$dir/log" >&2; exit 1; }
  echo "export STORYLOOM_PG_DIR='$dir'"
  echo "export STORYLOOM_TEST_POSTGRES='postgresql://postgres@127.0.0.1:$port/postgres?sslmode=disable'"
  ;;
stop)
  dir="${STORYLOOM_PG_DIR:?STORYLOOM_PG_DIR is not set: nothing started by this script to stop}"
  if [ -f "$dir/data/postmaster.pid" ]; then
    pid="$(head -1 "$dir/data/postmaster.pid")"
    kill -INT "$pid" 2>/dev/null || true   # fast shutdown: ends the sessions, then the server
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
