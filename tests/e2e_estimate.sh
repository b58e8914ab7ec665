#!/usr/bin/env bash
# e2e_estimate.sh — `nnlo-c import`, `export --hls4ml` and `estimate --json`
# on a QKeras fixture (tests/fixtures/qkeras_mlp.h5, written by
# make_keras_fixture.py in the tf.keras layout): the Keras file, its import,
# the export and the export with its own hls4ml_config.yml all estimate the
# same; flags override the config; errors exit 2. With h5py available, the
# export's HDF5 layout is also checked the way Keras/hls4ml read it. The
# same for a QKeras CNN (tests/fixtures/keras_cnn.h5, make_keras_cnn_fixture.py:
# QConv2D, BatchNorm, pooling, Flatten, Dropout; bn2 is fused into c2).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NNLO="$ROOT/build/nnlo-c"
FIX="$ROOT/tests/fixtures/qkeras_mlp.h5"
export HDF5_USE_FILE_LOCKING=FALSE
fail() { echo "FAIL: $*" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"

echo "== import, export"
"$NNLO" import "$FIX" n.h5 > import.out || fail "import failed"
grep -q "7 layers (3 dense, 2 activation quantizers), 16 inputs, 5 outputs, softmax output" import.out ||
    { cat import.out; fail "import summary"; }
"$NNLO" export n.h5 --hls4ml ex > export.out || fail "export failed"
for f in model.json model_weights.h5 hls4ml_config.yml weights/w2.txt weights/b2.txt weights/w5.txt weights/w8.txt; do
    [ -s "ex/$f" ] || fail "export lacks $f"
done
grep -q "^KerasJson: model.json$" ex/hls4ml_config.yml || fail "KerasJson"
grep -q "^IOType: io_parallel$" ex/hls4ml_config.yml || fail "IOType"
grep -q "weight: ap_fixed<6,1,AP_RND_CONV,AP_SAT>" ex/hls4ml_config.yml || fail "QDense weight precision"
# fc1 is 16x64 with about half the weights pruned: exact zeros in w2.txt
n=$(tr "," "\n" < ex/weights/w2.txt | grep -c .)
[ "$n" -eq 1024 ] || fail "w2.txt has $n values, expected 1024"
z=$(tr ',' '\n' < ex/weights/w2.txt | tr -d ' ' | grep -c '^0\.00000$' || true)
[ "$z" -gt 400 ] || fail "w2.txt: only $z exact zeros"

echo "== estimate --json: Keras file = import = export = export + its config"
strip() { sed 's/"model": "[^"]*", //' "$1"; }
"$NNLO" estimate "$FIX" --json > a.json
"$NNLO" estimate n.h5 --json > b.json
"$NNLO" estimate ex/model_weights.h5 --json > c.json
"$NNLO" estimate ex/model_weights.h5 --hls4ml-config ex/hls4ml_config.yml --json > d.json
for x in b c d; do
    diff <(strip a.json) <(strip $x.json) > /dev/null || { diff <(strip a.json) <(strip $x.json); fail "$x.json differs"; }
done
for k in '"total": {"dsp": ' '"lut": ' '"ff": ' '"bram18": ' '"latency_cycles": ' '"ii": ' '"multipliers": ' \
         '"ebops": ' '"latency_ns": ' '"utilisation": {"lut": ' '"fits": true' '"layers": [' \
         '"part": "xcvu13p-flga2577-2-e"' '"name": "output_softmax", "kind": "softmax"'; do
    grep -qF "$k" a.json || fail "estimate --json lacks $k"
done
if /usr/bin/python3 -c 'import json' 2>/dev/null; then
    /usr/bin/python3 - a.json <<'PY' || fail "JSON check"
import json, sys
d = json.load(open(sys.argv[1]))
t = d["total"]
assert sum(l["dsp"] for l in d["layers"]) == t["dsp"], "layer DSPs do not add up"
assert sum(l["lut"] for l in d["layers"]) == t["lut"], "layer LUTs do not add up"
assert [l["name"] for l in d["layers"]] == ["fc1", "relu1", "fc2", "relu2", "output", "output_softmax"]
assert d["layers"][1]["result"] == "ap_ufixed<6,2,AP_RND_CONV,AP_SAT>", d["layers"][1]["result"]
assert d["layers"][2]["input"] == d["layers"][1]["result"]
assert t["latency_ns"] == t["latency_cycles"] * d["clock_ns"]
PY
fi

echo "== CNN: Keras file = export = export + its config = import = import -> export"
CNN="$ROOT/tests/fixtures/keras_cnn.h5"
"$NNLO" estimate "$CNN" --json > ca.json || fail "estimate of the CNN failed"
"$NNLO" export "$CNN" --hls4ml cex > /dev/null || fail "CNN export failed"
for f in model.json model_weights.h5 hls4ml_config.yml weights/w2.txt weights/s3.txt weights/w7.txt weights/w12.txt; do
    [ -s "cex/$f" ] || fail "CNN export lacks $f"
done
[ ! -e cex/weights/s8.txt ] || fail "bn2 is fused into c2: no s8.txt"
grep -q "ParallelizationFactor: 1" cex/hls4ml_config.yml || fail "ParallelizationFactor"
"$NNLO" estimate cex/model_weights.h5 --json > cc.json
"$NNLO" estimate cex/model_weights.h5 --hls4ml-config cex/hls4ml_config.yml --json > cd.json
for x in cc cd; do
    diff <(strip ca.json) <(strip $x.json) > /dev/null || { diff <(strip ca.json) <(strip $x.json); fail "CNN $x.json differs"; }
done
"$NNLO" import "$CNN" cn.h5 > cimport.out || fail "CNN import failed"
"$NNLO" estimate cn.h5 --json > cb.json
diff <(strip ca.json) <(strip cb.json) > /dev/null || { diff <(strip ca.json) <(strip cb.json); fail "CNN import estimates differently"; }
"$NNLO" export cn.h5 --hls4ml cex2 > /dev/null || fail "export of the imported CNN failed"
"$NNLO" estimate cex2/model_weights.h5 --hls4ml-config cex2/hls4ml_config.yml --json > ce.json
diff <(strip ca.json) <(strip ce.json) > /dev/null || fail "import -> export estimates differently"
cmp -s cex/weights/w7.txt cex2/weights/w7.txt || fail "c2's fused weights differ after import -> export"
if /usr/bin/python3 -c 'import json' 2>/dev/null; then
    /usr/bin/python3 - ca.json <<'PY' || fail "CNN JSON check"
import json, sys
d = json.load(open(sys.argv[1]))
names = [l["name"] for l in d["layers"]]
assert names == ["c1", "bn1", "r1", "p1", "c2", "r2", "p2", "out", "out_softmax"], names
L = {l["name"]: l for l in d["layers"]}
assert L["p1"]["dsp"] == 0 and L["p2"]["dsp"] == 0, "pooling uses no DSP"
assert L["c1"]["ii"] == 36, L["c1"]["ii"]       # 6x6 output pixels, one at a time
assert L["c1"]["dsp"] == 0, "6-bit c1 weights: no DSP"
assert sum(l["dsp"] for l in d["layers"]) == d["total"]["dsp"]
assert d["total"]["ii"] == 36
PY
fi
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
    /usr/bin/python3 - cex <<'PY' || fail "h5py check of the CNN export"
import json, sys, h5py, numpy as np
d = sys.argv[1]
with h5py.File(d + "/model_weights.h5", "r") as f:
    cfg = json.loads(f.attrs["model_config"])
    kinds = [l["class_name"] for l in cfg["config"]["layers"]]
    assert kinds[:3] == ["InputLayer", "QConv2D", "BatchNormalization"], kinds
    assert cfg["config"]["layers"][0]["config"]["batch_input_shape"] == [None, 8, 8, 1]
    mw = f["model_weights"]
    k = mw["c1"]["c1/kernel:0"][()]
    assert k.shape == (3, 3, 1, 4), k.shape
    txt = np.array([float(v) for v in open(d + "/weights/w2.txt").read().split(",")])
    assert np.array_equal(txt, k.reshape(-1)), "w2.txt differs from the HDF5 kernel"
    assert np.all(np.round(k * 32) == k * 32), "kernel not on the 2^-5 grid"
    bn = mw["bn1"]
    assert [n.decode() for n in bn.attrs["weight_names"]] == ["bn1/gamma:0", "bn1/beta:0", "bn1/moving_mean:0",
                                                            "bn1/moving_variance:0"]
PY
fi

echo "== flags override the config file"
"$NNLO" estimate "$FIX" --hls4ml-config ex/hls4ml_config.yml --part xc7z020clg400-1 --reuse-factor 2 \
    --clock-ns 10 --json > e.json
grep -qF '"part": "xc7z020clg400-1"' e.json || fail "--part did not override Part"
grep -qF '"reuse_factor": 2' e.json || fail "--reuse-factor did not override"
grep -qF '"clock_ns": 10' e.json || fail "--clock-ns did not override"
"$NNLO" estimate "$FIX" --precision 'ap_fixed<8,3>' --strategy resource --reuse-factor 4 > table.out
grep -q "Resource strategy, reuse factor 4" table.out || { cat table.out; fail "table header"; }
grep -q "^total " table.out || fail "no total row"
"$NNLO" export n.h5 --hls4ml exr --strategy resource --reuse-factor 4 --part xcu250-figd2104-2L-e > /dev/null
grep -q "Strategy: Resource" exr/hls4ml_config.yml && grep -q "^Part: xcu250-figd2104-2L-e$" exr/hls4ml_config.yml ||
    fail "export flags"

echo "== a trial's model.h5: estimate and export start from its fpga: section"
"$NNLO" data jets jets.h5 --samples 2000 --seed 1 > /dev/null 2>&1 || fail "data jets"
cat > trial.yaml <<'EOF'
data: {train: jets.h5, validation_split: 0.2}
model: {layers: [{type: dense, units: 8}, {type: relu}, {type: dense}]}
training_parameters: {epochs: 1, batch_size: 64}
quantization_parameters: {enable_quantization: true}
fpga: {part: xc7z020clg400-1, clock_period: 10, strategy: resource, reuse_factor: 4}
EOF
"$NNLO" train trial.yaml --out tr --json > tr.json 2> tr.err || { cat tr.err; fail "train"; }
"$NNLO" estimate tr/model.h5 --json > te.json || fail "estimate of the trial's model"
grep -qF '"part": "xc7z020clg400-1", "clock_ns": 10, "strategy": "resource", "reuse_factor": 4' te.json ||
    { head -c 300 te.json; fail "estimate ignored the trial's fpga: section"; }
for k in dsp lut ff bram18 latency_cycles latency_ns ebops; do
    a=$(grep -o "\"$k\": [0-9.e+-]*" tr.json | head -1)
    b=$(grep -o "\"$k\": [0-9.e+-]*" te.json | head -1)
    [ -n "$a" ] && [ "$a" = "$b" ] || fail "$k: the trial says '$a', estimate '$b'"
done
"$NNLO" estimate tr/model.h5 --part xcvu13p-flga2577-2-e --json > te2.json
grep -qF '"part": "xcvu13p-flga2577-2-e", "clock_ns": 10, "strategy": "resource"' te2.json ||
    fail "--part did not override the trial's part (or dropped its other settings)"
"$NNLO" export tr/model.h5 --hls4ml trx > /dev/null || fail "export of the trial's model"
grep -q "^Part: xc7z020clg400-1$" trx/hls4ml_config.yml && grep -q "^ClockPeriod: 10$" trx/hls4ml_config.yml &&
    grep -q "ReuseFactor: 4" trx/hls4ml_config.yml || { cat trx/hls4ml_config.yml; fail "export ignored the trial's fpga: section"; }

echo "== errors"
set +e
"$NNLO" estimate export.out > /dev/null 2> err1; rc1=$?
"$NNLO" estimate "$FIX" --strategy fast > /dev/null 2> err2; rc2=$?
"$NNLO" estimate "$FIX" --part xcvu9 > /dev/null 2> err3; rc3=$?
set -e
[ $rc1 -eq 2 ] || [ $rc1 -eq 1 ] || fail "estimate on a text file exited $rc1"
grep -q "export.out" err1 || fail "the error does not name the file"
[ $rc2 -eq 2 ] || fail "--strategy fast exited $rc2"
[ $rc3 -ne 0 ] && grep -q "did you mean" err3 || { cat err3; fail "unknown part"; }

if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
    echo "== h5py view of the export"
    /usr/bin/python3 - ex <<'PY' || fail "h5py check"
import json, sys, h5py, numpy as np
d = sys.argv[1]
with h5py.File(d + "/model_weights.h5", "r") as f:
    cfg = json.loads(f.attrs["model_config"])          # bytes or str: json takes both
    names = [l["config"]["name"] for l in cfg["config"]["layers"]]
    mw = f["model_weights"]
    assert [n.decode() for n in mw.attrs["layer_names"]] == names, names
    g = mw["fc1"]
    wn = [n.decode() for n in g.attrs["weight_names"]]
    assert wn == ["fc1/kernel:0", "fc1/bias:0"], wn
    k = g[wn[0]][()]
    assert k.shape == (16, 64) and k.dtype == np.float32
    txt = np.array([float(v) for v in open(d + "/weights/w2.txt").read().split(",")])
    assert np.array_equal(txt, k.reshape(-1)), "w2.txt differs from the HDF5 kernel"
    assert np.all(np.round(k * 32) == k * 32), "kernel not on the 2^-5 grid"
    assert len(mw["relu1"].attrs["weight_names"]) == 0
PY
fi
echo "e2e_estimate: OK"
