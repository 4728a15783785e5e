#!/usr/bin/env bash
# A real single-node SLURM cluster (Debian's slurm-wlm) for the SLURM checks, started by hand (no
# systemd) and stopped by PID:
#   .ci/slurm_cluster.sh install   apt-get the packages unless they are there (root)
#   .ci/slurm_cluster.sh start     munge, mariadb, slurmdbd, slurmctld, slurmd; waits for an idle node
#   .ci/slurm_cluster.sh stop      waits for an empty queue, stops every daemon it started by PID
#   .ci/slurm_cluster.sh status
# PIDs are recorded in $SLURM_CI_STATE (default /tmp/facemoe-slurm-ci/pids), one "name pid" a line;
# stop only ever signals those PIDs. Needs root (the daemons' users and /etc/slurm). Recipe and
# fragile points: docs/CLUSTER.md.
set -euo pipefail
STATE_DIR=${SLURM_CI_STATE_DIR:-/tmp/facemoe-slurm-ci}
PIDS=$STATE_DIR/pids
HOST=$(hostname -s)

log() { echo "[slurm_cluster] $*" >&2; }

install() {
  if command -v slurmctld >/dev/null && command -v munged >/dev/null && command -v slurmdbd >/dev/null \
     && command -v mariadbd >/dev/null; then
    log "slurm-wlm, munge, slurmdbd and mariadb-server already installed"
    return
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge slurmdbd mariadb-server >/dev/null
}

record() { echo "$1 $2" >>"$PIDS"; log "$1 started (pid $2)"; }

wait_for() {  # wait_for <seconds> <description> <command...>
  local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) > deadline )); then log "timed out waiting for $what"; return 1; fi
    sleep 0.5
  done
}

pid_of_file() { local f=$1; wait_for 20 "$f" test -s "$f"; cat "$f"; }

write_configs() {
  local cpus mem
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
  mkdir -p /etc/slurm /var/spool/slurm/ctld /var/spool/slurm/d /var/log/slurm /run/slurm
  cat >/etc/slurm/slurm.conf <<EOF
ClusterName=ci
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$HOST
SelectType=select/cons_tres
# Cores are the consumable; memory is only checked against the node's. The partition lets up to 4
# jobs share a core (OverSubscribe=FORCE:4), so the SLURM checks (6 single-CPU tasks) run side by
# side on a 2-core CI runner instead of queueing one after another (tests/test_slurm.py).
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MailProg=/bin/true
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
StateSaveLocation=/var/spool/slurm/ctld
SlurmdSpoolDir=/var/spool/slurm/d
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobRequeue=1
MinJobAge=600
KillWait=30
NodeName=$HOST CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
  cat >/etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=$HOST
SlurmUser=root
PidFile=/run/slurm/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmci
StorageLoc=slurm_acct_db
EOF
  chmod 600 /etc/slurm/slurmdbd.conf
}

start() {
  mkdir -p "$STATE_DIR"
  if [[ -s $PIDS ]]; then log "already started ($PIDS); stop it first"; return 1; fi
  : >"$PIDS"
  write_configs
  # munge
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  record munged "$(pid_of_file /run/munge/munged.pid)"
  wait_for 10 munge sh -c 'munge -n | unmunge'
  # mariadb for slurmdbd (accounting: without it submitit cannot see a job cancelled early)
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  mariadbd --user=mysql --skip-networking=0 --bind-address=127.0.0.1 --pid-file=/run/mysqld/mysqld.pid \
    >"$STATE_DIR/mariadb.log" 2>&1 &
  record mariadbd $!
  wait_for 30 mariadb mariadb -e 'select 1'
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmci';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  slurmdbd
  record slurmdbd "$(pid_of_file /run/slurm/slurmdbd.pid)"
  wait_for 30 slurmdbd sacctmgr -n show cluster
  sacctmgr -i add cluster ci >/dev/null 2>&1 || true
  slurmctld
  record slurmctld "$(pid_of_file /run/slurm/slurmctld.pid)"
  slurmd
  record slurmd "$(pid_of_file /run/slurm/slurmd.pid)"
  wait_for 60 "an idle node" sh -c 'sinfo -h -o %T | grep -qx idle'
  log "cluster up: $(sinfo -h -o '%P %D %T %c CPUs')"
}

stop() {
  [[ -s $PIDS ]] || { log "nothing recorded in $PIDS"; return 0; }
  if command -v squeue >/dev/null && grep -q '^slurmctld ' "$PIDS"; then
    scancel --user="$(id -un)" >/dev/null 2>&1 || true
    wait_for 60 "an empty queue" sh -c '[ -z "$(squeue -h 2>/dev/null)" ]' || true
  fi
  # Reverse start order; each daemon by its recorded PID: TERM, then KILL after 15 s.
  local name pid
  while read -r name pid; do
    [[ -n $pid ]] || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait_for 15 "$name to stop" sh -c "! kill -0 $pid" || { log "$name ($pid) ignored TERM: KILL"; kill -KILL "$pid" 2>/dev/null || true; }
      log "$name stopped (pid $pid)"
    fi
  done < <(tac "$PIDS")
  rm -f "$PIDS"
}

status() {
  [[ -s $PIDS ]] || { echo "not started"; return 0; }
  while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then echo "$name $pid running"; else echo "$name $pid gone"; fi
  done <"$PIDS"
  sinfo 2>/dev/null || true
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
