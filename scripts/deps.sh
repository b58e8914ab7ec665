#!/bin/sh
# Installs the Debian packages nnlo-c's build, tests and demo need — only the
# missing ones. Runs as root (CI and fresh machines) or through sudo.
set -eu
PKGS="build-essential pkg-config libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools \
libyaml-dev libopenblas-dev check zlib1g-dev slurm-wlm munge dataset-fashion-mnist procps"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
