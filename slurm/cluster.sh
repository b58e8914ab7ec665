#!/usr/bin/env bash
# cluster.sh — a private one-node Slurm cluster in one folder, for tests and
# for trying nnlo-c on a workstation (Debian/Ubuntu slurm-wlm + munge, root).
# Everything Slurm writes (slurm.conf, state, spool, pid files, logs) lives in
# DIR; /etc/slurm is never read or written. It does NOT manage accounting,
# cgroups or several nodes. Invariant: `stop DIR` only kills processes whose
# pids this script recorded in DIR, and may be called any number of times.
#
#   slurm/cluster.sh start  DIR [--cpus N]   start (no-op if already up)
#   slurm/cluster.sh stop   DIR              cancel jobs, stop daemons
#   slurm/cluster.sh status DIR              exit 0 if up, 3 if down
#   slurm/cluster.sh env    DIR              print `export SLURM_CONF=...`
#
# Environment: NNLO_SLURM_START_TIMEOUT (seconds to wait for the node to be
# idle, default 60).

set -euo pipefail

prog=${0##*/}
# Present while a munged started by this script runs (holds its pid).
MUNGE_MARK=/run/lock/nnlo-c-munged.started

die() {
    printf '%s: error: %s\n' "$prog" "$*" >&2
    exit 1
}

note() {
    printf '%s: %s\n' "$prog" "$*" >&2
}

usage() {
    cat >&2 <<EOF
usage: $prog start DIR [--cpus N]
       $prog stop DIR
       $prog status DIR
       $prog env DIR
EOF
    exit 2
}

# pid_alive PIDFILE: true if PIDFILE names a running process.
pid_alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null
}

# port_free PORT: true if nothing listens on PORT (TCP, any address).
port_free() {
    local port=$1
    if ss -Htln "sport = :$port" 2>/dev/null | grep -q .; then
        return 1
    fi
    # Second opinion without ss: a successful connect means it is taken.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        return 1
    fi
    return 0
}

