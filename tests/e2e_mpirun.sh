#!/usr/bin/env bash
# e2e_mpirun.sh — a real scan under `mpirun -n 3` (1 master, 2 workers) on
# a small jets set; then a drain by SIGUSR1 and --resume, checked against
# the uninterrupted scan: interrupted trials continue from their epoch
# checkpoints (trials/<id>/checkpoint.bin), and results.csv and every
# history.csv equal the uninterrupted scan's (timings aside). Also the
# one-process (in-process transport) path.
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
# signal once trial 2 or 3 (dispatched after a first trial ended) has
# written its first checkpoint: it is early in its 300 epochs, so the drain
# certainly catches it in flight
for _ in $(seq 1 1200); do
    [ -e "$T/resume/trials/2/checkpoint.bin" ] || [ -e "$T/resume/trials/3/checkpoint.bin" ] && break
    sleep 0.05
done
grep -q '"trial_end"' "$T/resume/journal.jsonl" || fail "no trial had finished before the drain"
kill -USR1 $pid   # as Slurm's --signal=USR1@300 would
for _ in $(seq 1 600); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -0 $pid 2>/dev/null && { kill -KILL $pid; fail "the drained scan did not exit within 60 s"; }
wait $pid || { cat "$T/r1.err"; fail "drained scan did not exit 0"; }
grep -q '"scan_drained"' "$T/resume/journal.jsonl" || { cat "$T/r1.err"; fail "no scan_drained event"; }
done1=$(grep -c '"trial_end"' "$T/resume/journal.jsonl")
echo "drained with $done1 finished trials"
ls "$T"/resume/trials/*/checkpoint.bin > "$T/ckpts.txt" 2>/dev/null ||
    fail "no trial left a checkpoint when drained"
echo "checkpoints left by the drain: $(wc -l < "$T/ckpts.txt")"
timeout 900 mpirun -n 3 "$NNLO" scan.yaml --out "$T/resume" --resume --quiet > "$T/r2.out" 2> "$T/r2.err" ||
    { cat "$T/r2.err"; fail "resume failed"; }
[ "$(grep -c '"trial_end"' "$T/resume/journal.jsonl")" -eq 4 ] || fail "resume did not finish exactly the 4 trials"
# every checkpointed trial continued from it (its log says after which
# epoch), none restarted from epoch 0, and no checkpoint is left over
while read -r ck; do
    d=$(dirname "$ck")
    grep -q "resuming from its checkpoint after epoch" "$d/log" ||
        { cat "$d/log"; fail "$d did not resume from its checkpoint"; }
    grep -h "resuming from its checkpoint" "$d/log"
    [ ! -e "$ck" ] || fail "$ck left after the trial finished"
done < "$T/ckpts.txt"
timeout 900 mpirun -n 3 "$NNLO" scan.yaml --out "$T/straight" --quiet > /dev/null 2>&1 || fail "reference scan failed"
# results.csv without the wall-time columns
nontime() {
    awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i!="train_seconds" && $i!="train_samples_per_s") k[i]=1}
             {s=""; for(i=1;i<=NF;i++) if(k[i]) s=s (s==""?"":",") $i; print s}' "$1"
}
nontime "$T/resume/results.csv" > "$T/a.csv"
nontime "$T/straight/results.csv" > "$T/b.csv"
[ "$(head -1 "$T/a.csv" | tr ',' '\n' | wc -l)" -gt 20 ] || fail "results.csv has too few columns: $(head -1 "$T/a.csv")"
diff "$T/a.csv" "$T/b.csv" || fail "resumed scan differs from the uninterrupted one"
for id in 0 1 2 3; do   # per-epoch history, without the seconds column
    diff <(sed "s/,[^,]*$//" "$T/resume/trials/$id/history.csv") <(sed "s/,[^,]*$//" "$T/straight/trials/$id/history.csv") ||
        fail "trial $id: history.csv of the resumed scan differs"
    cmp "$T/resume/trials/$id/layers.csv" "$T/straight/trials/$id/layers.csv" ||
        fail "trial $id: layers.csv of the resumed scan differs"
done
echo "== SIGTERM drains a one-process scan mid-trial; --resume continues from the checkpoint"
"$NNLO" scan.yaml --out "$T/term" --quiet > /dev/null 2> "$T/t1.err" &
pid=$!
for _ in $(seq 1 300); do
    [ -s "$T/term/trials/0/checkpoint.bin" ] && break
    sleep 0.05
done
kill -TERM $pid
wait $pid || { cat "$T/t1.err"; fail "the SIGTERM-drained scan did not exit 0"; }
ls "$T"/term/trials/*/checkpoint.bin > "$T/ckpts2.txt" 2>/dev/null || fail "SIGTERM left no checkpoint"
timeout 900 "$NNLO" scan.yaml --out "$T/term" --resume --quiet > /dev/null 2> "$T/t2.err" ||
    { cat "$T/t2.err"; fail "one-process resume failed"; }
