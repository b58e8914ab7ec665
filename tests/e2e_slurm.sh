#!/usr/bin/env bash
# e2e_slurm.sh — a real scan under a one-node Slurm started by this test
# (slurm/cluster.sh via tests/e2e_slurm_lib.sh): `srun --mpi=pmix -n 3
# nnlo-c scan.yaml`, then the same checks as under mpirun; and the PMIx
# check: srun with --mpi=none must stop with the --mpi=pmix message.
source "$(dirname "$0")/e2e_common.sh"
source "$(dirname "$0")/e2e_slurm_lib.sh"
T=$(mktemp -d)
slurm_up || { rc=$?; [ $rc -eq 77 ] && { echo "SKIP e2e_slurm"; exit 0; }; fail "could not start Slurm"; }
trap 'slurm_down; rm -rf "$T"' EXIT
e2e_setup "$T"
cd "$T"

echo "== srun --mpi=pmix -n 3"
slurm_srun -n 3 "$NNLO" scan.yaml --out "$T/slurm" --quiet > "$T/srun.out" 2> "$T/srun.err" ||
    { cat "$T/srun.err"; fail "srun scan failed"; }
grep -q "rank" "$T/srun.out" || { cat "$T/srun.out"; fail "no ranking printed"; }
e2e_verify "$T/slurm"

echo "== srun without PMIx is refused with a clear message"
if timeout 120 srun --mpi=none -n 2 "$NNLO" scan.yaml --out "$T/nopmix" > "$T/nopmix.out" 2> "$T/nopmix.err"; then
    fail "srun --mpi=none should fail"
fi
grep -q -- "--mpi=pmix" "$T/nopmix.err" || { cat "$T/nopmix.err"; fail "no --mpi=pmix hint"; }
echo "PASS e2e_slurm"
