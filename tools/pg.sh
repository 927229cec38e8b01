#!/usr/bin/env bash
# Starts and stops the local PostgreSQL of the local run (tools/run.sh), with its data in
# DATA_DIR/postgres, listening on 127.0.0.1:PORT only, and a database `mce`. TCP connections
# need the password made at the first start (DATA_DIR/postgres.password, the owner's only):
# on a shared machine any local user can reach 127.0.0.1, and the database holds every
# user's orders and wallets. The conninfo printed carries it.
#
#   tools/pg.sh start DATA_DIR PORT    initialise (first time) and start; prints the conninfo
#   tools/pg.sh stop DATA_DIR          stop (fast shutdown: clients are disconnected)
#   tools/pg.sh status DATA_DIR        exit 0 and print the conninfo if it is running
#
# Idempotent: start when it already runs says so and prints the conninfo; stop when it does
# not run says so. The conninfo is the only thing on stdout, so
#   conninfo=$(tools/pg.sh start .run/data 5433)
# works; messages go to stderr. PostgreSQL refuses to run as root, so as root initdb and
# pg_ctl run as the `postgres` user (setpriv: no PAM session), and DATA_DIR/postgres belongs to it.
# The binaries: $MCE_PG_BIN, else the newest /usr/lib/postgresql/<version>/bin, else PATH.
set -euo pipefail

PG_USER=postgres
DB=mce
START_TIMEOUT=60 # seconds pg_ctl waits for the server to accept connections

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
say() { echo "pg: $*" >&2; }
die() {
    say "$*"
    exit 1
}

find_bin() {
    if [ -n "${MCE_PG_BIN:-}" ]; then
        echo "$MCE_PG_BIN"
        return
    fi
    local best
    best=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5n | tail -1)
    if [ -n "$best" ] && [ -x "$best/pg_ctl" ]; then
        echo "$best"
        return
    fi
    command -v pg_ctl >/dev/null 2>&1 || die "no PostgreSQL binaries (apt-get install postgresql, or set MCE_PG_BIN)"
    dirname "$(command -v pg_ctl)"
}

# Runs a PostgreSQL tool as the postgres user when we are root, from a folder it may enter.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && setpriv --reuid="$PG_USER" --regid="$PG_USER" --init-groups -- "$@")
    else
        "$@"
    fi
}

# The port a running server listens on: line 4 of postmaster.pid.
running_port() {
    sed -n 4p "$PGDATA/postmaster.pid" 2>/dev/null
}

is_running() {
    [ -f "$PGDATA/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

conninfo() {
    if [ -s "$PWFILE" ]; then
        echo "host=127.0.0.1 port=$1 user=postgres password=$(cat "$PWFILE") dbname=$DB"
    else
        echo "host=127.0.0.1 port=$1 user=postgres dbname=$DB"
    fi
}

# Every folder above DATA_DIR/postgres must let the postgres user through.
check_traversal() {
    [ "$(id -u)" -eq 0 ] || return 0
    local d="" part
    local -a parts
    IFS=/ read -ra parts <<<"$(realpath "$DATA_DIR")"
    for part in "${parts[@]}"; do # from the top down, so the first closed folder is named
        [ -n "$part" ] || continue
        d="$d/$part"
        setpriv --reuid="$PG_USER" --regid="$PG_USER" --init-groups -- test -x "$d" ||
            die "the '$PG_USER' user cannot enter $d: chmod o+x $d, or choose another DATA_DIR"
    done
}

create_db() {
    local port=$1
    local psql=(env PGPASSWORD="$(cat "$PWFILE" 2>/dev/null || true)"
        "$BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -tA)
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
        "${psql[@]}" -c "CREATE DATABASE $DB" >/dev/null
        say "created database $DB"
    fi
}

start() {
    local port=$1
    if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
        die "bad port '$port'"
    fi
    if is_running; then
        local actual
        actual=$(running_port)
        say "already running in $PGDATA on port $actual"
        [ "$actual" = "$port" ] || say "note: it listens on $actual, not $port (stop it to change the port)"
        create_db "$actual"
        conninfo "$actual"
        return
    fi
    mkdir -p "$DATA_DIR"
    check_traversal
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        say "initialising $PGDATA"
        mkdir -p "$PGDATA"
        chmod 700 "$PGDATA"
        [ "$(id -u)" -ne 0 ] || chown "$PG_USER:" "$PGDATA"
        # a password for TCP (scram-sha-256); the unix socket, in the postgres-only data
        # folder, stays trusted for pg_ctl
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$PWFILE")
        local pwcopy="$DATA_DIR/.initdb-password" # initdb wants PGDATA empty
        (umask 077 && cp "$PWFILE" "$pwcopy")
        [ "$(id -u)" -ne 0 ] || chown "$PG_USER:" "$pwcopy"
        as_pg "$BIN/initdb" -D "$PGDATA" --auth-local=trust --auth-host=scram-sha-256 \
            --pwfile="$pwcopy" -U postgres -E UTF8 --locale=C >"$DATA_DIR/postgres-initdb.log" 2>&1 || {
            rm -f "$pwcopy"
            cat "$DATA_DIR/postgres-initdb.log" >&2
            die "initdb failed"
        }
        rm -f "$pwcopy"
    elif [ ! -s "$PWFILE" ]; then
        say "note: $PGDATA was made before local runs had a password: it trusts any local user" \
            "on 127.0.0.1; remove it (the data goes) to start afresh with one"
    fi
    # The socket goes in the data folder unless its path would not fit a unix socket address.
    local sockdir="$PGDATA"
    [ ${#PGDATA} -lt 90 ] || sockdir=""
    say "starting on 127.0.0.1:$port (log: $PGDATA/server.log)"
    if ! as_pg "$BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t "$START_TIMEOUT" -s \
        -o "-p $port -k '$sockdir' -c listen_addresses=127.0.0.1" start; then
        tail -n 20 "$PGDATA/server.log" >&2 || true
        die "could not start PostgreSQL (is port $port taken?)"
    fi
    create_db "$port"
    conninfo "$port"
}

stop() {
    if ! is_running; then
        say "not running ($PGDATA)"
        return
    fi
    as_pg "$BIN/pg_ctl" -D "$PGDATA" -m fast -w -t "$START_TIMEOUT" -s stop
    say "stopped"
}

status() {
    if is_running; then
        conninfo "$(running_port)"
    else
        say "not running ($PGDATA)"
        exit 1
    fi
}

[ $# -ge 2 ] || usage
cmd=$1
DATA_DIR=$2
PGDATA=$(realpath -m "$DATA_DIR")/postgres
PWFILE=$(realpath -m "$DATA_DIR")/postgres.password
BIN=$(find_bin)

case "$cmd" in
    start)
        [ $# -eq 3 ] || usage
        start "$3"
        ;;
    stop) stop ;;
    status) status ;;
    *) usage ;;
esac