while read -r ck; do
    grep -h "resuming from its checkpoint after epoch" "$(dirname "$ck")/log" ||
        fail "$(dirname "$ck") did not resume from its checkpoint"
done < "$T/ckpts2.txt"
nontime "$T/term/results.csv" > "$T/c.csv"
diff "$T/c.csv" "$T/b.csv" || fail "the SIGTERM-drained, resumed scan differs from the uninterrupted one"
echo "== search.pruner: median; trials far below the completed one stop early and are not ranked"
cat > prune.yaml <<'YAML'
name: pruned
seed: 3
data: {train: jets.h5, validation_split: 0.25}
model: {layers: [{type: dense, units: 16}, {type: relu}, {type: dense}]}
training_parameters: {epochs: 40, batch_size: 128, learning_rate: {choice: [1.0e-2, 1.0e-7, 1.0e-7]}}
search: {algorithm: grid, pruner: {type: median, n_startup_trials: 1}}
YAML
timeout 600 mpirun -n 2 "$NNLO" prune.yaml --out "$T/prune" --quiet > "$T/p.out" 2> "$T/p.err" ||
    { cat "$T/p.err"; fail "pruned scan failed"; }
grep -q "1 trials done, 2 pruned early" "$T/p.out" || { cat "$T/p.out"; fail "summary does not count 2 pruned trials"; }
[ "$(grep -c ',pruned,' "$T/prune/results.csv")" -eq 2 ] || fail "results.csv lacks 2 pruned rows"
[ "$(grep -c '"status": "pruned"' "$T/prune/journal.jsonl")" -eq 2 ] || fail "journal lacks 2 pruned trial_end events"
# the verdict on epoch 0 (0.27 < median 0.62) takes effect at epoch 0,
# whatever the transport: exactly one epoch, under mpirun and in one process
"$NNLO" prune.yaml --out "$T/prune1" --quiet > /dev/null 2> "$T/p1.err" || { cat "$T/p1.err"; fail "one-process pruned scan"; }
for d in prune prune1; do
    for id in 1 2; do
        n=$(($(wc -l < "$T/$d/trials/$id/history.csv") - 1))
        [ "$n" -eq 1 ] || fail "$d: trial $id ran $n epochs; pruned at epoch 0 it must stop after 1"
        [ -s "$T/$d/trials/$id/model.h5" ] || fail "$d: pruned trial $id has no model.h5"
    done
    [ "$(($(wc -l < "$T/$d/trials/0/history.csv") - 1))" -eq 40 ] || fail "$d: the completed trial did not run 40 epochs"
    [ -d "$T/$d/best/1_0" ] && [ "$(ls "$T/$d/best" | wc -l)" -eq 1 ] || { ls "$T/$d/best"; fail "$d: ranking is not exactly trial 0"; }
done
grep -q "median pruner at epoch 0" "$T/prune/results.csv" || fail "the prune reason is not in results.csv"
echo "== search.trial_timeout: a trial over its time ends at its next epoch, recorded as pruned"
sed -e 's/epochs: 40/epochs: 20000/' -e 's/choice: \[1.0e-2, 1.0e-7, 1.0e-7\]/choice: [1.0e-2]/' \
    -e 's/search: {algorithm: grid, pruner: {type: median, n_startup_trials: 1}}/search: {algorithm: grid, trial_timeout: 1}/' \
    prune.yaml > timeout.yaml
grep -q "trial_timeout: 1" timeout.yaml || fail "timeout.yaml was not made"
timeout 300 mpirun -n 2 "$NNLO" timeout.yaml --out "$T/timeout" --quiet > /dev/null 2> "$T/to.err" ||
    { cat "$T/to.err"; fail "timeout scan failed"; }
grep -q ',pruned,' "$T/timeout/results.csv" || { cat "$T/timeout/results.csv"; fail "the trial was not stopped"; }
grep -q "search.trial_timeout: stopped after" "$T/timeout/results.csv" || fail "no timeout reason in results.csv"
n=$(($(wc -l < "$T/timeout/trials/0/history.csv") - 1))
[ "$n" -lt 20000 ] || fail "the timed-out trial ran all its epochs"
echo "PASS e2e_mpirun"
