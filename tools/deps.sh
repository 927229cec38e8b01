#!/usr/bin/env bash
# Installs the Debian packages mce needs to build, test and run.
# Idempotent and quiet: when everything is present it prints nothing and exits 0.
# Used by tools/run.sh, tools/test.sh and .ci/run, so there is one list to keep.
set -euo pipefail

PACKAGES=(
    # toolchain
    build-essential cmake ninja-build pkg-config clang clang-format libclang-rt-14-dev
    # libraries (Debian's packages only)
    libzmq3-dev libczmq-dev libmsgpack-dev libpq-dev libhiredis-dev
    libcurl4-openssl-dev libconfig-dev libcriterion-dev libmicrohttpd-dev
    libwebsockets-dev libjansson-dev libsodium-dev libjwt-dev
    # servers and clients used by the local run and the tests
    postgresql redis-server curl python3-yaml
    # the dashboard's browser test (tests/browser: Playwright drives Debian's Chromium)
    chromium
)

# One dpkg-query for them all (one per package took most of a warm tools/run.sh's second).
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null |
    awk '$NF == "installed" && $(NF - 1) == "ok" { print $1 }' || true)
missing=()
for p in "${PACKAGES[@]}"; do
    grep -qx -- "$p" <<<"$installed" || missing+=("$p")
done
# Node.js (the local Solana ledger, the browser test) may come from Debian or from
# nodesource; Debian's npm package conflicts with the latter, so check for the commands.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi

# The npm packages of a folder (relative to the repository), installed only when its
# node_modules lacks the package named or its lock file changed: npm_in DIR PACKAGE COMMAND.
npm_in() {
    local dir stamp want
    dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/$1"
    [ -f "$dir/package-lock.json" ] || return 0
    stamp="$dir/node_modules/.mce-lock.sha256"
    want="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$dir/node_modules/$2" ]; then
        return 0
    fi
    echo "deps: npm $3 in $1" >&2
    (cd "$dir" && npm "$3" --no-audit --no-fund --loglevel=error >&2)
    echo "$want" >"$stamp"
}

# The local ledger's (tools/ledger: litesvm and @solana/kit, Node >= 20): `npm install` with
# the lock file, not `npm ci` (the lock lacks other platforms' optional binary packages).
# The browser test's (tests/browser: playwright-core, plain JavaScript, so the lock file is
# complete and `npm ci` installs exactly it).
node_packages() {
    npm_in tools/ledger litesvm install
    npm_in tests/browser playwright-core ci
}

[ ${#missing[@]} -eq 0 ] && { node_packages; exit 0; }

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
node_packages
echo "deps: done" >&2
