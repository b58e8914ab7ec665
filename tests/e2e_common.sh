# e2e_common.sh — shared by the end-to-end tests (sourced, not run).
# Makes a small jets data set and a 4-trial scan config in a temp folder,
# and checks a finished scan: the result files, the trial count, and that
# every trial re-runs to the same metrics with `nnlo-c train`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NNLO="$ROOT/build/nnlo-c"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
export HDF5_USE_FILE_LOCKING=FALSE

fail() { echo "FAIL: $*" >&2; exit 1; }

# e2e_setup DIR: data + scan.yaml in DIR
e2e_setup() {
    local dir=$1
    mkdir -p "$dir"
    "$NNLO" data jets "$dir/jets.h5" --samples 3000 --seed 1 >/dev/null
    "$NNLO" data jets "$dir/jets_test.h5" --samples 1000 --seed 2 >/dev/null
    cat > "$dir/scan.yaml" <<'YAML'
name: e2e
seed: 3
data:
  train: jets.h5
  test: jets_test.h5
  validation_split: 0.25
model:
  layers:
    - {type: dense, units: {choice: [16, 32]}}
    - {type: relu}
    - {type: dense, units: 16}
    - {type: relu}
    - {type: dense}
training_parameters:
  epochs: 3
  pretraining_epochs: 1
  fine_tuning_epochs: 1
  batch_size: 128
  learning_rate: {log_uniform: [1.0e-3, 1.0e-2]}
pruning_parameters:
  pruning_method: pdp
  sparsity: {choice: [0.5, 0.8]}
  epsilon: 0.5
quantization_parameters:
  default_data_keep_negatives: 1
  default_data_integer_bits: 3
  default_data_fractional_bits: 4
search: {algorithm: random, trials: 4, top_k: 2}
YAML
}

csv_col() { # csv_col FILE COLUMN-NAME TRIAL -> value
    awk -F, -v col="$2" -v id="$3" 'NR==1{for(i=1;i<=NF;i++) if($i==col) c=i; next} $1==id{print $c}' "$1"
}

# e2e_verify OUT: the files of a finished 4-trial scan, and re-runs.
e2e_verify() {
    local out=$1
    for f in scan.yaml journal.jsonl results.csv pareto.csv; do
        [ -s "$out/$f" ] || fail "$out/$f missing"
    done
    [ "$(grep -c '"trial_end"' "$out/journal.jsonl")" -eq 4 ] || fail "journal does not have 4 trial_end events"
    grep -q '"scan_end"' "$out/journal.jsonl" || fail "no scan_end in the journal"
    [ "$(tail -n +2 "$out/results.csv" | wc -l)" -eq 4 ] || fail "results.csv does not have 4 rows"
    [ "$(grep -c ',done,' "$out/results.csv")" -eq 4 ] || fail "not every trial is done: $(cat "$out/results.csv")"
    ls "$out"/best/1_*/model.h5 >/dev/null || fail "no best/1_*/model.h5"
    local id m a b
    for id in 0 1 2 3; do
        [ -s "$out/trials/$id/model.h5" ] || fail "trials/$id/model.h5 missing"
        [ -s "$out/trials/$id/history.csv" ] || fail "trials/$id/history.csv missing"
        local json
        json=$("$NNLO" train "$out/trials/$id/trial.yaml" --json -q) || fail "nnlo-c train trials/$id failed"
        for m in val_accuracy test_accuracy sparsity remaining_weights ebops dsp lut latency_cycles; do
            a=$(csv_col "$out/results.csv" "$m" "$id")
            b=$(printf '%s' "$json" | grep -o "\"$m\": [^,}]*" | sed 's/.*: //')
            [ -n "$a" ] && [ "$a" = "$b" ] || fail "trial $id $m: scan $a, re-run $b"
        done
        # accuracy must be better than chance (5 classes) and not perfect
        awk -v a="$(csv_col "$out/results.csv" val_accuracy "$id")" 'BEGIN{exit !(a > 0.3 && a < 1.0)}' ||
            fail "trial $id val_accuracy out of range"
    done
    echo "verified: 4 trials, files present, every trial re-runs to identical metrics"
}
