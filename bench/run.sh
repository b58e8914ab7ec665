#!/usr/bin/env bash
# make bench — training throughput, peak memory and accuracy of nnlo-c on
# the jet MLP (batch 256 and 1024), the Fashion-MNIST MLP and CNN, through the
# real `nnlo-c train` path, each at 1 and 2 OpenBLAS threads (best kept).
# If the PyTorch peer (../shared/bench/torch_peer.py, python3-torch) is
# there, it runs in the same session and the ratio is printed.
# Output lines, for scripts:
#   bench <case> train_samples_per_s=<x> peak_rss_mib=<y> data_mib=<d> threads=<t> [test_accuracy=<z>]
#   peer <case> train_samples_per_s=<x> threads=<t> ratio=<ours/peer> [test_accuracy=<z>]
# BENCH_CASES="jet_b256 cnn_b128" picks cases.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out
PEER=${PEER:-../shared/bench/torch_peer.py}
mkdir -p "$OUT"
# A private copy: a rebuild during a long bench must not swap the program.
cp build/nnlo-c "$OUT/nnlo-c"
NNLO=$OUT/nnlo-c
[ -s $OUT/jets.h5 ] || $NNLO data jets $OUT/jets.h5 --samples 100000 --seed 1 >/dev/null
[ -s $OUT/jets_test.h5 ] || $NNLO data jets $OUT/jets_test.h5 --samples 20000 --seed 2 >/dev/null
[ -s $OUT/fmnist/train.h5 ] || $NNLO data fashion-mnist $OUT/fmnist >/dev/null

have_peer=0
if [ -f "$PEER" ] && /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then have_peer=1; fi

ours() { # ours CASE THREADS -> "sps rss acc"
    local log
    log=$(OPENBLAS_NUM_THREADS=$2 $NNLO train bench/configs/$1.yaml --json 2>&1) || { echo "$log" >&2; return 1; }
    local sps rss acc
    sps=$(printf '%s' "$log" | grep -o '"train_samples_per_s": [^,}]*' | sed 's/.*: //')
    acc=$(printf '%s' "$log" | grep -o '"test_accuracy": [^,}]*' | sed 's/.*: //')
    rss=$(printf '%s' "$log" | grep -o 'peak_rss_mib=[0-9.]*' | sed 's/.*=//')
    echo "$sps $rss $acc"
}

data_mib() { # size of the float32 features + int32 labels the run holds
    case $1 in
        jet*) awk 'BEGIN{printf "%.1f", (100000 + 20000) * (16 * 4 + 4) / 1048576}' ;;
        fmlp*|cnn*) awk 'BEGIN{printf "%.1f", (60000 + 10000) * (784 * 4 + 4) / 1048576}' ;;
    esac
}

peer() { # peer CASE THREADS -> sps [acc]
    local model=jet batch=256 extra=()
    case $1 in
        jet_b1024) batch=1024 ;;
        fmlp_b256) model=fmlp ;;
        fmlp_acc) model=fmlp; extra=(--mode accuracy --lr 1e-3 --epochs 10 --seed 0) ;;
        cnn_b128) model=cnn; batch=128 ;;
        cnn_acc) model=cnn; batch=128; extra=(--mode accuracy --lr 1e-3 --epochs 10 --seed 0) ;;
    esac
    local envs=(OPENBLAS_NUM_THREADS=$2 OMP_NUM_THREADS=$2)
    [ "$2" -gt 1 ] && envs+=(OMP_WAIT_POLICY=PASSIVE)
    local log
    log=$(env "${envs[@]}" /usr/bin/python3 "$PEER" --model $model --threads "$2" --opt adam --batch $batch "${extra[@]}" 2>&1) || return 1
    if [[ $1 == *_acc ]]; then
        printf '%s' "$log" | grep FINAL | sed 's/.*test_acc \([0-9.]*\).*/\1/'
    else
        printf '%s' "$log" | grep 'TRAIN median' | sed 's/TRAIN median \([0-9,]*\).*/\1/' | tr -d ,
    fi
}

for c in ${BENCH_CASES:-jet_b256 jet_b1024 fmlp_b256 fmlp_acc cnn_b128 cnn_acc}; do
    best=""; bt=1
    for t in 1 2; do
        [[ $c == *_acc ]] && [ $t = 2 ] && break   # accuracy does not depend on threads
        r=$(ours $c $t)
        s=${r%% *}
        if [ -z "$best" ] || awk -v a="$s" -v b="${best%% *}" 'BEGIN{exit !(a > b)}'; then best=$r; bt=$t; fi
    done
    read -r sps rss acc <<<"$best"
    line="bench $c train_samples_per_s=$(printf '%.0f' "$sps") peak_rss_mib=$rss data_mib=$(data_mib $c) threads=$bt"
    [[ $c == fmlp* || $c == cnn* ]] && line="$line test_accuracy=$acc"
    echo "$line"
    if [ $have_peer = 1 ]; then
        if [[ $c == *_acc ]]; then
            pa=$(peer $c 1)
            echo "peer $c test_accuracy=$pa"
        else
            pbest=0; pt=1
            for t in 1 2; do
                p=$(peer $c $t)
                if awk -v a="$p" -v b="$pbest" 'BEGIN{exit !(a > b)}'; then pbest=$p; pt=$t; fi
            done
            echo "peer $c train_samples_per_s=$pbest threads=$pt ratio=$(awk -v a="$sps" -v b="$pbest" 'BEGIN{printf "%.2f", a/b}')"
        fi
    fi
done
