#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for tests/test_slurm.py.
#
#   .ci/slurm.sh [start]   install (if missing) and start munge, slurmctld, slurmd
#   .ci/slurm.sh status    print what is running; exit 0 only when the node takes jobs
#   .ci/slurm.sh stop      stop the daemons by the PIDs in their pid files
#
# Idempotent: packages are installed only when a command is missing, the configuration is
# written only while no daemon runs, and a daemon that already runs is left alone.
# Recipe (verified on this kind of machine): shared/DESIGN.md, "Real SLURM on one machine".
# Needs root (apt-get, daemons).  Debian 12: slurm 22.05.8, munge 0.5.15.
set -euo pipefail

H=$(hostname -s)
CONF=/etc/slurm/slurm.conf
GRES=/etc/slurm/gres.conf
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
LOGDIR=/var/log/slurm
N_FAKE_GPUS=${N_FAKE_GPUS:-2}
PARTITION=${SLURM_PARTITION_NAME:-debug}

log() { echo "slurm.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

running() {  # running PIDFILE
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sinfo >/dev/null && command -v munged >/dev/null; then
        return
    fi
    [[ $(id -u) == 0 ]] || die "installing SLURM needs root"
    log "installing slurmctld slurmd slurm-client munge"
    # no init system here: the packages' service start would fail the install
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge
    if [[ $made_policy == 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
}

start_munge() {
    if running "$MUNGE_PID" && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return
    fi
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
    install -d -o munge -g munge -m 0755 /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    fi
    runuser -u munge -- munged
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.1
    done
    die "munge does not answer (munge -n | unmunge)"
}

write_config() {
    local cpus mem_kb real_mb
    cpus=$(nproc)
    mem_kb=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
    real_mb=$(( mem_kb * 9 / 10 / 1024 ))  # ~90%: more drains the node ("Low RealMemory")
    install -d /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOGDIR"
    for i in $(seq 0 $((N_FAKE_GPUS - 1))); do
        # slurmd drops GPUs without File=; a char device like /dev/null will do
        [[ -e /dev/fakegpu$i ]] || mknod /dev/fakegpu$i c 1 3
    done
    cat > "$CONF" <<EOF
# written by .ci/slurm.sh: a one-node test cluster, no accounting
ClusterName=campaignci
SlurmctldHost=$H(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# squeue is the status command without accounting: finished jobs must stay visible
MinJobAge=300
SchedulerParameters=batch_sched_delay=0
SlurmdParameters=config_overrides
ReturnToService=2
MailProg=/bin/true
GresTypes=gpu
NodeName=$H NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mb Gres=gpu:fake:$N_FAKE_GPUS State=UNKNOWN
PartitionName=$PARTITION Nodes=$H Default=YES MaxTime=INFINITE State=UP
EOF
    : > "$GRES"
    for i in $(seq 0 $((N_FAKE_GPUS - 1))); do
        echo "NodeName=$H Name=gpu Type=fake File=/dev/fakegpu$i" >> "$GRES"
    done
}

node_state() {
    sinfo -h -n "$H" -o '%t' 2>/dev/null | head -n1 | tr -d '*'
}

start() {
    install_packages
    start_munge
    if ! running "$CTLD_PID" && ! running "$SLURMD_PID"; then
        write_config
    fi
    if ! running "$CTLD_PID"; then
        log "starting slurmctld"
        slurmctld -i
    fi
    for _ in $(seq 100); do scontrol ping >/dev/null 2>&1 && break; sleep 0.1; done
    scontrol ping >/dev/null 2>&1 || die "slurmctld does not answer; see $LOGDIR/slurmctld.log"
    if ! running "$SLURMD_PID"; then
        log "starting slurmd"
        slurmd
    fi
    local state=""
    for _ in $(seq 150); do
        state=$(node_state)
        case $state in
            idle|mix|alloc|comp) break ;;
            drain|drng|down) scontrol update nodename="$H" state=resume 2>/dev/null || true ;;
        esac
        sleep 0.2
    done
    case $state in
        idle|mix|alloc|comp) log "node $H is $state" ;;
        *) die "node $H is '${state:-unknown}'; see $LOGDIR/slurmd.log and 'scontrol show node $H'" ;;
    esac
}

status() {
    local rc=0
    running "$MUNGE_PID" && echo "munged: running" || { echo "munged: stopped"; rc=1; }
    running "$CTLD_PID" && echo "slurmctld: running" || { echo "slurmctld: stopped"; rc=1; }
    running "$SLURMD_PID" && echo "slurmd: running" || { echo "slurmd: stopped"; rc=1; }
    local state
    state=$(node_state || true)
    echo "node $H: ${state:-unknown}"
    case $state in idle|mix|alloc|comp) ;; *) rc=1 ;; esac
    return $rc
}

stop() {
    # by the PIDs in the pid files, never by name
    local f
    for f in "$SLURMD_PID" "$CTLD_PID" "$MUNGE_PID"; do
        if running "$f"; then
            kill "$(cat "$f")"
            for _ in $(seq 50); do running "$f" || break; sleep 0.1; done
            log "stopped $(basename "$f" .pid)"
        fi
    done
}

case ${1:-start} in
    start) start ;;
    status) status ;;
    stop) stop ;;
    *) die "usage: $0 [start|status|stop]" ;;
esac
