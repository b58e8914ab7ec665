#!/usr/bin/env bash
# make demo: Fashion-MNIST data from Debian's package, then a real scan
# under mpirun (1 master + 2 workers) that prints the ranked models.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export HDF5_USE_FILE_LOCKING=FALSE
NNLO=${NNLO:-build/nnlo-c}                       # the Makefile passes $(BUILD)/nnlo-c
if [ ! -s data/fashion-mnist/train.h5 ]; then
    "$NNLO" data fashion-mnist data/fashion-mnist
fi
out=${DEMO_OUT:-runs/demo-$(date +%Y%m%d-%H%M%S)}   # DEMO_OUT: tests/e2e_fresh.sh
echo "demo: scan configs/fashion_mnist_scan.yaml under mpirun -n 3, output in $out"
mpirun -n 3 "$NNLO" configs/fashion_mnist_scan.yaml --out "$out"
