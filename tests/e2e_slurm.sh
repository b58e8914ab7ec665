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
echo "== scancel --signal=USR1 drains the job, --resume finishes it"
sed -i 's/epochs: 3/epochs: 300/' scan.yaml
srun --mpi=pmix -n 3 "$NNLO" scan.yaml --out "$T/drain" --quiet > "$T/d1.out" 2> "$T/d1.err" &
pid=$!
for _ in $(seq 1 300); do
    grep -q '"trial_end"' "$T/drain/journal.jsonl" 2>/dev/null && break
    sleep 0.2
done
job=$(squeue -h -o %i | head -n 1)
[ -n "$job" ] || fail "no running job to signal"
scancel --signal=USR1 "$job"          # what --signal=USR1@300 does at the time limit
for _ in $(seq 1 600); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -0 $pid 2>/dev/null && { scancel "$job"; fail "the drained job did not end within 60 s"; }
wait $pid || { cat "$T/d1.err"; fail "the drained job did not exit 0"; }
grep -q '"scan_drained"' "$T/drain/journal.jsonl" || { cat "$T/d1.err"; fail "no scan_drained event"; }
slurm_srun -n 3 "$NNLO" scan.yaml --out "$T/drain" --resume --quiet > /dev/null 2> "$T/d2.err" ||
    { cat "$T/d2.err"; fail "resume under srun failed"; }
[ "$(grep -c '"trial_end"' "$T/drain/journal.jsonl")" -eq 4 ] || fail "resume did not finish exactly the 4 trials"
echo "== a killed worker ends the step (--kill-on-bad-exit, as in slurm/nnlo-c.sbatch); --resume finishes"
sed 's/epochs: 300/epochs: 6000/' scan.yaml > scan_kill.yaml   # about 9 s a trial
srun --mpi=pmix --kill-on-bad-exit=1 -n 3 "$NNLO" scan_kill.yaml --out "$T/killed" --quiet > "$T/k1.out" 2> "$T/k1.err" &
pid=$!
for _ in $(seq 1 600); do
    grep -q '"trial_end"' "$T/killed/journal.jsonl" 2>/dev/null && break
    sleep 0.2
done
grep -q '"trial_end"' "$T/killed/journal.jsonl" || fail "no trial finished before the kill"
victim=""
for p in $(pgrep -f -- "--out $T/killed"); do   # a worker: PMIx rank 1 or 2
    r=$(tr '\0' '\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^PMIX_RANK=//p')
    [ -n "$r" ] && [ "$r" != 0 ] && { victim=$p; break; }
done
[ -n "$victim" ] || fail "no worker process found"
kill -KILL "$victim"
for _ in $(seq 1 900); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -0 $pid 2>/dev/null && { scancel "$(squeue -h -o %i | head -n 1)"; fail "the step did not end within 90 s of a killed worker"; }
if wait $pid; then fail "a killed worker should fail the step"; fi
done1=$(grep -c '"trial_end"' "$T/killed/journal.jsonl")
[ "$done1" -ge 1 ] || fail "the finished trial was lost"
slurm_srun -n 3 "$NNLO" scan_kill.yaml --out "$T/killed" --resume --quiet > /dev/null 2> "$T/k2.err" ||
    { cat "$T/k2.err"; fail "resume after a killed worker failed"; }
[ "$(grep -c '"trial_end"' "$T/killed/journal.jsonl")" -eq 4 ] || fail "resume did not finish exactly the 4 trials"
echo "PASS e2e_slurm"
