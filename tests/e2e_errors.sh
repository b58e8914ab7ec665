#!/usr/bin/env bash
# e2e_errors.sh — bad input gets a clear error and loses no finished work:
# malformed YAML and unknown keys (exit 2, file:line:column, did-you-mean),
# a missing HDF5 dataset (exit 1, names the file and the dataset), a trial
# that diverges (FAILED with its reason while the others finish), an output
# folder that already holds a scan (refused), and a worker rank killed with
# SIGKILL (the job dies; --resume finishes exactly the missing trials).
source "$(dirname "$0")/e2e_common.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
e2e_setup "$T"
cd "$T"

expect() { # expect CODE PATTERN FILE -- command...
    local code=$1 pat=$2; shift 3
    set +e; "$@" > "$T/out" 2> "$T/err"; local rc=$?; set -e
    [ $rc -eq "$code" ] || { cat "$T/err"; fail "'$*' exited $rc, expected $code"; }
    grep -q -- "$pat" "$T/err" || { cat "$T/err"; fail "'$*': no '$pat' in the message"; }
}

echo "== malformed YAML"
printf 'name: x\ndata: {train: [a.h5\nmodel: 3\n' > bad1.yaml
expect 2 "bad1.yaml:[0-9]*:[0-9]*" -- "$NNLO" bad1.yaml --out "$T/o1"

echo "== unknown key with a suggestion"
sed 's/  sparsity:/  sparsty:/' scan.yaml > bad2.yaml
expect 2 "did you mean 'sparsity'" -- "$NNLO" bad2.yaml --out "$T/o2"
grep -q "bad2.yaml:2[0-9]:" "$T/err" || fail "no line:column for the unknown key"

echo "== missing HDF5 dataset"
sed 's/^  validation_split: 0.25/  validation_split: 0.25\n  features: Xx/' scan.yaml > bad3.yaml
expect 1 "jets.h5: dataset 'Xx' not found" -- "$NNLO" bad3.yaml --out "$T/o3" --quiet
grep -q "failed" "$T/o3/results.csv" || fail "the failed trials are not in results.csv"

echo "== a diverging trial fails alone"
# plain SGD on float weights: lr 1e30 overflows to Inf/NaN within a step
sed -e 's/  learning_rate: {log_uniform: \[1.0e-3, 1.0e-2\]}/  learning_rate: {choice: [1.0e-2, 1.0e+30]}\n  optimizer: sgd/' \
    -e 's/^quantization_parameters:/quantization_parameters:\n  enable_quantization: false/' scan.yaml > div.yaml
"$NNLO" div.yaml --out "$T/o4" --quiet > /dev/null 2>&1 || fail "a scan with one diverging setting must still succeed"
grep -q ',failed,.*NaN' "$T/o4/results.csv" || { cat "$T/o4/results.csv"; fail "no failed trial with a NaN reason"; }
grep -q ',done,' "$T/o4/results.csv" || fail "no trial finished next to the diverging ones"

echo "== an existing scan folder is not overwritten"
expect 2 "add --resume\|Add --resume" -- "$NNLO" div.yaml --out "$T/o4"

echo "== nnlo-c check: the file, the data and every grid point's model, before queueing"
"$NNLO" check scan.yaml > "$T/c1.out" 2> "$T/c1.err" || { cat "$T/c1.err"; fail "check of a good scan failed"; }
grep -q "12 grid points checked, 0 fail" "$T/c1.out" || { cat "$T/c1.out"; fail "check summary"; }
grep -q "data: train 2250 x 16 features, 5 classes; validation 750; test 1000" "$T/c1.out" ||
    { cat "$T/c1.out"; fail "check: data line"; }
cat > badgeo.yaml <<'YAML'
data: {train: jets.h5, validation_split: 0.25}
model:
  input_shape: [4, 4, 1]
  layers:
    - {type: conv2d, filters: 4, kernel_size: {choice: [3, 5]}}
    - {type: relu}
    - {type: flatten}
    - {type: dense}
pruning_parameters: {pruning_method: activation_pruning, target_sparsity: {uniform: [0.1, 0.999]}}
YAML
expect 2 "a 5 x 5 window with valid padding does not fit" -- "$NNLO" check badgeo.yaml
grep -q "target_sparsity: 0.5495 is out of reach" "$T/err" || { cat "$T/err"; fail "check: the unreachable target"; }
grep -q "6 grid points checked, 5 fail" "$T/out" || { cat "$T/out"; fail "check: counts"; }
sed 's/jets.h5/nowhere.h5/' badgeo.yaml > nodata.yaml
expect 2 "nowhere.h5: training data file not found" -- "$NNLO" check nodata.yaml
grep -q "5 more failing points not listed" "$T/err" || { cat "$T/err"; fail "check: one data error listed once"; }

echo "== a killed worker rank: the job stops, --resume finishes the rest"
sed -i 's/epochs: 3/epochs: 300/' scan.yaml
mpirun -n 3 "$NNLO" scan.yaml --out "$T/o5" --quiet > "$T/k.out" 2> "$T/k.err" &
pid=$!
for _ in $(seq 1 300); do
    grep -q '"trial_end"' "$T/o5/journal.jsonl" 2>/dev/null && break
    sleep 0.2
done
victim=$(pgrep -f "nnlo-c scan.yaml --out $T/o5" | tail -n 1)
[ -n "$victim" ] || fail "no rank to kill"
kill -KILL "$victim"
for _ in $(seq 1 300); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -0 $pid 2>/dev/null && { kill -KILL $pid; fail "mpirun did not end after a rank was killed"; }
if wait $pid; then fail "mpirun exited 0 although a rank was killed"; fi
before=$(grep -c '"trial_end"' "$T/o5/journal.jsonl")
[ "$before" -ge 1 ] || fail "no finished trial kept in the journal"
timeout 900 mpirun -n 3 "$NNLO" scan.yaml --out "$T/o5" --resume --quiet > /dev/null 2> "$T/k2.err" ||
    { cat "$T/k2.err"; fail "resume after a killed rank failed"; }
[ "$(grep -c '"trial_end"' "$T/o5/journal.jsonl")" -eq 4 ] || fail "resume did not end with exactly 4 finished trials"
echo "PASS e2e_errors ($before trials survived the kill)"
