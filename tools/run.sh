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
# likewise comes from .run/jwt_secret unless given. The data is kept for the next run: the
# database, the journals and the local ledger's chain together (.run/data). Logs go to
# .run/logs/<process>.log (.run/demo/logs with --demo).
#
# It builds only the executables it runs, says "up" once every process reports healthy
# (`mcectl health`), and watches them all, the ledger and Redis too: if one stops on its own,
# all are stopped and the end of its log is shown. One run per checkout (.run/run.lock).
# While it runs, mcectl from this checkout finds it by itself (.run/local.env).
# Ports: MCE_RUN_PG_PORT (55432), MCE_RUN_REDIS_PORT (56379), MCE_RUN_LEDGER_PORT (58899).
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

# One run per checkout: the lock is held for as long as this script lives (and by nothing it
# starts: every child gets the descriptor closed), so a second run stops here, before it
# builds or touches anything, and says who holds it.
mkdir -p .run
exec 9>>.run/run.lock
if ! flock -n 9; then
    holder=$(cat .run/run.pid 2>/dev/null || true)
    echo "run: another tools/run.sh is running from this checkout (pid ${holder:-unknown}):" \
        "its dashboard and commands are yours to use; stop it first (Ctrl-C in its terminal," \
        "or kill ${holder:-<pid>}) to start another" >&2
    exit 1
fi
echo $$ >.run/run.pid

# Stopping servers by pid, here and in stop_all below.
# lives PID: it runs (a zombie has stopped: Postgres, once pg_ctl's child, is reaped by
# init, which may take a while).
lives() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}
# wait_gone SECONDS PID...: until none of them lives, at most SECONDS.
wait_gone() {
    local deadline=$((SECONDS + $1)) pid alive
    shift
    while :; do
        alive=
        for pid in "$@"; do lives "$pid" && alive=$pid; done
        [ -z "$alive" ] && return 0
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.02
    done
}
stop_pids() { # SECONDS PID...: TERM, wait, then KILL what is left
    local seconds=$1 pid
    shift
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null || true
    wait_gone "$seconds" "$@" && return 0
    for pid in "$@"; do
        lives "$pid" && echo "run: pid $pid did not stop in ${seconds}s: killed" >&2
        kill -KILL "$pid" 2>/dev/null || true
    done
    return 0
}
# A run killed with SIGKILL could not stop what it started: those servers still hold the
# ports. .run/children lists them (pid and executable); stop the ones that still run that
# executable before starting anew.
if [ -s .run/children ]; then
    left=()
    while read -r pid exe; do
        if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$exe"; then
            echo "run: stopping $exe (pid $pid), left running by an earlier run that was killed"
            left+=("$pid")
        fi
    done <.run/children
    stop_pids 5 "${left[@]}"
fi
: >.run/children

bash tools/deps.sh 9>&-
# Only what a run runs (the tests and benchmarks are tools/test.sh's), and cmake's second
# configure changes nothing, so a second run builds nothing.
targets=(mce-matcher mce-settler mce-persister mce-broadcaster mce-gateway mcectl)
! $demo || targets+=(mce-demo)
echo "run: building ${targets[*]} (build/) ..."
# Configured once (with Ninja when there is one: its check of an up-to-date tree takes a tenth
# of a second where make's takes three); later builds re-run cmake themselves when a
# CMakeLists.txt changed.
configure=()
if ! grep -qs "^CMAKE_BUILD_TYPE:STRING=Release$" build/CMakeCache.txt; then
    configure=(cmake -S . -B build -DCMAKE_BUILD_TYPE=Release)
    [ -f build/CMakeCache.txt ] || ! command -v ninja >/dev/null 2>&1 || configure+=(-G Ninja)
