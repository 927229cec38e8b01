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

mkdir -p .run/logs
pids=()
names=()
stop_all() {
    trap - INT TERM EXIT
    echo
    echo "run: stopping ..."
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    echo "run: stopped"
}
trap stop_all INT TERM EXIT

# The matcher first: everything else connects to it (ZeroMQ reconnects, so order is a courtesy).
for exe in mce-matcher mce-settler mce-persister mce-broadcaster mce-gateway; do
    build/bin/$exe "${config_args[@]}" >>".run/logs/$exe.log" 2>&1 &
    pids+=($!)
    names+=("$exe")
done

port=$(build/bin/mce-gateway "${config_args[@]}" --check-config 2>&1 | sed -n 's/.*gateway.http_port = \([0-9]*\).*/\1/p')
addr=$(build/bin/mce-gateway "${config_args[@]}" --check-config 2>&1 | sed -n 's/.*gateway.http_address = "\(.*\)".*/\1/p')
echo "run: mce is up — API at http://$addr:$port (try: curl -s http://$addr:$port/api/health)"
echo "run: place an order:"
echo "       curl -s -XPOST http://$addr:$port/api/trading/orders -d '{\"market\":\"campus-1\",\"side\":\"Buy\",\"energy_amount\":\"12.5\",\"price\":\"0.15\"}'"
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
