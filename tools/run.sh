#!/usr/bin/env bash
# Runs the whole mce system on this machine: installs what is missing, builds (Release), and
# starts the five processes with one configuration. Ctrl-C stops everything cleanly.
#
#   tools/run.sh                 built-in defaults (loopback ports, data in ./.run/data)
#   tools/run.sh -c my.cfg       your configuration
#
# Logs go to .run/logs/<process>.log. If any process stops on its own, all are stopped and
# the end of its log is shown.
set -euo pipefail
cd "$(dirname "$0")/.."

config_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        -c|--config) config_args=(-c "$(realpath "$2")"); shift 2 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

bash tools/deps.sh
echo "run: building (build/) ..."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

for exe in mce-matcher mce-settler mce-persister mce-broadcaster mce-gateway; do
    build/bin/$exe "${config_args[@]}" --check-config >/dev/null 2>.run-check.log || {
        cat .run-check.log >&2; rm -f .run-check.log; exit 2; }
done
rm -f .run-check.log

mkdir -p .run/logs .run/data
pids=()
names=()
local_pg=false
local_redis=false
ledger_pid=
stop_all() {
    trap - INT TERM EXIT
    echo
    echo "run: stopping ..."
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    [ -n "$ledger_pid" ] && kill -TERM "$ledger_pid" 2>/dev/null
    wait 2>/dev/null || true
    if $local_redis; then
        redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    fi
    if $local_pg; then
        bash tools/pg.sh stop "$PWD/.run/data" >/dev/null 2>&1 || true
    fi
    echo "run: stopped"
}
trap stop_all EXIT
trap 'stop_all; exit 0' INT TERM # Ctrl-C is the normal way to stop: no tails of logs

# Postgres and Redis: the configured ones, or (with the built-in defaults and no
# MCE_POSTGRES_URL / MCE_REDIS_URL) local ones with their data in .run/data.
PG_PORT=${MCE_RUN_PG_PORT:-55432}
REDIS_PORT=${MCE_RUN_REDIS_PORT:-56379}
if [ ${#config_args[@]} -eq 0 ] && [ -z "${MCE_POSTGRES_URL:-}" ]; then
    echo "run: starting a local Postgres on 127.0.0.1:$PG_PORT (.run/data/postgres) ..."
    MCE_POSTGRES_URL=$(bash tools/pg.sh start "$PWD/.run/data" "$PG_PORT")
    export MCE_POSTGRES_URL
    local_pg=true
fi
if [ ${#config_args[@]} -eq 0 ] && [ -z "${MCE_REDIS_URL:-}" ]; then
    echo "run: starting a local Redis on 127.0.0.1:$REDIS_PORT (.run/data/redis) ..."
    mkdir -p .run/data/redis
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$PWD/.run/data/redis" \
        --daemonize yes --logfile "$PWD/.run/logs/redis.log" --save "" >/dev/null
    export MCE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
    local_redis=true
fi
# The gateway's token key: made once for the local run, kept private in .run/.
if [ ${#config_args[@]} -eq 0 ] && [ -z "${MCE_GATEWAY_JWT_SECRET:-}" ]; then
    if [ ! -s .run/jwt_secret ]; then
        (umask 077; head -c 48 /dev/urandom | base64 | tr -d '\n/+=' > .run/jwt_secret)
    fi
    MCE_GATEWAY_JWT_SECRET=$(cat .run/jwt_secret)
    export MCE_GATEWAY_JWT_SECRET
fi

# The local Solana ledger (tools/ledger: real SPL Token programs in litesvm), unless a
# cluster is configured (MCE_SETTLER_RPC_URL or -c). It keeps no state between runs: each run
# starts a fresh chain with four funded users (user1..user4) whose wallets can sign up.
LEDGER_PORT=${MCE_RUN_LEDGER_PORT:-58899}
wallets=()
if [ ${#config_args[@]} -eq 0 ] && [ -z "${MCE_SETTLER_RPC_URL:-}" ]; then
    echo "run: starting the local Solana ledger on 127.0.0.1:$LEDGER_PORT (tools/ledger) ..."
    rm -f .run/ledger.ready
    node tools/ledger/ledger.js --port "$LEDGER_PORT" --users 4 \
        --setup-out "$PWD/.run/ledger.json" --watch-pid $$ \
        >.run/ledger.ready 2>>.run/logs/ledger.log &
    ledger_pid=$!
    for _ in $(seq 300); do
        grep -q "listening" .run/ledger.ready 2>/dev/null && break
        if ! kill -0 "$ledger_pid" 2>/dev/null; then
            echo "run: the local ledger did not start; .run/logs/ledger.log:" >&2
            tail -n 15 .run/logs/ledger.log >&2
            exit 1
        fi
        sleep 0.1
    done
    export MCE_SETTLER_RPC_URL="http://127.0.0.1:$LEDGER_PORT"
    export MCE_SETTLER_KEYS_FILE="$PWD/.run/ledger.json"
    mapfile -t wallets < <(node -e \
        'for (const u of require(process.argv[1]).users) console.log(u.wallet)' \
        "$PWD/.run/ledger.json")
fi
wallet1=${wallets[0]:-4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T}
wallet2=${wallets[1]:-$wallet1}

# The matcher first: everything else connects to it (ZeroMQ reconnects, so order is a courtesy).
for exe in mce-matcher mce-settler mce-persister mce-broadcaster mce-gateway; do
    build/bin/$exe "${config_args[@]}" >>".run/logs/$exe.log" 2>&1 &
    pids+=($!)
    names+=("$exe")
done

port=$(build/bin/mce-gateway "${config_args[@]}" --check-config 2>&1 | sed -n 's/.*gateway.http_port = \([0-9]*\).*/\1/p')
addr=$(build/bin/mce-gateway "${config_args[@]}" --check-config 2>&1 | sed -n 's/.*gateway.http_address = "\(.*\)".*/\1/p')
api="http://$addr:$port"
echo "run: mce is up — the dashboard at $api/ and the API at $api (try: curl -s $api/api/health; the API: $api/api/openapi.json)"
echo "run: sign up (with a wallet the local ledger funded), sign in and place an order:"
echo "       curl -s -XPOST $api/api/auth/register -d '{\"username\":\"alice\",\"password\":\"correct horse\",\"wallet\":\"$wallet1\"}'"
echo "       TOKEN=\$(curl -s -XPOST $api/api/auth/login -d '{\"username\":\"alice\",\"password\":\"correct horse\"}' | sed 's/.*\"token\":\"\([^\"]*\)\".*/\\1/')"
echo "       curl -s -XPOST $api/api/trading/orders -H \"Authorization: Bearer \$TOKEN\" -d '{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"12.5\",\"price\":\"0.15\"}'"
echo "run: a seller (bob, wallet $wallet2) selling at 0.15 makes a trade the settler pays on the ledger"
echo "run: an administrator: echo 'a long password' | build/bin/mcectl user add root --wallet <key> --admin"
echo "     (in another shell, with the same MCE_POSTGRES_URL=$MCE_POSTGRES_URL)"
echo "run: logs in .run/logs/, data in the configured data_dir; Ctrl-C stops everything"

# Wait until one of them stops by itself (or Ctrl-C).
set +e
wait -n "${pids[@]}"
for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        echo "run: ${names[$i]} stopped; last lines of .run/logs/${names[$i]}.log:" >&2
        tail -n 15 ".run/logs/${names[$i]}.log" >&2
    fi
done
exit 1
