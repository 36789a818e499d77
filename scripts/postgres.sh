#!/usr/bin/env bash
# Start the local PostgreSQL the store tests use, and make sure they can log in.
#
#   scripts/postgres.sh          ensure a server on 127.0.0.1:$PORT with role tradedesk (default)
#   scripts/postgres.sh stop     stop the cluster this script started
#   scripts/postgres.sh status   say whether it runs
#
# Tests connect with postgresql+psycopg://tradedesk:tradedesk@127.0.0.1:5432/postgres
# (tests/conftest.py; TEST_POSTGRES_URL overrides). The role may create databases and is not a
# superuser. Idempotent: when the server answers and the role logs in, this returns at once.
#
# - Server binaries: the newest /usr/lib/postgresql/*/bin; if there is none, apt-get installs
#   `postgresql` (Debian).
# - Cluster: data in .pgdata/ (TRADEDESK_PGDATA overrides), owned by the `postgres` OS user
#   when we are root (PostgreSQL refuses to run as root), listening on 127.0.0.1 only.
# - If something already answers on the port, it is reused: the role is created through the
#   postgres user's local socket if it is missing. If that is impossible we stop and say so.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${TRADEDESK_PG_PORT:-5432}"
HOST=127.0.0.1
ROLE=tradedesk
PASSWORD=tradedesk
PGDATA_DIR="${TRADEDESK_PGDATA:-$ROOT/.pgdata}"
ACTION="${1:-start}"

say() { printf 'postgres: %s\n' "$*"; }
die() { printf 'postgres: error: %s\n' "$*" >&2; exit 1; }

# The OS user owning the cluster is also its superuser (peer authentication on the socket).
if [ "$(id -u)" = 0 ]; then SUDO=""; PG_OS_USER=postgres; else SUDO="sudo"; PG_OS_USER="$(id -un)"; fi

# Run a command as the OS user owning the cluster, from a directory it can read.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u "$PG_OS_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

find_bindir() {
    local dir best=""
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
        [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ] && best="$dir"
    done
    [ -n "$best" ] && printf '%s\n' "$best"
}

BINDIR="$(find_bindir || true)"
if [ -z "$BINDIR" ]; then
    [ "$ACTION" = start ] || die "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin"
    say "no PostgreSQL server binaries found; installing Debian's postgresql"
    command -v apt-get >/dev/null || die "no apt-get here: install PostgreSQL (server) yourself"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    BINDIR="$(find_bindir || true)"
    [ -n "$BINDIR" ] || die "apt-get installed postgresql but no server binaries appeared"
fi
PSQL="$BINDIR/psql"
PG_ISREADY="$BINDIR/pg_isready"

# Socket in the data dir unless its path would be too long for a unix socket.
SOCKDIR="$PGDATA_DIR"
[ "${#PGDATA_DIR}" -lt 80 ] || SOCKDIR=/tmp

answers() { "$PG_ISREADY" -q -h "$HOST" -p "$PORT" -t 1; }
role_logs_in() {
    PGPASSWORD="$PASSWORD" PGCONNECT_TIMEOUT=3 "$PSQL" -X -q -h "$HOST" -p "$PORT" -U "$ROLE" \
        -d postgres -tAc 'select 1' >/dev/null 2>&1
}
ours_running() {
    [ -f "$PGDATA_DIR/postmaster.pid" ] && as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

case "$ACTION" in
    stop)
        if ours_running; then
            as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null
            say "stopped the cluster in $PGDATA_DIR"
        else
            say "the cluster in $PGDATA_DIR is not running"
        fi
        exit 0 ;;
    status)
        if ours_running; then say "running from $PGDATA_DIR on $HOST:$PORT"; exit 0; fi
        if answers; then say "a server answers on $HOST:$PORT (not started from $PGDATA_DIR)"; exit 0; fi
        say "not running"; exit 3 ;;
    start) ;;
    *) die "usage: $0 [start|stop|status]" ;;
esac

# Fast path: the server answers and our role logs in.
if answers && role_logs_in; then
    say "ready on $HOST:$PORT (server binaries in $BINDIR; role $ROLE logs in)"
    exit 0
fi

if ! answers; then
    if [ ! -s "$PGDATA_DIR/PG_VERSION" ]; then
        say "creating a cluster in $PGDATA_DIR"
        rm -rf "$PGDATA_DIR"
        mkdir -p "$PGDATA_DIR"
        if [ "$(id -u)" = 0 ]; then chown "$PG_OS_USER": "$PGDATA_DIR"; fi
        chmod 700 "$PGDATA_DIR"
        as_pg "$BINDIR/initdb" -D "$PGDATA_DIR" -U "$PG_OS_USER" -E UTF8 --locale=C.UTF-8 \
            --auth-local=peer --auth-host=scram-sha-256 >/dev/null \
            || die "initdb failed in $PGDATA_DIR"
    elif [ "$(cat "$PGDATA_DIR/PG_VERSION")" != "$(basename "$(dirname "$BINDIR")")" ]; then
        die "$PGDATA_DIR holds a PostgreSQL $(cat "$PGDATA_DIR/PG_VERSION") cluster but the binaries are $BINDIR; remove $PGDATA_DIR (test data only) and rerun"
    fi
    say "starting PostgreSQL on $HOST:$PORT (log: $PGDATA_DIR/server.log)"
    # A stale postmaster.pid from a killed server is handled by pg_ctl itself. No autovacuum:
    # the databases are the tests' throwaway ones, and a worker of the superuser's in one
    # makes its DROP DATABASE ... WITH (FORCE) fail for lack of the right to end it. No
    # durability either (fsync, synchronous commits, full pages): nothing here outlives the
    # tests, whose outages are a proxy's and never the server's crash, and a commit that
    # waits on the disk makes the PostgreSQL tests several times slower than SQLite's.
    as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=$HOST -p $PORT -c unix_socket_directories=$SOCKDIR -c autovacuum=off -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null \
        || { tail -n 20 "$PGDATA_DIR/server.log" >&2 || true; die "PostgreSQL did not start"; }
fi

for _ in $(seq 1 60); do answers && break; sleep 0.5; done
answers || die "nothing answers on $HOST:$PORT after 30s"

# Create or repair the role through an admin connection over a local socket.
admin_sql() {
    local sock
    for sock in "$SOCKDIR" /var/run/postgresql /tmp; do
        [ -S "$sock/.s.PGSQL.$PORT" ] || continue
        if as_pg "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$PORT" -U "$PG_OS_USER" -d postgres \
            -c "$1" >/dev/null 2>&1; then
            return 0
        fi
    done
    return 1
}
SQL="DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN CREATEDB NOSUPERUSER PASSWORD '$PASSWORD';
  ELSE
    ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
  END IF;
END \$\$;"
if ! role_logs_in; then
    admin_sql "$SQL" || die "a server answers on $HOST:$PORT but it is not ours and role $ROLE cannot log in; stop it, or start this one elsewhere: TRADEDESK_PG_PORT=54329 $0 and TEST_POSTGRES_URL=postgresql+psycopg://$ROLE:$PASSWORD@$HOST:54329/postgres"
    role_logs_in || die "created role $ROLE but it cannot log in over TCP on $HOST:$PORT (check pg_hba.conf)"
fi
say "ready on $HOST:$PORT (binaries in $BINDIR; role $ROLE with CREATEDB)"
