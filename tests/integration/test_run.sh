#!/usr/bin/env bash
# test_run — tools/run.sh as a new user meets it, on a copy of this checkout (its tracked files,
# the npm packages linked from here), with the real build, Postgres, Redis, local ledger and
# the five processes:
#
#   1. the first run builds and says "up" only once every process reports healthy;
#   2. a second run from the same checkout stops at once, naming the first one's pid;
#   3. the commands it prints, run exactly as printed in another shell (mcectl finds the run by
#      itself), sign two users up, deposit, trade, and the trade's settlement is confirmed;
#   4. Ctrl-C (SIGTERM here) stops every server it started, by pid;
#   5. a second run rebuilds nothing, keeps the chain with the data (the settled trade's
#      transaction is known to the restarted ledger) and is up again;
#   6. a ledger that cannot start (its port held) ends the run with the ledger's log, and
#      leaves no Postgres or Redis behind.
#
#   bash tests/integration/test_run.sh SOURCE-DIR
#
# Uses the default ports (gateway 8080, ...) and MCE_RUN_*_PORT's defaults plus 1000, so it
# cannot meet a local run's databases; a run already listening on 8080 makes it fail.
set -euo pipefail
src=$(realpath "${1:?usage: test_run.sh SOURCE-DIR}")
tmp=$(mktemp -d /tmp/mce-test-run.XXXXXX)
chmod 755 "$tmp" # as root, the local Postgres runs as the postgres user, which must get in
copy=$tmp/mce
export MCE_RUN_PG_PORT=56432 MCE_RUN_REDIS_PORT=57379 MCE_RUN_LEDGER_PORT=59899
run_pid=
holder= # the process holding the ledger's port in step 6

fail() {
    echo "test_run: FAILED: $*" >&2
    for f in "$tmp"/run*.out; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }; done
    exit 1
}
cleanup() {
    [ -z "$holder" ] || kill "$holder" 2>/dev/null || true
    [ -z "$run_pid" ] || kill -TERM "$run_pid" 2>/dev/null || true
    [ -z "$run_pid" ] || wait "$run_pid" 2>/dev/null || true
    [ -n "${MCE_KEEP_TEST_DIR:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

# until SECONDS WHAT COMMAND...: polls COMMAND every 0.1 s until it succeeds, or fails the test.
until_ok() {
    local seconds=$1 what=$2
    local deadline=$((SECONDS + seconds))
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || fail "$what: not within $seconds s"
        [ -z "$run_pid" ] || lives "$run_pid" || fail "$what: tools/run.sh stopped"
        sleep 0.1
    done
}
# lives PID: the process runs (a zombie does not).
lives() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}
# start_run N: tools/run.sh in the background, its output in run-N.out; waits for "up".
start_run() {
    (cd "$copy" && exec bash tools/run.sh) >"$tmp/run-$1.out" 2>&1 &
    run_pid=$!
    until_ok 600 "run $1 says up" grep -q "run: mce is up" "$tmp/run-$1.out"
}
# stop_run: SIGTERM, as Ctrl-C; every server it listed in .run/children is gone after.
stop_run() {
    local servers pg pid
    servers=$(cut -d' ' -f1 "$copy/.run/children")
    pg=$(head -n 1 "$copy/.run/data/postgres/postmaster.pid")
    kill -TERM "$run_pid"
    local deadline=$((SECONDS + 30))
    while lives "$run_pid"; do
        [ $SECONDS -lt $deadline ] || fail "run.sh did not stop within 30 s"
        sleep 0.1
    done
    wait "$run_pid" 2>/dev/null || true
    run_pid=
    for pid in $servers $pg; do
        ! lives "$pid" || fail "pid $pid ($(tr '\0' ' ' </proc/$pid/cmdline)) still runs after the run stopped"
    done
    [ ! -e "$copy/.run/local.env" ] || fail ".run/local.env outlived the run"
}

# The copy: what git tracks here (with uncommitted changes), the npm packages linked.
mkdir -p "$copy" && (cd "$src" && git ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$copy"
for d in tools/ledger tests/browser; do ln -s "$src/$d/node_modules" "$copy/$d/node_modules"; done

# 1. first run
start_run 1
echo "test_run: first run up"

# 2. a second run
if (cd "$copy" && bash tools/run.sh) >"$tmp/run-second.out" 2>&1; then fail "a second run started"; fi
grep -q "another tools/run.sh is running from this checkout (pid $run_pid)" "$tmp/run-second.out" ||
    fail "the second run said: $(cat "$tmp/run-second.out")"
echo "test_run: a second run refused: $(head -c 120 "$tmp/run-second.out")"

# 3. the printed commands, as printed, from the folder the run names
commands=$(sed -n '/^       cd /,/^     mcectl finds/p' "$tmp/run-1.out" | sed '$d' | sed 's/^ *//; s/ *#.*$//')
[ "$(grep -c mcectl <<<"$commands")" -ge 8 ] || fail "the run printed no commands to try: $commands"
env -u MCE_RUN_PG_PORT -u MCE_RUN_REDIS_PORT -u MCE_RUN_LEDGER_PORT bash -e -c "$commands" \
    >"$tmp/commands.out" 2>&1 || fail "the printed commands failed: $(cat "$tmp/commands.out")"
cd "$copy"
until_ok 60 "the trade's settlement confirmed" bash -c \
    "build/bin/mcectl --as alice trades --mine | grep -q ' confirmed '"
signature=$(build/bin/mcectl --as alice --json trades --mine | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["trades"][0]["signature"])')
echo "test_run: the printed commands traded; settled in $signature"

# 4. stop
stop_run
echo "test_run: stopped, every server gone"

# 5. the second run: nothing rebuilt, the chain kept with the data
start_run 2
grep -q "no work to do" "$copy/.run/build.log" || fail "the second run built: $(tail -n 5 "$copy/.run/build.log")"
build/bin/mcectl --as alice trades --mine | grep -q " confirmed " || fail "the trade is gone after a restart"
status=$(curl -s -X POST "http://127.0.0.1:$MCE_RUN_LEDGER_PORT" -H 'Content-Type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getSignatureStatuses\",\"params\":[[\"$signature\"],{\"searchTransactionHistory\":true}]}")
grep -q '"confirmationStatus":"\(confirmed\|finalized\)"' <<<"$status" ||
    fail "the restarted ledger does not know the settlement's transaction: $status"
stop_run
echo "test_run: restarted without building, the chain kept"

# 6. the ledger's port held: the run ends, with its log, and leaves nothing running
python3 -c 'import signal, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); signal.pause()' "$MCE_RUN_LEDGER_PORT" &
holder=$!
until_ok 10 "the port held" bash -c "exec 3<>/dev/tcp/127.0.0.1/$MCE_RUN_LEDGER_PORT"
if (cd "$copy" && bash tools/run.sh) >"$tmp/run-3.out" 2>&1; then fail "a run without its ledger went on"; fi
kill "$holder"; holder=
grep -q "the local ledger did not start" "$tmp/run-3.out" || fail "the run said: $(tail -n 5 "$tmp/run-3.out")"
grep -q "EADDRINUSE" "$tmp/run-3.out" || fail "the run did not show the ledger's log"
[ ! -e "$copy/.run/data/postgres/postmaster.pid" ] || fail "Postgres still runs after the failed start"
! redis-cli -p "$MCE_RUN_REDIS_PORT" ping >/dev/null 2>&1 || fail "Redis still runs after the failed start"
echo "test_run: PASSED"
