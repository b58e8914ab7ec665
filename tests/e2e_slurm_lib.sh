# shellcheck shell=bash
# e2e_slurm_lib.sh — sourced by end-to-end tests that need a real Slurm:
# starts a private one-node cluster (slurm/cluster.sh) in a temporary folder,
# runs srun/sbatch against it with time limits, and tears it down on EXIT.
# It does not set shell options for the caller, works under set -euo
# pipefail, and never touches /etc/slurm or another cluster. Functions return 77 (the automake "skip"
# code) when Slurm cannot run here; the caller decides to exit 77.
#
#   . tests/e2e_slurm_lib.sh
#   slurm_up --cpus 8 || exit $?          # exports SLURM_CONF, SLURM_TEST_DIR
#   slurm_srun -n 3 ./build/nnlo-c scan.yaml
#   j=$(slurm_sbatch -n 3 job.sh); slurm_wait_job "$j" 120
#   slurm_down                            # also runs on EXIT
#
# Knobs: SLURM_SRUN_TIMEOUT (s, default 300) bounds slurm_srun;
# NNLO_KEEP_SLURM=1 keeps the folder (logs) after slurm_down.

SLURM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SLURM_CLUSTER_SH=${SLURM_CLUSTER_SH:-$SLURM_LIB_DIR/../slurm/cluster.sh}
SLURM_TEST_DIR=${SLURM_TEST_DIR:-}

# slurm_available: 0 if a test cluster can be started here, else prints
# 'SKIP: <why>' and returns 77.
slurm_available() {
    if ! command -v slurmctld >/dev/null 2>&1 || ! command -v srun >/dev/null 2>&1; then
        echo 'SKIP: slurm not installed'
        return 77
    fi
    if ! command -v munged >/dev/null 2>&1; then
        echo 'SKIP: munge not installed'
        return 77
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo 'SKIP: a private slurm cluster needs root (SlurmUser=root)'
        return 77
    fi
    return 0
}

# slurm_up [--cpus N]: start a cluster in a new temporary folder, export
# SLURM_CONF and SLURM_TEST_DIR, and tear it down when the shell exits.
# Returns 77 (after 'SKIP: ...') if Slurm is missing, 1 if it fails to start
# (the daemons' log tails are on stderr).
slurm_up() {
    local prev
    slurm_available || return $?
    if [[ -n $SLURM_TEST_DIR ]] && "$SLURM_CLUSTER_SH" status "$SLURM_TEST_DIR" >/dev/null 2>&1; then
        return 0
    fi
    SLURM_TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/nnlo-slurm.XXXXXX") || return 1
    export SLURM_TEST_DIR
    # Keep an EXIT trap the caller already set, and run ours after it.
    prev=$(trap -p EXIT)
    prev=${prev#trap -- \'}
    prev=${prev%\' EXIT}
    if [[ $prev != *slurm_down* ]]; then
        # shellcheck disable=SC2064 # expand the caller's trap now
        trap "${prev:+$prev; }slurm_down" EXIT
    fi
    if ! "$SLURM_CLUSTER_SH" start "$SLURM_TEST_DIR" "$@"; then
        echo "slurm_up: cluster failed to start (folder $SLURM_TEST_DIR)" >&2
        return 1
    fi
    export SLURM_CONF=$SLURM_TEST_DIR/slurm.conf
    return 0
}

# slurm_down: cancel jobs, stop the daemons, remove the folder (kept with
# NNLO_KEEP_SLURM=1). Safe to call more than once.
slurm_down() {
    [[ -n $SLURM_TEST_DIR ]] || return 0
    "$SLURM_CLUSTER_SH" stop "$SLURM_TEST_DIR" || true
    if [[ ${NNLO_KEEP_SLURM:-0} == 1 ]]; then
        echo "slurm_down: kept $SLURM_TEST_DIR (logs in log/)" >&2
    else
        rm -rf "$SLURM_TEST_DIR"
    fi
    SLURM_TEST_DIR=
    unset SLURM_CONF
    return 0
}

# slurm_srun ARGS...: srun --mpi=pmix ARGS, killed after SLURM_SRUN_TIMEOUT
# seconds (exit 124 then, as with timeout(1)). Returns srun's exit code.
slurm_srun() {
    timeout --kill-after=15 "${SLURM_SRUN_TIMEOUT:-300}" srun --mpi=pmix "$@"
}

# slurm_sbatch ARGS...: sbatch --parsable ARGS; prints the job id.
slurm_sbatch() {
    sbatch --parsable "$@" | cut -d';' -f1
}

# slurm_job_state JOBID: print the job's state (PENDING, RUNNING,
# COMPLETED, CANCELLED, FAILED, TIMEOUT, ...), or nothing if unknown.
slurm_job_state() {
    { scontrol show job "$1" 2>/dev/null || true; } |
        sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1
}

# slurm_wait_state JOBID STATE SECONDS: wait until the job is in STATE.
# Returns 0 when it is, 1 on timeout (the current state is printed).
slurm_wait_state() {
    local j=$1 want=$2 limit=$3 i s
    for ((i = 0; i < limit * 4; i++)); do
        s=$(slurm_job_state "$j")
        [[ $s == "$want" ]] && return 0
        sleep 0.25
    done
    echo "slurm_wait_state: job $j is '${s:-unknown}', not $want after ${limit}s" >&2
    return 1
}

# slurm_wait_job JOBID SECONDS: wait until the job has ended; prints its
# final state. Returns 0 if it COMPLETED, 1 otherwise (or on timeout).
slurm_wait_job() {
    local j=$1 limit=$2 i s
    for ((i = 0; i < limit * 4; i++)); do
        s=$(slurm_job_state "$j")
        case $s in
        PENDING | RUNNING | CONFIGURING | COMPLETING | REQUEUED | REQUEUE_HOLD | REQUEUE_FED | RESIZING | SUSPENDED | STAGE_OUT | SIGNALING) ;;
        COMPLETED)
            echo "$s"
            return 0
            ;;
        *)
            echo "${s:-UNKNOWN}"
            return 1
            ;;
        esac
        sleep 0.25
    done
    echo "TIMEOUT_WAITING($s)"
    return 1
}

# slurm_release JOBID: start a pending job now. Slurm holds a requeued job
# with BeginTime = now + ~2 min (Reason=BeginTime); tests of --requeue use this to skip the wait.
slurm_release() {
    scontrol update JobId="$1" StartTime=now
}

# slurm_logs: print the tails of the daemons' logs (for a failing test).
slurm_logs() {
    local f
    [[ -n $SLURM_TEST_DIR ]] || return 0
    for f in "$SLURM_TEST_DIR"/log/*.log; do
        [[ -e $f ]] || continue
        echo "--- $f"
        tail -n "${1:-30}" "$f"
    done
}
