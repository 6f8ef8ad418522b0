#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the journey store's tests and bench, and for `ivr cluster`.
#
#   ivr/runtime/postgres.sh start    create (once) and start the cluster; prints its DSN on stdout
#   ivr/runtime/postgres.sh url      print the DSN
#   ivr/runtime/postgres.sh status   exit 0 when the cluster is running
#   ivr/runtime/postgres.sh stop     stop the cluster and delete it
#   ivr/runtime/postgres.sh pause    stop the server, keep the data (`start` brings it back)
#
# It never touches the system's clusters (see pg_lsclusters): it has its own data
# directory, does not listen on TCP (listen_addresses = ''), and puts its unix socket in a
# private directory; the port number (55432) only names the socket file. Authentication is
# `trust`, which is safe only because the socket directory is mode 0700: only the cluster's
# owner and root can connect. fsync and synchronous_commit stay on: the durability tests
# kill processes and must see what production would.
#
# Debian's `postgresql` package is installed when no server is found (needs root). As root
# the cluster runs as the `postgres` user (initdb refuses root); otherwise as yourself.
# Environment: IVR_PG_DIR (state directory), IVR_PG_PORT (port number / socket name).
set -euo pipefail

PORT="${IVR_PG_PORT:-55432}"
STATE="${IVR_PG_DIR:-/var/tmp/ivr-postgres-$(id -u)-$PORT}"
DATA="$STATE/data"
SOCK="$STATE/sock"
LOG="$STATE/postgres.log"

die() { echo "postgres.sh: $*" >&2; exit 1; }

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true; }

is_root() { [ "$(id -u)" = 0 ]; }

# Run as the cluster's owner, from a directory that owner can read.
as_owner() {
  if is_root; then (cd "$STATE" && runuser -u postgres -- "$@"); else (cd "$STATE" && "$@"); fi
}

ensure_installed() {
  [ -n "$(bindir)" ] && return 0
  is_root || die "no PostgreSQL server found and installing one needs root (apt-get install postgresql)"
  echo "postgres.sh: installing Debian's postgresql package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends postgresql >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends postgresql >&2; }
  [ -n "$(bindir)" ] || die "postgresql installed but no server binaries under /usr/lib/postgresql"
}

url() { echo "postgresql://postgres@/postgres?host=$SOCK&port=$PORT"; }

running() {
  local bin; bin="$(bindir)"
  [ -n "$bin" ] && [ -d "$STATE" ] && [ -s "$DATA/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

prepare_state() {
  [ -L "$STATE" ] && die "$STATE is a symlink; refusing to use it"
  mkdir -p -m 0755 "$STATE"
  [ -O "$STATE" ] || die "$STATE belongs to someone else; set IVR_PG_DIR"
  chmod 0755 "$STATE"  # the cluster's owner must reach data/ and sock/ (each 0700) below it
  if is_root; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' user (it comes with the postgresql package)"
    install -d -m 0700 -o postgres -g postgres "$DATA" "$SOCK"
    touch "$LOG" && chown postgres:postgres "$LOG"
  else
    install -d -m 0700 "$DATA" "$SOCK"
  fi
}

start() {
  ensure_installed
  local bin; bin="$(bindir)"
  if running; then url; return 0; fi
  prepare_state
  if [ ! -s "$DATA/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --no-locale >"$STATE/initdb.log" 2>&1 \
      || { cat "$STATE/initdb.log" >&2; die "initdb failed"; }
    cat >>"$DATA/postgresql.conf" <<CONF

# ivr/runtime/postgres.sh: private, socket-only, durable
listen_addresses = ''
port = $PORT
unix_socket_directories = '$SOCK'
max_connections = 200
fsync = on
synchronous_commit = on
full_page_writes = on
CONF
  fi
  as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >&2 \
    || { tail -n 30 "$LOG" >&2; die "the cluster did not start (log: $LOG)"; }
  url
}

stop() {
  if running; then
    as_owner "$(bindir)/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >&2
  fi
  if [ -d "$STATE" ] && [ ! -L "$STATE" ]; then rm -rf "$STATE"; fi
}

pause() {
  if running; then
    as_owner "$(bindir)/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >&2
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  pause) pause ;;
  url) url ;;
  status) running ;;
  *) echo "usage: $0 start|stop|pause|url|status" >&2; exit 2 ;;
esac
