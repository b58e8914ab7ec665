#!/usr/bin/env bash
# blas_matrix.sh — the float-heavy unit suites again under other OpenBLAS
# kernels and thread counts, so that a test which demands bit equality
# between two computations whose summation order depends on the kernel
# fails here, not on a user's CPU (tests/testutil.h states the rule).
# Kernels: every OPENBLAS_CORETYPE this CPU can run among Prescott (SSE3,
# any x86-64), Haswell and Zen (AVX2) and SkylakeX (AVX-512); 1 and 2
# threads each. About 6 s a combination. Elsewhere than x86-64 the
# default kernel is run at 1 and 2 threads.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/build/check_all}
SUITES="nn layers compress quant prune_data prune_sparse io keras shrink checkpoint worker master fpga"

kernels=""
if [ "$(uname -m)" = x86_64 ]; then
    flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
    has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
    kernels="Prescott"
    has avx2 fma && kernels="$kernels Haswell Zen"
    has avx512f avx512bw avx512dq avx512vl && kernels="$kernels SkylakeX"
fi

runs=0 failed=0
for k in ${kernels:-default}; do
    for t in 1 2; do
        for s in $SUITES; do
            env_k=()
            [ "$k" != default ] && env_k=(OPENBLAS_CORETYPE="$k")
            if ! out=$(env "${env_k[@]}" OPENBLAS_NUM_THREADS=$t CK_RUN_SUITE=$s CK_DEFAULT_TIMEOUT=120 "$BIN" 2>&1); then
                echo "$out" | grep -E ':[FE]:' >&2 || echo "$out" | tail -5 >&2
                echo "blas_matrix: suite $s failed with OPENBLAS_CORETYPE=$k OPENBLAS_NUM_THREADS=$t" >&2
                failed=$((failed + 1))
            fi
            runs=$((runs + 1))
        done
    done
done
echo "blas_matrix: kernels ${kernels:-default} x threads 1 2: $((runs - failed)) suite runs passed, $failed failed"
[ "$failed" -eq 0 ]
