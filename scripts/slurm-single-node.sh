#!/usr/bin/env bash
# A single-node Slurm cluster on localhost (Debian slurm-wlm 22.05), for tests, CI and the
# cluster benchmark. Needs root; no systemd. Idempotent: daemons already up are left alone,
# a stale or changed configuration restarts them.
#
# Usage: bash scripts/slurm-single-node.sh          start (installs slurm-wlm if missing)
#        bash scripts/slurm-single-node.sh --stop   cancel every job, stop slurmd, slurmctld, munged
#
# Partition "debug" holds node "localhost" with every core of this machine. Daemons that are
# killed can linger as zombies here (PID 1 does not reap them), so liveness is read from
# /proc state and from the daemons' own answers (`munge -n`, `scontrol ping`), never pgrep.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

CONF=/etc/slurm/slurm.conf
SLURMCTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGED_PID=/run/munge/munged.pid

die() { echo "slurm-single-node: $*" >&2; exit 1; }

# alive PIDFILE: the process named in PIDFILE exists and is not a zombie.
alive() {
  local pid state
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1)
  [ "$state" != Z ] && [ "$state" != X ]
}

# stop_daemon PIDFILE NAME: SIGTERM, wait up to 10 s, then SIGKILL.
stop_daemon() {
  alive "$1" || { rm -f "$1"; return 0; }
  local pid
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do alive "$1" || break; sleep 0.2; done
  if alive "$1"; then kill -9 "$pid" 2>/dev/null || true; sleep 0.2; fi
  rm -f "$1"
  echo "slurm-single-node: stopped $2"
}

stop() {
  if command -v scancel >/dev/null && scontrol ping 2>/dev/null | grep -q UP; then
    scancel --full --quiet --user=root 2>/dev/null || true
  fi
  stop_daemon "$SLURMD_PID" slurmd
  stop_daemon "$SLURMCTLD_PID" slurmctld
  stop_daemon "$MUNGED_PID" munged
}

[ "$(id -u)" -eq 0 ] || die "run as root (it writes /etc/slurm and starts system daemons)"

if [ "${1:-}" = "--stop" ]; then
  stop
  exit 0
fi
[ $# -eq 0 ] || die "unknown argument '$1'; use no argument to start or --stop to stop"

if ! command -v slurmctld >/dev/null; then
  command -v apt-get >/dev/null || die "slurm-wlm is not installed and apt-get is unavailable"
  apt-get update -qq
  apt-get install -y -qq slurm-wlm >/dev/null
fi

HOST=$(hostname -s)
CPUS=$(nproc --all)  # --all: OMP_NUM_THREADS (set by Ray, Dask) must not shrink the node
mkdir -p /etc/slurm /var/spool/slurmd /var/spool/slurmctld /var/log/slurm /run/munge
chown munge:munge /run/munge
chmod 755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create 2>/dev/null || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi

WANTED=$(cat <<CONF
ClusterName=ci
SlurmctldHost=localhost
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=${SLURMCTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmUser=root
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=localhost NodeHostname=${HOST} CPUs=${CPUS} RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
)
if [ "$(cat "$CONF" 2>/dev/null)" != "$WANTED" ]; then
  # A changed configuration only takes effect in freshly started daemons.
  stop_daemon "$SLURMD_PID" slurmd
  stop_daemon "$SLURMCTLD_PID" slurmctld
  printf '%s\n' "$WANTED" > "$CONF"
fi

munge -n >/dev/null 2>&1 || su -s /bin/sh munge -c /usr/sbin/munged
for _ in $(seq 1 20); do munge -n >/dev/null 2>&1 && break; sleep 0.25; done
munge -n >/dev/null 2>&1 || die "munged did not start; see /var/log/munge/munged.log"

# A freshly started daemon starts from empty state: jobs saved by an earlier cluster (whose
# processes are long gone) would otherwise be recovered as "completing" and hold cores forever.
if ! alive "$SLURMCTLD_PID"; then
  rm -rf /var/spool/slurmctld/*
  /usr/sbin/slurmctld
fi
if ! alive "$SLURMD_PID"; then
  rm -rf /var/spool/slurmd/*
  /usr/sbin/slurmd
fi

state=""
for _ in $(seq 1 60); do
  state=$(sinfo -h -n localhost -o %T 2>/dev/null | head -n1 || true)
  case "$state" in
    idle | mixed | allocated | completing) break ;;
    drained* | draining | down*) scontrol update nodename=localhost state=resume 2>/dev/null || true ;;
  esac
  sleep 0.5
done
case "$state" in
  idle | mixed | allocated | completing) ;;
  *) die "node localhost is '${state:-unknown}' after 30 s; see /var/log/slurm/slurmd.log and slurmctld.log" ;;
esac
sinfo