fi
: >.run/build.log
{ [ ${#configure[@]} -eq 0 ] || "${configure[@]}" >>.run/build.log 2>&1 9>&-; } &&
    cmake --build build -j"$(nproc)" --target "${targets[@]}" >>.run/build.log 2>&1 9>&- || {
    tail -n 40 .run/build.log >&2
    echo "run: the build failed (all of it in .run/build.log)" >&2
    exit 1
}

# The run's folder: .run, or with --demo .run/demo, made afresh (a demo's journals, database
# and ledger start empty together, and never meet those of a normal run).
run=.run
if $demo; then
    run=.run/demo
    [ -d "$run/data/postgres" ] && bash tools/pg.sh stop "$PWD/$run/data" >/dev/null 2>&1 9>&- || true
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
    build/bin/$exe "${config_args[@]}" --check-config >/dev/null 2>.run/check.log || {
        cat .run/check.log >&2; exit 2; }
done

mkdir -p "$run/logs" "$run/data"
# Everything this run started, by pid, and how to stop it. Cleanup must always finish: no
# `set -e` inside it, every step allowed to fail, each server waited for (by its pid) with a
# deadline and then killed.
pids=()  # the five processes (our children)
names=()
ledger_pid=
redis_pid=
pg_pid=
demo_pid=
stop_all() {
    set +e
    trap - INT TERM EXIT
    echo
    echo "run: stopping ..."
    rm -f .run/local.env
    stop_pids 5 $demo_pid "${pids[@]}"
    [ ${#pids[@]} -eq 0 ] || wait "${pids[@]}" 2>/dev/null
    stop_pids 5 $ledger_pid $redis_pid
    # Postgres: SIGINT is its fast shutdown (clients are cut off, the data is safe)
    if [ -n "$pg_pid" ] && kill -INT "$pg_pid" 2>/dev/null && ! wait_gone 10 "$pg_pid"; then
        echo "run: Postgres (pid $pg_pid) did not stop in 10s: killed" >&2
        kill -KILL "$pg_pid" 2>/dev/null
    fi
    rm -f .run/run.pid .run/children
    echo "run: stopped"
}
trap stop_all EXIT
trap 'stop_all; exit 0' INT TERM # Ctrl-C is the normal way to stop: no tails of logs
# fail MESSAGE LOG: says what went wrong and the end of the log that tells why; stops the run.
fail() {
    echo "run: $1; the end of $2:" >&2
    tail -n 15 "$2" >&2
    exit 1
}

# Postgres and Redis: the ones the environment or the configuration names, else local ones
# with their data in the run's folder.
PG_PORT=${MCE_RUN_PG_PORT:-55432}
REDIS_PORT=${MCE_RUN_REDIS_PORT:-56379}
LEDGER_PORT=${MCE_RUN_LEDGER_PORT:-58899}
local_pg=false
local_ledger=false
! { [ -z "${MCE_POSTGRES_URL:-}" ] && ! config_sets "$config_file" postgres url; } || local_pg=true
! { [ -z "${MCE_SETTLER_RPC_URL:-}" ] && ! config_sets "$config_file" settler rpc_url; } || local_ledger=true

# The local ledger keeps its chain in the run's folder ($run/data/ledger.jsonl), beside the
# database and journals that refer to it. Data made before it did (a database the fresh
# chain would not know) is moved aside, never mixed with a new chain.
if $local_ledger && $local_pg && [ -d "$run/data/postgres" ] && [ ! -s "$run/data/ledger.jsonl" ]; then
    aside="$run/data.before-$(date +%Y%m%d-%H%M%S)"
    bash tools/pg.sh stop "$PWD/$run/data" >/dev/null 2>&1 9>&- || true
    mv "$run/data" "$aside"
    mkdir -p "$run/data"
    echo "run: the data in $run/data was made by a run whose ledger kept no state: moved to $aside;" \
        "this run starts empty (its database, journals and chain together)"
fi

# The local Solana ledger (tools/ledger: real SPL Token programs in litesvm), unless a
# cluster is configured (MCE_SETTLER_RPC_URL or settler.rpc_url), with funded users
# (user1..userN, four unless --users or --demo say otherwise) whose wallets can sign up; the
# same wallets every run. Their keypair files (Solana CLI format) are in $run/keys: signing
# up proves a wallet with its key. It starts while Postgres and Redis do.
if $local_ledger; then
    echo "run: starting the local Solana ledger on 127.0.0.1:$LEDGER_PORT with ${users:-4} funded users (tools/ledger) ..."
    : >"$run/ledger.ready"
    node tools/ledger/ledger.js --port "$LEDGER_PORT" --users "${users:-4}" \
        --setup-out "$PWD/$run/ledger.json" --keys-dir "$PWD/$run/keys" \
        --state "$PWD/$run/data/ledger.jsonl" --watch-pid $$ \
        >"$run/ledger.ready" 2>>"$run/logs/ledger.log" 9>&- &
    ledger_pid=$!
    echo "$ledger_pid tools/ledger/ledger.js" >>.run/children
fi

if $local_pg; then
    echo "run: starting a local Postgres on 127.0.0.1:$PG_PORT ($run/data/postgres) ..."
    MCE_POSTGRES_URL=$(bash tools/pg.sh start "$PWD/$run/data" "$PG_PORT" 2>>"$run/logs/postgres.log" 9>&-) ||
        fail "Postgres did not start" "$run/logs/postgres.log"
    pg_pid=$(head -n 1 "$run/data/postgres/postmaster.pid")
    export MCE_POSTGRES_URL
fi
if [ -z "${MCE_REDIS_URL:-}" ] && ! config_sets "$config_file" redis url; then
    echo "run: starting a local Redis on 127.0.0.1:$REDIS_PORT ($run/data/redis) ..."
    mkdir -p "$run/data/redis"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$PWD/$run/data/redis" \
        --save "" --logfile "$PWD/$run/logs/redis.log" 9>&- >/dev/null 2>&1 &
    redis_pid=$!
    echo "$redis_pid redis-server" >>.run/children
    until redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; do
        kill -0 "$redis_pid" 2>/dev/null || fail "Redis did not start (is port $REDIS_PORT taken?)" "$run/logs/redis.log"
        sleep 0.05
    done
    export MCE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
fi
# The gateway's token key: made once for local runs, kept private in .run/.
if [ -z "${MCE_GATEWAY_JWT_SECRET:-}" ] && ! config_sets "$config_file" gateway jwt_secret; then
    if [ ! -s .run/jwt_secret ]; then
        (umask 077; head -c 48 /dev/urandom | base64 | tr -d '\n/+=' > .run/jwt_secret)
    fi
    MCE_GATEWAY_JWT_SECRET=$(cat .run/jwt_secret)
    export MCE_GATEWAY_JWT_SECRET
fi

if $local_ledger; then
    until grep -q "listening" "$run/ledger.ready" 2>/dev/null; do
        kill -0 "$ledger_pid" 2>/dev/null || fail "the local ledger did not start (is port $LEDGER_PORT taken?)" "$run/logs/ledger.log"
        sleep 0.05
    done
    export MCE_SETTLER_RPC_URL="http://127.0.0.1:$LEDGER_PORT"
    export MCE_SETTLER_KEYS_FILE="$PWD/$run/ledger.json"
fi
keys1=$run/keys/user-user1.json keys2=$run/keys/user-user2.json
$local_ledger || keys1="<your keypair file>" keys2="<another keypair file>"
mcectl="build/bin/mcectl ${config_args[*]:+${config_args[*]} }"

# Every link between the processes is CurveZMQ: each process's key pair, and the monitor key
# `mcectl tail` uses, in security.keys_dir (./.run/curve-keys unless configured). Made once;
# kept keys are left as they are.
build/bin/mcectl "${config_args[@]}" keys init >/dev/null 9>&-

# The matcher first: everything else connects to it (ZeroMQ reconnects, so order is a courtesy).
for exe in mce-matcher mce-settler mce-persister mce-broadcaster mce-gateway; do
    build/bin/$exe "${config_args[@]}" >>"$run/logs/$exe.log" 2>&1 9>&- &
    pids+=($!)
    names+=("$exe")
    echo "$! build/bin/$exe" >>.run/children
done

# For mcectl in another shell (see `mcectl --help`): what the processes were given.
(
    umask 077
    {
        echo "# Written by tools/run.sh (pid $$) for mcectl while it runs; removed when it stops."
        echo "MCE_RUN_PID=$$"
        echo "MCE_RUN_CONFIG=$config_file"
        env | grep '^MCE_' | grep -v '^MCE_RUN_'
    } >.run/local.env.tmp && mv .run/local.env.tmp .run/local.env
)

settings=$(build/bin/mce-gateway "${config_args[@]}" --check-config 2>&1)
port=$(sed -n 's/.*gateway.http_port = \([0-9]*\).*/\1/p' <<<"$settings")
addr=$(sed -n 's/.*gateway.http_address = "\(.*\)".*/\1/p' <<<"$settings")
api="http://$addr:$port"

# dead_process: the name of the first process (or the ledger, or Redis) that stopped, and
# its log; empty when all live.
dead_process() {
    local i
    for i in "${!pids[@]}"; do
        kill -0 "${pids[$i]}" 2>/dev/null || { echo "${names[$i]} $run/logs/${names[$i]}.log"; return; }
    done
    [ -z "$ledger_pid" ] || kill -0 "$ledger_pid" 2>/dev/null || { echo "ledger $run/logs/ledger.log"; return; }
    [ -z "$redis_pid" ] || kill -0 "$redis_pid" 2>/dev/null || { echo "redis $run/logs/redis.log"; return; }
}

# "up" only once every process says so (`mcectl health`: the gateway with its matcher,
# Postgres and Redis, then each process's metrics); else what is not, and why.
echo "run: waiting for every process to report healthy ..."
health_deadline=$((SECONDS + ${MCE_RUN_HEALTH_SECONDS:-30}))
healthy=true
until build/bin/mcectl "${config_args[@]}" health >.run/health.txt 2>&1 9>&-; do
    dead=$(dead_process)
    [ -z "$dead" ] || fail "${dead%% *} stopped while starting" "${dead#* }"
    if [ $SECONDS -ge $health_deadline ]; then
        echo "run: not every process is healthy after ${MCE_RUN_HEALTH_SECONDS:-30}s (mcectl health):" >&2
        cat .run/health.txt >&2
        down=$(awk '$2 != "up" { print $1; exit }' .run/health.txt)
        if [ -n "$down" ] && [ -f "$run/logs/mce-$down.log" ]; then
            echo "run: the end of $run/logs/mce-$down.log:" >&2
            tail -n 15 "$run/logs/mce-$down.log" >&2
        fi
        echo "run: mce keeps running as it is (Ctrl-C stops it); the dashboard at $api/" >&2
        healthy=false
        break
    fi
    sleep 0.1
done
! $healthy ||
    echo "run: mce is up — the dashboard at $api/ and the API at $api (the API's description: $api/api/openapi.json)"
echo "run: try it in another shell: alice buys, bob sells. Each signs up with a wallet the local"
echo "     ledger funded (its keypair signs the gateway's challenge; the dashboard does this with"
echo "     a browser wallet), deposits into the platform's vaults (orders must be covered), and"
echo "     trades; then the trade and its settlement on the chain:"
echo "       cd $PWD"
echo "       echo 'alice password' | ${mcectl}register alice --keypair $keys1"
echo "       echo 'bob password' | ${mcectl}register bob --keypair $keys2"
echo "       ${mcectl}--as alice deposit --asset payment --amount 10 --wait   # credited once the chain confirms"
echo "       ${mcectl}--as bob deposit --asset energy --amount 20 --wait"
echo "       ${mcectl}--as bob order place --side sell --qty 12.5 --price 0.15"
echo "       ${mcectl}--as alice order place --side buy --qty 12.5 --price 0.15"
echo "       ${mcectl}--as alice balances"
echo "       ${mcectl}--as alice trades --mine   # the trade, its settlement and its transaction"
echo "     mcectl finds this run by itself (.run/local.env: its databases, ledger and token key)."
echo "     Over HTTP, with a token: TOKEN=\$(echo 'alice password' | ${mcectl}login alice)"
echo "       curl -s -XPOST $api/api/trading/orders -H \"Authorization: Bearer \$TOKEN\" \\"
echo "         -d '{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"1\",\"price\":\"0.15\"}'"
echo "run: an administrator: echo 'a long password' | ${mcectl}user add root --wallet <key> --admin"
echo "run: logs in $run/logs/, data in $run/data/ (kept for the next run); Ctrl-C stops everything"

# The demo, beside the system: its lines and table go to this terminal.
if $demo; then
    echo "run: the demo: a campus day, one ${epoch_seconds}-second epoch per simulated hour (build/bin/mce-demo; the dashboard shows it live)"
    build/bin/mce-demo "${config_args[@]}" --wallets "$PWD/$run/ledger.json" "${demo_args[@]}" 9>&- &
    demo_pid=$!
fi

# Wait until one of them stops by itself (or Ctrl-C); the demo ending is not a reason to stop.
set +e
watched=("${pids[@]}" $ledger_pid $redis_pid)
while true; do
    done_pid=
    wait -n -p done_pid "${watched[@]}" ${demo_pid:+"$demo_pid"}
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
dead=$(dead_process)
[ -z "$dead" ] || fail "${dead%% *} stopped by itself, so everything stops" "${dead#* }"
exit 1
