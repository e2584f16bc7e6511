#!/usr/bin/env bash
# A single-node SLURM cluster on 127.0.0.1 for the workflow tests (shared/notes/slurm_local.md).
#
#   tests/slurm_cluster.sh start      start munged, slurmctld and slurmd unless already running;
#                                     last line: "started munged=PID slurmctld=PID slurmd=PID"
#                                     (0 = was already running, not started here)
#   tests/slurm_cluster.sh stop PID.. stop exactly those PIDs (what `start` reported)
#   tests/slurm_cluster.sh min-job-age N
#                                     set MinJobAge to N seconds (scontrol reconfigure); prints the old value
#
# MinJobAge (default here: 3600 s, env SLURM_MIN_JOB_AGE) is how long slurmctld, and so `squeue`, still
# lists a finished job. Without slurmdbd Snakemake's slurm executor learns that a job ended only from
# squeue; a job squeue has forgotten counts as still queued and the workflow waits forever. The plugin's
# status checks can be 180 s apart, so MinJobAge must exceed that (the workflow's onstart check says so
# and stops otherwise). Finished jobs are also written to /var/log/slurm/jobcomp.log (jobcomp/filetxt),
# a record that never expires, which the tests read for the final job states.
#
# Needs root and the Debian packages slurm-wlm + munge (apt-get install -y slurm-wlm munge).
# No slurmdbd: Snakemake's slurm executor must poll with `squeue` (slurm-status-command).
# /etc/slurm/slurm.conf is written only if absent or written by this script before.
set -euo pipefail

MARK="# written by dans-kgc tests/slurm_cluster.sh"
CONF=/etc/slurm/slurm.conf
MIN_JOB_AGE=${SLURM_MIN_JOB_AGE:-3600}
JOBCOMP=/var/log/slurm/jobcomp.log

alive() {  # alive PIDFILE -> prints the PID if that process runs
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && cat "$1"
}

start() {
  [ "$(id -u)" = 0 ] || { echo "slurm_cluster.sh: must run as root" >&2; exit 1; }
  local host; host=$(hostname -s)
  local started_munge=0 started_ctld=0 started_d=0

  if ! alive /run/munge/munged.pid >/dev/null; then
    if [ ! -s /etc/munge/munge.key ]; then
      mungekey --create --keyfile=/etc/munge/munge.key
      chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do alive /run/munge/munged.pid >/dev/null && break; sleep 0.1; done
    started_munge=$(cat /run/munge/munged.pid)
  fi
  munge -n | unmunge | grep -q Success || { echo "munge does not work" >&2; exit 1; }

  if ! alive /run/slurm/slurmctld.pid >/dev/null; then
    if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
      echo "slurm_cluster.sh: $CONF was not written by this script; using it as it is" >&2
    else
      local hw mem node
      hw=$(slurmd -C | head -1)
      mem=$(echo "$hw" | grep -o 'RealMemory=[0-9]*' | cut -d= -f2)
      node=$(echo "$hw" | sed "s/RealMemory=[0-9]*/RealMemory=$((mem * 9 / 10))/")
      mkdir -p /etc/slurm
      cat > "$CONF" <<CONF
$MARK
ClusterName=local
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MinJobAge=${MIN_JOB_AGE}
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=${JOBCOMP}
${node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
    fi
    install -d -o slurm -g slurm -m 755 /run/slurm /var/lib/slurm/slurmctld /var/log/slurm
    install -d -m 755 /var/lib/slurm/slurmd
    slurmctld
    for _ in $(seq 50); do alive /run/slurm/slurmctld.pid >/dev/null && break; sleep 0.1; done
    started_ctld=$(cat /run/slurm/slurmctld.pid)
  fi
  if ! alive /run/slurm/slurmd.pid >/dev/null; then
    slurmd
    for _ in $(seq 50); do alive /run/slurm/slurmd.pid >/dev/null && break; sleep 0.1; done
    started_d=$(cat /run/slurm/slurmd.pid)
  fi
  for _ in $(seq 120); do
    sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && break
    scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
    sleep 0.5
  done
  sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)' || { echo "node not up: $(sinfo)" >&2; exit 1; }
  echo "started munged=$started_munge slurmctld=$started_ctld slurmd=$started_d"
}

min_job_age() {
  [ "$(id -u)" = 0 ] || { echo "slurm_cluster.sh: must run as root" >&2; exit 1; }
  grep -qF "$MARK" "$CONF" || { echo "slurm_cluster.sh: $CONF was not written by this script" >&2; exit 1; }
  grep -o '^MinJobAge=[0-9]*' "$CONF" | cut -d= -f2
  sed -i "s/^MinJobAge=.*/MinJobAge=$1/" "$CONF"
  scontrol reconfigure
  local shown
  for _ in $(seq 50); do  # (not `scontrol ... | grep -q`: grep's early exit would fail the pipe under pipefail)
    shown=$(scontrol show config)
    grep -qE "^MinJobAge += $1 sec" <<<"$shown" && return 0
    sleep 0.2
  done
  echo "MinJobAge did not change: $(scontrol show config | grep MinJobAge)" >&2; exit 1
}

stop() {
  for pid in "$@"; do
    [ "$pid" -gt 0 ] 2>/dev/null || continue
    kill "$pid" 2>/dev/null || true
  done
  for pid in "$@"; do
    [ "$pid" -gt 0 ] 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
}

case "${1:-}" in
  start) start ;;
  stop) shift; stop "$@" ;;
  min-job-age) min_job_age "$2" ;;
  *) echo "usage: $0 start | stop PID... | min-job-age SECONDS" >&2; exit 2 ;;
esac
