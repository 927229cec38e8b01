#!/usr/bin/env bash
# Runs the whole mce system on this machine: installs what is missing, builds (Release), and
# starts the five processes with one configuration. Ctrl-C stops everything cleanly.
#
#   tools/run.sh                 built-in defaults (loopback ports, data in ./.run/data)
#   tools/run.sh -c my.cfg       your configuration
#   tools/run.sh --demo [--epoch-seconds S] [-- DEMO-OPTIONS]
#                                also a simulated campus day (build/bin/mce-demo --help for its
#                                options): an auction market of S-second epochs (default 6, a
#                                day in under 3 minutes), on a fresh system in ./.run/demo
#                                (removed at start). It prints a line per epoch, then a table
#                                and the chart's path (.run/demo.svg); the system keeps
#                                running (the dashboard too) until Ctrl-C.
#   --users N                    funded users of the local ledger (default 4; with --demo one
#                                per demo prosumer and consumer, and one for the grid)
#
# Postgres, Redis and the Solana ledger run locally, in the run's data folder, unless
# MCE_POSTGRES_URL, MCE_REDIS_URL, MCE_SETTLER_RPC_URL or the configuration (postgres.url,
# redis.url, settler.rpc_url) name others; the gateway's token key (gateway.jwt_secret)
# likewise comes from .run/jwt_secret unless given. Logs go to .run/logs/<process>.log
# (.run/demo/logs with --demo). If any process stops on its own, all are stopped and the end
# of its log is shown.
set -euo pipefail
cd "$(dirname "$0")/.."

config_file=
demo=false
epoch_seconds=6
users=
demo_args=()
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
need() { # option value: a value must follow
    [ $# -ge 2 ] || { echo "run.sh: $1 needs a value (try --help)" >&2; exit 2; }
}
while [ $# -gt 0 ]; do
    case "$1" in
        -c|--config) need "$@"; config_file=$(realpath "$2"); shift 2 ;;
        --demo) demo=true; shift ;;
        --epoch-seconds) need "$@"; epoch_seconds=$2; shift 2 ;;
        --users) need "$@"; users=$2; shift 2 ;;
        --) shift; demo_args=("$@"); break ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