# pick_port EXCLUDE: print a free TCP port in 20000-59999, not EXCLUDE.
pick_port() {
    local exclude=${1:-0} port tries
    for ((tries = 0; tries < 200; tries++)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        [[ $port -eq $exclude ]] && continue
        if port_free "$port"; then
            printf '%d\n' "$port"
            return 0
        fi
    done
    die "no free TCP port found in 20000-59999"
}

munge_ok() {
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

# ensure_munge DIR: make `munge -n | unmunge` work; record in DIR whether we
# started munged (then `stop` may stop it again). Returns holding the munge
# lock (fd 8): the caller releases it once its slurmctld runs, so a `stop`
# elsewhere never sees "no Slurm daemons" and kills munged under our feet.
ensure_munge() {
    local dir=$1 key=/etc/munge/munge.key i
    exec 8>/run/lock/nnlo-c-munge.lock
    flock 8
    if munge_ok; then
        # Already running (system service or another cluster of ours).
        if [[ ! -e $dir/munged.ours ]]; then
            # 1 if another cluster.sh started this munged, 0 if a service did.
            if [[ -e $MUNGE_MARK ]]; then echo 1; else echo 0; fi >"$dir/munged.ours"
        fi
        return 0
    fi
    command -v munged >/dev/null || die "munged not found: apt-get install munge"
    if [[ ! -s $key ]]; then
        note "creating munge key $key"
        mkdir -p /etc/munge
        mungekey -c -k "$key"
    fi
    chown munge:munge "$key"
    chmod 0400 "$key"
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    # A stale socket or pid file from a dead munged blocks a new one.
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock \
        /run/munge/munged.pid
    # Close our lock fds: a daemon inheriting them would hold the locks
    # forever and the next start/stop would block.
    runuser -u munge -- munged 8>&- 9>&-
    for ((i = 0; i < 50; i++)); do
        munge_ok && break
        sleep 0.1
    done
    if ! munge_ok; then
        tail -n 20 /var/log/munge/munged.log >&2 || true
        die "munged started but 'munge -n | unmunge' fails (log above)"
    fi
    echo 1 >"$dir/munged.ours"
    cat /run/munge/munged.pid >"$MUNGE_MARK"
}

# node_addr: print the address slurm should use for this host.
node_addr() {
    local host
    host=$(hostname -s)
    if getent hosts "$host" >/dev/null 2>&1; then
        printf '%s\n' "$host"
    else
        printf '127.0.0.1\n'
    fi
}

write_conf() {
    local dir=$1 cpus=$2 host addr mem_kb mem_mb cport dport first_job
    host=$(hostname -s)
    addr=$(node_addr)
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    # A bit below the physical memory, so slurmd never marks the node as
    # having less than configured (it would then be DRAINED).
    mem_mb=$((mem_kb * 9 / 10240))
    [[ $mem_mb -ge 1 ]] || mem_mb=1
    cport=$(pick_port 0)
    dport=$(pick_port "$cport")
    # Distinct job ids per cluster: Slurm's PMIx plugin and users' output
    # files (slurm-%j.out) are named by job id, so two test clusters
    # that both start at job 1 would collide in shared folders.
    first_job=$(((RANDOM * 32768 + RANDOM) % 900000 * 10 + 1000))
    # An empty plugstack keeps site SPANK plugins out of a private cluster.
    : >"$dir/plugstack.conf"
    cat >"$dir/slurm.conf" <<EOF
# Written by slurm/cluster.sh for a private one-node cluster; do not edit.
ClusterName=nnlo${cport}
SlurmctldHost=${host}(${addr})
SlurmctldPort=${cport}
SlurmdPort=${dport}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
PlugStackConfig=${dir}/plugstack.conf
ReturnToService=2
MailProg=/bin/true
TmpFS=${dir}/tmp
FirstJobId=${first_job}
InactiveLimit=0
KillWait=30
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=60
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd.pid
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmdParameters=config_overrides
NodeName=${host} NodeAddr=${addr} NodeHostname=${host} CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:${cpus}
EOF
}

show_logs() {
    local dir=$1 f
    for f in "$dir/log/slurmctld.log" "$dir/log/slurmd.log"; do
        if [[ -e $f ]]; then
            printf -- '--- tail of %s ---\n' "$f" >&2
            tail -n 25 "$f" >&2
        fi
    done
}

node_state() {
    SLURM_CONF=$1/slurm.conf timeout 10 sinfo -h -N -o '%t' 2>/dev/null | head -n 1
}

# fail_start DIR MESSAGE: show the daemons' logs, undo the start, exit 1.
fail_start() {
    show_logs "$1"
    stop_daemons "$1"
    stop_munge_if_ours
    die "$2; daemon logs above, all files in $1"
}

cmd_start() {
    local dir=$1 cpus=$2 t0 limit state i
    command -v slurmctld >/dev/null || die "slurmctld not found: apt-get install slurm-wlm"
    [[ $(id -u) -eq 0 ]] || die "must run as root (SlurmUser=root)"
    mkdir -p "$dir"
    exec 9>"$dir/.lock"
    flock 9
    if pid_alive "$dir/slurmctld.pid" && pid_alive "$dir/slurmd.pid"; then
        note "already running in $dir (to change --cpus: stop, then start)"
        return 0
    fi
    # Half-up (one daemon died): start over cleanly.
    stop_daemons "$dir"
    t0=$(date +%s.%N)
    ensure_munge "$dir"
    # Fresh state on every start: node config changes need it anyway.
    rm -rf "$dir/state" "$dir/spool" "$dir/tmp"
    mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/tmp"
    write_conf "$dir" "$cpus"
    export SLURM_CONF=$dir/slurm.conf
    # -i: ignore (absent) saved state; daemons fork into the background.
    if ! slurmctld -i -f "$SLURM_CONF" 8>&- 9>&-; then
        fail_start "$dir" "slurmctld failed to start"
    fi
    for ((i = 0; i < 100; i++)); do
        pid_alive "$dir/slurmctld.pid" && break
        sleep 0.1
    done
    flock -u 8
    if ! slurmd -f "$SLURM_CONF" -N "$(hostname -s)" 8>&- 9>&-; then
        fail_start "$dir" "slurmd failed to start"
    fi
    limit=${NNLO_SLURM_START_TIMEOUT:-60}
    state=
    for ((i = 0; i < limit * 4; i++)); do
        state=$(node_state "$dir")
        [[ $state == idle ]] && break
        # Daemons gone: no point in waiting.
        if ! pid_alive "$dir/slurmctld.pid" || ! pid_alive "$dir/slurmd.pid"; then
            [[ $i -gt 8 ]] && break
        fi
        sleep 0.25
    done
    if [[ $state != idle ]]; then
        SLURM_CONF=$dir/slurm.conf timeout 10 sinfo -N -l >&2 2>&1 || true
        fail_start "$dir" "node not idle (state '${state:-none}', waited up to ${limit}s)"
    fi
    note "up in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s: export SLURM_CONF=$dir/slurm.conf"
}

# kill_pidfiles PIDFILE...: TERM all these processes at once, wait up to
# 15 s for them to exit, then KILL what is left; remove the pid files.
kill_pidfiles() {
    local f pid i pids=() left
    for f in "$@"; do
        if pid_alive "$f"; then
            pid=$(<"$f")
            pids+=("$pid")
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for ((i = 0; i < 150; i++)); do
        left=0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && left=1
        done
        [[ $left -eq 0 ]] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            note "pid $pid ignored SIGTERM for 15 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    done
    rm -f "$@"
}

# stray_stepds DIR: print pids of slurmstepd processes that use DIR/spool
# (left over when slurmd died before its jobs).
stray_stepds() {
    local dir=$1 pid link
    for pid in $(pgrep -x slurmstepd 2>/dev/null || true); do
        for link in /proc/"$pid"/fd/*; do
            if [[ $(readlink "$link" 2>/dev/null) == "$dir"/* ]]; then
                printf '%s\n' "$pid"
                break
            fi
        done
    done
}

stop_daemons() {
    local dir=$1 pid
    kill_pidfiles "$dir/slurmd.pid" "$dir/slurmctld.pid"
    for pid in $(stray_stepds "$dir"); do
        kill -KILL "$pid" 2>/dev/null || true
    done
}

# stop_munge_if_ours: stop munged if a cluster.sh started it (MUNGE_MARK
# names its pid) and no Slurm daemon is left on this machine. The last of
# several clusters to stop thus stops it; a munged we did not start (the
# system service) is never touched.
stop_munge_if_ours() {
    local pid
    [[ -e $MUNGE_MARK ]] || return 0
    exec 8>/run/lock/nnlo-c-munge.lock
    flock 8
    pid=$(cat /run/munge/munged.pid 2>/dev/null || true)
    if [[ $(cat "$MUNGE_MARK" 2>/dev/null) != "$pid" ]]; then
        # Our munged is gone or was replaced by someone else's.
        rm -f "$MUNGE_MARK"
    elif pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
        note "leaving munged running: other Slurm daemons still use it"
    else
        kill_pidfiles /run/munge/munged.pid
        rm -f "$MUNGE_MARK"
    fi
    flock -u 8
}

cmd_stop() {
    local dir=$1 i jobs
    [[ -d $dir ]] || return 0
    exec 9>"$dir/.lock"
    flock 9
    if [[ -e $dir/slurm.conf ]] && pid_alive "$dir/slurmctld.pid"; then
        export SLURM_CONF=$dir/slurm.conf
        jobs=$(timeout 10 squeue -h -o '%i' 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            # shellcheck disable=SC2086 # one job id per word
            timeout 10 scancel $jobs 2>/dev/null || true
            for ((i = 0; i < 40; i++)); do
                [[ -z $(timeout 10 squeue -h -t R,CG -o '%i' 2>/dev/null) ]] && break
                sleep 0.25
            done
        fi
    fi
    stop_daemons "$dir"
    stop_munge_if_ours
    rm -f "$dir/munged.ours"
}

cmd_status() {
    local dir=$1 rc=0
    if pid_alive "$dir/slurmctld.pid"; then
        echo "slurmctld: running (pid $(<"$dir/slurmctld.pid"))"
    else
        echo "slurmctld: stopped"
        rc=3
    fi
    if pid_alive "$dir/slurmd.pid"; then
        echo "slurmd: running (pid $(<"$dir/slurmd.pid"))"
    else
        echo "slurmd: stopped"
        rc=3
    fi
    if [[ $rc -eq 0 ]]; then
        SLURM_CONF=$dir/slurm.conf timeout 10 sinfo -N || rc=3
        echo "export SLURM_CONF=$dir/slurm.conf"
    fi
    return "$rc"
}

main() {
    local cmd dir cpus=8
    [[ $# -ge 2 ]] || usage
    cmd=$1
    dir=$2
    shift 2
    while [[ $# -gt 0 ]]; do
        case $1 in
        --cpus)
            [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || die "--cpus needs a positive integer"
            cpus=$2
            shift 2
            ;;
        --cpus=*)
            cpus=${1#--cpus=}
            [[ $cpus =~ ^[1-9][0-9]*$ ]] || die "--cpus needs a positive integer"
            shift
            ;;
        *) usage ;;
        esac
    done
    [[ $cmd == start || $cpus -eq 8 ]] || usage
    # Absolute path: the daemons chdir, and slurm.conf must name real paths.
    if [[ $cmd == start ]]; then
        mkdir -p "$dir"
    fi
    if [[ -d $dir ]]; then
        dir=$(cd "$dir" && pwd -P)
        # slurm.conf has no quoting: a path with blanks or '#' breaks it.
        [[ $dir != *[[:space:]#=]* ]] || die "DIR must not contain blanks, '#' or '=': $dir"
    elif [[ $cmd == env ]]; then
        die "$dir does not exist (run: $prog start $dir)"
    fi
    case $cmd in
    start) cmd_start "$dir" "$cpus" ;;
    stop) cmd_stop "$dir" ;;
    status) cmd_status "$dir" ;;
    env) printf 'export SLURM_CONF=%q\n' "$dir/slurm.conf" ;;
    *) usage ;;
    esac
}

main "$@"
