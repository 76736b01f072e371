#!/usr/bin/env bash
# A one-node Slurm cluster on 127.0.0.1 for the scale-out tests and `bench cache --executor slurm`, started by
# hand (no systemd): munge, MariaDB (accounting), slurmdbd, slurmctld, slurmd.
#
#   bash Tools/ci/slurm.sh install   # Debian packages (slurm-wlm, slurmdbd, munge, mariadb-server), if missing
#   bash Tools/ci/slurm.sh start     # starts the daemons, waits for the node to be idle; PIDs in $STATE/pids
#   bash Tools/ci/slurm.sh stop      # stops each daemon it started, by its PID
#
# Needs root. Writes /etc/slurm/slurm.conf and slurmdbd.conf (refusing to replace files it did not write),
# state and logs under $STORYLOOM_SLURM_STATE (default /tmp/storyloom-slurm).
set -euo pipefail
STATE="${STORYLOOM_SLURM_STATE:-/tmp/storyloom-slurm}"
CONF=/etc/slurm
MARK="# written by storyloom Tools/ci/slurm.sh"
CPUS="${STORYLOOM_SLURM_CPUS:-$(nproc)}"

install() {
  local packages=(slurm-wlm slurmctld slurmd slurmdbd slurm-client munge mariadb-server)
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

write_conf() {
  local file="$1"
  if [ -e "$file" ] && ! grep -qF "$MARK" "$file"; then
    echo "error: $file exists and was not written by this script; not replacing it" >&2
    exit 1
  fi
  cat > "$file"
}

pid_of() { cat "$1" 2>/dev/null || true; }

start() {
  [ "$(id -u)" -eq 0 ] || { echo "error: needs root (daemons, /etc/slurm)" >&2; exit 1; }
  if [ -f "$STATE/pids" ] && awk '{print $2}' "$STATE/pids" | xargs -r kill -0 2>/dev/null; then
    echo "slurm: already running (PIDs in $STATE/pids)" >&2
    return 0
  fi
  mkdir -p "$STATE"/{state,spool,log} "$CONF"
  : > "$STATE/pids"

  # munge: the key comes with the package.
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
  echo "munged $(pid_of /run/munge/munged.pid)" >> "$STATE/pids"

  # MariaDB on its socket only, with the accounting database.
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  /usr/sbin/mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock \
    --pid-file=/run/mysqld/mysqld.pid --log-error="$STATE/log/mariadb.log" >/dev/null 2>&1 &
  echo "mariadbd $!" >> "$STATE/pids"
  for _ in $(seq 100); do mariadb --socket=/run/mysqld/mysqld.sock -e "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
  mariadb --socket=/run/mysqld/mysqld.sock -e "
    CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'storyloom-ci';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"

  write_conf "$CONF/slurmdbd.conf" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=storyloom-ci
StorageLoc=slurm_acct_db
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
EOF
  chmod 600 "$CONF/slurmdbd.conf"

  write_conf "$CONF/slurm.conf" <<EOF
$MARK
ClusterName=storyloom
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=300
NodeName=localhost CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

  /usr/sbin/slurmdbd
  for _ in $(seq 100); do [ -s "$STATE/slurmdbd.pid" ] && break; sleep 0.1; done
  echo "slurmdbd $(pid_of "$STATE/slurmdbd.pid")" >> "$STATE/pids"
  # slurmctld registers the cluster with slurmdbd; the first start waits for its schema.
  for _ in $(seq 300); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
  /usr/sbin/slurmctld
  for _ in $(seq 100); do [ -s "$STATE/slurmctld.pid" ] && break; sleep 0.1; done
  echo "slurmctld $(pid_of "$STATE/slurmctld.pid")" >> "$STATE/pids"
  /usr/sbin/slurmd -N localhost
  for _ in $(seq 100); do [ -s "$STATE/slurmd.pid" ] && break; sleep 0.1; done
  echo "slurmd $(pid_of "$STATE/slurmd.pid")" >> "$STATE/pids"

  for _ in $(seq 120); do
    if [ "$(sinfo -h -o %T 2>/dev/null | head -1)" = "idle" ]; then
      # Accounting answers too: sacct is what the runs read final states from.
      if sacct -n -X -S now-1minute >/dev/null 2>&1; then
        echo "slurm: node localhost idle ($CPUS CPUs); state in $STATE" >&2
        return 0
      fi
    fi
    sleep 0.5
  done
  echo "error: the Slurm node did not become idle; logs in $STATE/log" >&2
  sinfo >&2 || true
  tail -n 20 "$STATE"/log/*.log >&2 || true
  exit 1
}

stop() {
  [ -f "$STATE/pids" ] || return 0
  # Reverse order: slurmd first, munged last.
  tac "$STATE/pids" | while read -r name pid; do
    [ -n "$pid" ] || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    echo "stopped $name ($pid)" >&2
  done
  rm -f "$STATE/pids"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
