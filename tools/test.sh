#!/usr/bin/env bash
# Runs every test of mce, as CI does:
#   1. the Release build (build/) and its ctest: unit, integration, generated-code checks
#   2. the AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/) and its ctest
#   3. the local ledger's own test (tools/ledger/test.js: JSON-RPC, setup, fault knobs)
#   4. clang-format check of every C file
#   5. a short run of every libFuzzer target (build-fuzz/) — MCE_FUZZ_RUNS executions each
# Ends with one line "tests: N passed, N failed". Exit status 0 only if everything passed.
# MCE_TEST_SKIP=asan,fuzz skips steps while iterating; CI runs everything.
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh || exit 1
jobs=$(nproc)
skip=",${MCE_TEST_SKIP:-},"
fuzz_runs=${MCE_FUZZ_RUNS:-20000}
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step() { printf '\n=== %s\n' "$*"; }

# Runs ctest in a build folder and adds its counts.
run_ctest() {
    local dir=$1
    (cd "$dir" && ctest --output-on-failure -j2 --timeout 900) 2>&1 | tee "$log"
    local line
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
    if [ -z "$line" ]; then
        failed=$((failed + 1))
        return
    fi
    local nfail total
    nfail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    passed=$((passed + total - nfail))
    failed=$((failed + nfail))
}

build() {
    local dir=$1
    shift
    cmake -S . -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j"$jobs" 2>&1 | grep -E 'error|warning' 
    [ "${PIPESTATUS[0]}" -eq 0 ] || cmake --build "$dir" -j"$jobs" >/dev/null
}

step "Release build (build/)"
if build build -DCMAKE_BUILD_TYPE=Release; then
    run_ctest build
else
    echo "Release build failed"; failed=$((failed + 1))
fi

if [[ $skip != *,asan,* ]]; then
    step "ASan + UBSan build (build-asan/)"
    # Reports go to files, so that none is lost: Criterion counts a test that leaks as passed,
    # and the services the integration tests start write to logs nobody reads on success.
    sanitizer_logs=$(mktemp -d)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:log_path=$sanitizer_logs/asan}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:log_path=$sanitizer_logs/ubsan}
    if build build-asan -DCMAKE_BUILD_TYPE=Debug -DMCE_SANITIZE=ON; then
        run_ctest build-asan
        if compgen -G "$sanitizer_logs/*" >/dev/null; then
            echo "sanitizer reports ($(ls "$sanitizer_logs" | wc -l) files):"
            head -n 40 "$sanitizer_logs"/*
            failed=$((failed + 1))
        else
            echo "no sanitizer reports"
            passed=$((passed + 1))
        fi
        rm -rf "$sanitizer_logs"
        unset ASAN_OPTIONS UBSAN_OPTIONS
    else
        echo "sanitizer build failed"; failed=$((failed + 1))
    fi
fi

step "local ledger (tools/ledger/test.js)"
if node tools/ledger/test.js >"$log" 2>&1; then
    passed=$((passed + 1)); echo "ledger: $(grep -E '^# pass' "$log")"
else
    cat "$log"; failed=$((failed + 1))
fi

step "clang-format check"
if cmake --build build --target format-check >/dev/null 2>"$log"; then
    passed=$((passed + 1)); echo "formatted"
else
    cat "$log"; failed=$((failed + 1)); echo "not formatted: run 'cmake --build build --target format'"
fi

if [[ $skip != *,fuzz,* ]]; then
    step "fuzz targets, $fuzz_runs runs each (build-fuzz/)"
    if CC=clang build build-fuzz -DMCE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
        for f in build-fuzz/bin/fuzz_*; do
            corpus=$(mktemp -d)
            name=$(basename "$f")
            # seeds and a dictionary where a target has them (parsers we do not instrument)
            extra=()
            [ -d "tests/fuzz/seeds/$name" ] && cp "tests/fuzz/seeds/$name"/* "$corpus"/
            [ -f "tests/fuzz/$name.dict" ] && extra+=(-dict="tests/fuzz/$name.dict")
            if LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp \
                "$f" -runs="$fuzz_runs" -max_len=4096 "${extra[@]}" "$corpus" >"$log" 2>&1; then
                passed=$((passed + 1)); echo "ok   $(basename "$f")"
            else
                failed=$((failed + 1)); echo "FAIL $(basename "$f")"; tail -40 "$log"
            fi
            rm -rf "$corpus"
        done
    else
        echo "fuzz build failed"; failed=$((failed + 1))
    fi
fi

echo
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
