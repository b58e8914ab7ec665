#!/usr/bin/env bash
# e2e_mpirun.sh — a real scan under `mpirun -n 3` (1 master, 2 workers) on
# a small jets set; then a drain by SIGTERM and --resume, checked against
# the uninterrupted scan. Also the one-process (in-process transport) path.
source "$(dirname "$0")/e2e_common.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
e2e_setup "$T"
cd "$T"

echo "== mpirun -n 3"
timeout 600 mpirun -n 3 "$NNLO" scan.yaml --out "$T/mpi" --quiet > "$T/mpi.out" 2> "$T/mpi.err" ||
    { cat "$T/mpi.err"; fail "mpirun scan failed"; }
grep -q "rank" "$T/mpi.out" || { cat "$T/mpi.out"; fail "no ranking printed"; }
e2e_verify "$T/mpi"

echo "== one process, in-process transport"
timeout 600 "$NNLO" scan.yaml --out "$T/single" --quiet > "$T/single.out" 2> "$T/single.err" ||
    { cat "$T/single.err"; fail "single-process scan failed"; }
e2e_verify "$T/single"
for id in 0 1 2 3; do
    [ "$(csv_col "$T/mpi/results.csv" val_accuracy $id)" = "$(csv_col "$T/single/results.csv" val_accuracy $id)" ] ||
        fail "trial $id differs between mpirun and one process"
done

echo "== SIGUSR1 drains, --resume finishes, same results"
sed -i 's/epochs: 3/epochs: 300/' scan.yaml   # long enough to be interrupted
mpirun -n 3 "$NNLO" scan.yaml --out "$T/resume" --quiet > "$T/r1.out" 2> "$T/r1.err" &
pid=$!   # mpirun itself: it forwards SIGUSR1 to the ranks
for _ in $(seq 1 300); do
    grep -q '"trial_end"' "$T/resume/journal.jsonl" 2>/dev/null && break
    sleep 0.2
done
kill -USR1 $pid   # as Slurm's --signal=USR1@300 would
for _ in $(seq 1 600); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -0 $pid 2>/dev/null && { kill -KILL $pid; fail "the drained scan did not exit within 60 s"; }
wait $pid || { cat "$T/r1.err"; fail "drained scan did not exit 0"; }
grep -q '"scan_drained"' "$T/resume/journal.jsonl" || { cat "$T/r1.err"; fail "no scan_drained event"; }
done1=$(grep -c '"trial_end"' "$T/resume/journal.jsonl")
echo "drained with $done1 finished trials"
timeout 900 mpirun -n 3 "$NNLO" scan.yaml --out "$T/resume" --resume --quiet > "$T/r2.out" 2> "$T/r2.err" ||
    { cat "$T/r2.err"; fail "resume failed"; }
[ "$(grep -c '"trial_end"' "$T/resume/journal.jsonl")" -eq 4 ] || fail "resume did not finish exactly the 4 trials"
timeout 900 mpirun -n 3 "$NNLO" scan.yaml --out "$T/straight" --quiet > /dev/null 2>&1 || fail "reference scan failed"
cut -d, -f1-8 "$T/resume/results.csv" > "$T/a.csv"   # trial, status, dims, accuracy metrics
cut -d, -f1-8 "$T/straight/results.csv" > "$T/b.csv"
diff "$T/a.csv" "$T/b.csv" || fail "resumed scan differs from the uninterrupted one"
echo "PASS e2e_mpirun"
