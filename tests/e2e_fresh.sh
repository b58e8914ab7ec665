#!/usr/bin/env bash
# e2e_fresh.sh — `make demo` as on a fresh machine, in one make invocation.
# On a new Debian machine pkg-config knows none of the packages until
# `make deps` has installed the -dev packages, i.e. after the Makefile was
# read. This test gives make a pkg-config that answers nothing until the
# deps step has run (a stamp its wrapper writes) and checks that `make demo`
# builds from an empty build folder and prints the ranked models.
# (The old Makefile evaluated pkg-config when read: no -I flags, hdf5.h
# not found.) Also: that a plain `make` with no package flags stops with the
# fix in the message rather than with a compiler error.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

REAL_PKG_CONFIG=$(command -v pkg-config) || fail "no pkg-config (make deps installs it)"
mkdir -p "$T/bin"
cat > "$T/bin/pkg-config" <<EOF
#!/bin/sh
# answers nothing until deps ran
[ -e "$T/deps-ran" ] || exit 1
exec "$REAL_PKG_CONFIG" "\$@"
EOF
cat > "$T/deps.sh" <<EOF
#!/bin/sh
sh "$ROOT/scripts/deps.sh" && touch "$T/deps-ran"
EOF
chmod +x "$T/bin/pkg-config" "$T/deps.sh"
# First on PATH, so that any pkg-config call make makes goes through it.
export PATH="$T/bin:$PATH"

cd "$ROOT"
# 1. Without deps: a clear message naming the fix, not a compiler error.
if make -s BUILD="$T/nodeps" all >"$T/nodeps.log" 2>&1; then
    fail "make all built without package flags"
fi
grep -q 'run `make deps`' "$T/nodeps.log" || { cat "$T/nodeps.log"; fail "no 'run make deps' in the message"; }

# 2. make demo in one go: deps, then the build, then the scan.
if ! make BUILD="$T/build" DEPS_SCRIPT="$T/deps.sh" \
        DEMO_OUT="$T/demo" demo >"$T/demo.log" 2>&1; then
    tail -30 "$T/demo.log"; fail "make demo"
fi
[ -x "$T/build/nnlo-c" ] || fail "no $T/build/nnlo-c"
grep -q 'hdf5' "$T/demo.log" || fail "the build log has no hdf5 include flags"
[ -s "$T/demo/results.csv" ] || fail "the demo wrote no results.csv"
ok=$(grep -c '^[0-9]*,done,' "$T/demo/results.csv" || true)
[ "$ok" -ge 1 ] || { cat "$T/demo/results.csv"; fail "no finished trial in the demo"; }
grep -q '^rank *trial' "$T/demo.log" || { tail -20 "$T/demo.log"; fail "the demo printed no ranking"; }
echo "e2e_fresh: ok (make demo from an empty build with pkg-config answering only after deps; $ok trials ranked)"