if ! $demo && { [ ${#demo_args[@]} -gt 0 ] || [ "$epoch_seconds" != 6 ]; }; then
    echo "run.sh: --epoch-seconds and demo options (after --) go with --demo" >&2; exit 2
fi
if $demo && [ -n "$config_file" ]; then
    echo "run.sh: --demo makes its own configuration (.run/demo/mce.cfg): give --demo or -c, not both" >&2
    exit 2
fi
if ! [[ $epoch_seconds =~ ^[1-9][0-9]*$ ]] || { [ -n "$users" ] && ! [[ $users =~ ^[1-9][0-9]*$ ]]; }; then
    echo "run.sh: --epoch-seconds and --users take a positive number" >&2; exit 2
fi

# The demo's users: one funded wallet each (mce-demo's --prosumers and --consumers), and one
# more for the grid (the utility's wallet, which the grid's trades settle against).
if $demo && [ -z "$users" ]; then
    prosumers=6 consumers=10 # mce-demo's defaults
    for ((i = 0; i < ${#demo_args[@]}; i++)); do
        case "${demo_args[$i]}" in
            --prosumers) prosumers=${demo_args[$((i + 1))]:-$prosumers} ;;
            --prosumers=*) prosumers=${demo_args[$i]#*=} ;;
            --consumers) consumers=${demo_args[$((i + 1))]:-$consumers} ;;
            --consumers=*) consumers=${demo_args[$i]#*=} ;;
        esac
    done
    if ! [[ $prosumers =~ ^[1-9][0-9]{0,3}$ && $consumers =~ ^[1-9][0-9]{0,3}$ ]]; then
        echo "run.sh: --prosumers and --consumers take a positive number (try build/bin/mce-demo --help)" >&2
        exit 2
    fi
    users=$((prosumers + consumers + 1))
fi

# Whether config file $1 sets key $3 of its group $2 (postgres url: `postgres = { url = ...`).
# A plain reading of libconfig (comments dropped, the group's braces), enough for our files.
config_sets() {
    [ -n "$1" ] || return 1
    sed -e 's/\(^\|[[:space:]]\)#.*$//' -e 's|\(^\|[[:space:]]\)//.*$||' "$1" | tr '\n' ' ' |
        grep -Eq "(^|[^A-Za-z0-9_])$2[[:space:]]*[:=][[:space:]]*\{([^}]*[;,[:space:]])?$3[[:space:]]*[:=]"
}

bash tools/deps.sh
echo "run: building (build/) ..."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

# The run's folder: .run, or with --demo .run/demo, made afresh (a demo's journals, database
# and ledger start empty together, and never meet those of a normal run).
run=.run
if $demo; then
    run=.run/demo
    [ -d "$run/data/postgres" ] && bash tools/pg.sh stop "$PWD/$run/data" >/dev/null 2>&1 || true
    rm -rf "$run"
    mkdir -p "$run"
    config_file=$PWD/$run/mce.cfg
    cat >"$config_file" <<CFG
# Made by tools/run.sh --demo: the demo's market (an auction at each epoch's end, short
# epochs: one per simulated hour; the utility's grid sells at 0.24 and buys at 0.07 per kWh)
# and its own data; everything else is the built-in default.
data_dir = "$PWD/$run/data";
markets = (
  { id = "campus-1"; mode = "auction"; epoch_seconds = $epoch_seconds; future_epochs = 4;
    grid_import_price = "0.24"; grid_feed_in_price = "0.07"; grid_user = "grid"; }
);
CFG
fi
config_args=()
[ -z "$config_file" ] || config_args=(-c "$config_file")

for exe in mce-matcher mce-settler mce-persister mce-broadcaster mce-gateway; do
    build/bin/$exe "${config_args[@]}" --check-config >/dev/null 2>.run-check.log || {
        cat .run-check.log >&2; rm -f .run-check.log; exit 2; }
done
rm -f .run-check.log

mkdir -p "$run/logs" "$run/data"
pids=()
names=()
local_pg=false
local_redis=false
ledger_pid=
demo_pid=
stop_all() {
    trap - INT TERM EXIT
    echo
    echo "run: stopping ..."
    [ -n "$demo_pid" ] && kill -TERM "$demo_pid" 2>/dev/null
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    [ -n "$ledger_pid" ] && kill -TERM "$ledger_pid" 2>/dev/null
    wait 2>/dev/null || true
    if $local_redis; then
        redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    fi
    if $local_pg; then
        bash tools/pg.sh stop "$PWD/$run/data" >/dev/null 2>&1 || true
    fi
    echo "run: stopped"
}
trap stop_all EXIT
trap 'stop_all; exit 0' INT TERM # Ctrl-C is the normal way to stop: no tails of logs

# Postgres and Redis: the ones the environment or the configuration names, else local ones
# with their data in the run's folder.
PG_PORT=${MCE_RUN_PG_PORT:-55432}
REDIS_PORT=${MCE_RUN_REDIS_PORT:-56379}
if [ -z "${MCE_POSTGRES_URL:-}" ] && ! config_sets "$config_file" postgres url; then
    echo "run: starting a local Postgres on 127.0.0.1:$PG_PORT ($run/data/postgres) ..."
    MCE_POSTGRES_URL=$(bash tools/pg.sh start "$PWD/$run/data" "$PG_PORT")
    export MCE_POSTGRES_URL
    local_pg=true
fi
if [ -z "${MCE_REDIS_URL:-}" ] && ! config_sets "$config_file" redis url; then
    echo "run: starting a local Redis on 127.0.0.1:$REDIS_PORT ($run/data/redis) ..."
    mkdir -p "$run/data/redis"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$PWD/$run/data/redis" \
        --daemonize yes --logfile "$PWD/$run/logs/redis.log" --save "" >/dev/null
    export MCE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
    local_redis=true
fi
# The gateway's token key: made once for local runs, kept private in .run/.
if [ -z "${MCE_GATEWAY_JWT_SECRET:-}" ] && ! config_sets "$config_file" gateway jwt_secret; then
    if [ ! -s .run/jwt_secret ]; then
        (umask 077; head -c 48 /dev/urandom | base64 | tr -d '\n/+=' > .run/jwt_secret)
    fi
    MCE_GATEWAY_JWT_SECRET=$(cat .run/jwt_secret)
    export MCE_GATEWAY_JWT_SECRET
fi

# The local Solana ledger (tools/ledger: real SPL Token programs in litesvm), unless a
# cluster is configured (MCE_SETTLER_RPC_URL or settler.rpc_url). It keeps no state between
# runs: each run starts a fresh chain with funded users (user1..userN, four unless --users or
# --demo say otherwise) whose wallets can sign up; the same wallets every run. Their keypair
# files (Solana CLI format) are in $run/keys: signing up proves a wallet with its key.
LEDGER_PORT=${MCE_RUN_LEDGER_PORT:-58899}
wallets=()
if [ -z "${MCE_SETTLER_RPC_URL:-}" ] && ! config_sets "$config_file" settler rpc_url; then
    echo "run: starting the local Solana ledger on 127.0.0.1:$LEDGER_PORT with ${users:-4} funded users (tools/ledger) ..."
    rm -f "$run/ledger.ready"
    node tools/ledger/ledger.js --port "$LEDGER_PORT" --users "${users:-4}" \
        --setup-out "$PWD/$run/ledger.json" --keys-dir "$PWD/$run/keys" --watch-pid $$ \
        >"$run/ledger.ready" 2>>"$run/logs/ledger.log" &
    ledger_pid=$!
    for _ in $(seq 300); do
        grep -q "listening" "$run/ledger.ready" 2>/dev/null && break
        if ! kill -0 "$ledger_pid" 2>/dev/null; then
            echo "run: the local ledger did not start; $run/logs/ledger.log:" >&2
            tail -n 15 "$run/logs/ledger.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    export MCE_SETTLER_RPC_URL="http://127.0.0.1:$LEDGER_PORT"
    export MCE_SETTLER_KEYS_FILE="$PWD/$run/ledger.json"
    mapfile -t wallets < <(node -e \
        'for (const u of require(process.argv[1]).users) console.log(u.wallet)' \
        "$PWD/$run/ledger.json")
fi
wallet1=${wallets[0]:-}
wallet2=${wallets[1]:-}
keys1=$run/keys/user-user1.json keys2=$run/keys/user-user2.json
[ -n "$wallet1" ] || keys1="<your keypair file>" keys2="<another keypair file>"
mcectl="build/bin/mcectl ${config_args[*]:+${config_args[*]} }"

# Every link between the processes is CurveZMQ: each process's key pair, and the monitor key
# `mcectl tail` uses, in security.keys_dir (./.run/curve-keys unless configured). Made once;
# kept keys are left as they are.
build/bin/mcectl "${config_args[@]}" keys init >/dev/null

# The matcher first: everything else connects to it (ZeroMQ reconnects, so order is a courtesy).
for exe in mce-matcher mce-settler mce-persister mce-broadcaster mce-gateway; do
    build/bin/$exe "${config_args[@]}" >>"$run/logs/$exe.log" 2>&1 &
    pids+=($!)
    names+=("$exe")
done

port=$(build/bin/mce-gateway "${config_args[@]}" --check-config 2>&1 | sed -n 's/.*gateway.http_port = \([0-9]*\).*/\1/p')
addr=$(build/bin/mce-gateway "${config_args[@]}" --check-config 2>&1 | sed -n 's/.*gateway.http_address = "\(.*\)".*/\1/p')
api="http://$addr:$port"
echo "run: mce is up — the dashboard at $api/ and the API at $api (try: curl -s $api/api/health; the API: $api/api/openapi.json)"
echo "run: try it in another shell: alice buys, bob sells. Sign up (the dashboard does it with a browser"
echo "     wallet; here a keypair the local ledger funded signs the gateway's challenge), sign in,"
echo "     deposit into the platform's vaults (orders must be covered), trade, see it settled:"
echo "       cd $PWD"
echo "       echo 'alice password' | ${mcectl}register alice --keypair $keys1"
echo "       echo 'bob password' | ${mcectl}register bob --keypair $keys2"
echo "       ALICE=\$(echo 'alice password' | ${mcectl}login alice)"
echo "       BOB=\$(echo 'bob password' | ${mcectl}login bob)"
echo "       ${mcectl}--token \$ALICE deposit --asset payment --amount 10"
echo "       ${mcectl}--token \$BOB deposit --asset energy --amount 20"
echo "       ${mcectl}--token \$ALICE balances     # credited once the chain confirms, in a second or two"
echo "       ${mcectl}--token \$BOB order place --side sell --qty 12.5 --price 0.15"
echo "       ${mcectl}--token \$ALICE order place --side buy --qty 12.5 --price 0.15"
echo "       ${mcectl}--token \$ALICE trades --mine   # the trade, its settlement and its transaction"
echo "     or over HTTP: curl -s -XPOST $api/api/trading/orders -H \"Authorization: Bearer \$ALICE\" \\"
echo "       -d '{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.15\"}'"
echo "run: an administrator: echo 'a long password' | ${mcectl}user add root --wallet <key> --admin"
echo "     (in another shell, with the same MCE_POSTGRES_URL=${MCE_POSTGRES_URL:-<postgres.url of the config>})"
echo "run: logs in $run/logs/, data in the configured data_dir; Ctrl-C stops everything"

# The demo, beside the system: its lines and table go to this terminal.
if $demo; then
    echo "run: the demo: a campus day, one ${epoch_seconds}-second epoch per simulated hour (build/bin/mce-demo; the dashboard shows it live)"
    build/bin/mce-demo "${config_args[@]}" --wallets "$PWD/$run/ledger.json" "${demo_args[@]}" &
    demo_pid=$!
fi

# Wait until one of them stops by itself (or Ctrl-C); the demo ending is not a reason to stop.
set +e
while true; do
    done_pid=
    wait -n -p done_pid "${pids[@]}" ${demo_pid:+"$demo_pid"}
    status=$?
    if [ -n "$demo_pid" ] && [ "$done_pid" = "$demo_pid" ]; then
        demo_pid=
        if [ "$status" -eq 0 ]; then
            echo "run: the demo is done (its table and chart above); mce keeps running, the dashboard at $api/; Ctrl-C stops everything"
        else
            echo "run: the demo ended with status $status (see above); mce keeps running; Ctrl-C stops everything" >&2
        fi
        continue
    fi
    break
done
for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        echo "run: ${names[$i]} stopped; last lines of $run/logs/${names[$i]}.log:" >&2
        tail -n 15 "$run/logs/${names[$i]}.log" >&2
    fi
done
exit 1
