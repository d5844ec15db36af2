#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, to try and test profiles/slurm (README, "Clusters").
#
#   profiles/slurm/local-cluster.sh up      install (once) and start munge, MariaDB, slurmdbd,
#                                           slurmctld and slurmd; safe to run again
#   profiles/slurm/local-cluster.sh status  exit 0 when every daemon runs and the node is usable
#   profiles/slurm/local-cluster.sh down    cancel the cluster's jobs, stop the daemons it started
#
# Needs root and apt-get (Debian/Ubuntu: slurm-wlm 22.05 on Debian 12); no systemd. Accounting
# goes through slurmdbd, so `sacct` works (the SLURM executor plugin's status command).
# Partitions `cpu` (default) and `gpu` share the node; the node declares fake GPUs (GRES gpu
# without a device), so jobs asking for GPUs are scheduled on a CPU-only machine.
#
# Environment (read by `up`; a changed value rewrites the configuration and restarts SLURM):
#   REPGEOM_SLURM_CPUS       CPUs the node declares (default: nproc)
#   REPGEOM_SLURM_MEM_MB     memory the node declares in MB (default: 90% of MemTotal)
#   REPGEOM_SLURM_GPUS       fake GPUs the node declares (default 1; 0 for none)
#   REPGEOM_SLURM_APT_CACHE  where downloaded packages are kept (default /var/cache/repgeom-slurm)
# A node may declare more CPUs or memory than the machine has (SlurmdParameters=config_overrides):
# SLURM then schedules requests of that size, and the jobs share the real cores.
set -euo pipefail

MARKER="# written by repgeom profiles/slurm/local-cluster.sh"
CLUSTER=repgeom
ACCOUNT=repgeom
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
APT_CACHE=${REPGEOM_SLURM_APT_CACHE:-/var/cache/repgeom-slurm}
CPUS=${REPGEOM_SLURM_CPUS:-$(nproc)}
MEM_MB=${REPGEOM_SLURM_MEM_MB:-$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)}
GPUS=${REPGEOM_SLURM_GPUS:-1}
SLURM_CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
GRES_CONF=/etc/slurm/gres.conf
LOG_DIR=/var/log/slurm
# daemon -> PID file (the daemons are started with these paths)
declare -A PIDFILE=(
  [munged]=/run/munge/munged.pid
  [mariadbd]=/run/mysqld/mysqld.pid
  [slurmdbd]=/run/slurm/slurmdbd.pid
  [slurmctld]=/run/slurm/slurmctld.pid
  [slurmd]=/run/slurm/slurmd.pid
)
START_ORDER=(munged mariadbd slurmdbd slurmctld slurmd)
STOP_ORDER=(slurmd slurmctld slurmdbd mariadbd munged)

say() { echo "local-cluster: $*"; }
die() {
  echo "local-cluster: $*" >&2
  exit 1
}

running() { # daemon -> status 0 when its PID file names a live process
  local f=${PIDFILE[$1]}
  [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

wait_for() { # seconds description command...: poll once a second
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq "$seconds"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "$what did not come up within ${seconds} s (logs: $LOG_DIR, /var/log/mariadbd.out)"
}

preflight() {
  [ "$(id -u)" = 0 ] || die "needs root (it installs packages and starts daemons)"
  if ! installed; then
    command -v apt-get >/dev/null || die "needs apt-get to install ${PACKAGES[*]}"
  fi
  if [ -e "$SLURM_CONF" ] && ! grep -qF "$MARKER" "$SLURM_CONF"; then
    die "$SLURM_CONF exists and was not written by this script; not touching it"
  fi
}

installed() {
  local states
  states=$(dpkg-query -W -f='${Status}\n' "${PACKAGES[@]}" 2>/dev/null) || return 1
  [ "$(grep -c "install ok installed" <<<"$states")" = "${#PACKAGES[@]}" ]
}

has_line() { # line command...: status 0 when the command prints that exact line
  local out
  out=$("${@:2}") || return 1
  grep -qxF -- "$1" <<<"$out"
}

install_packages() {
  if installed; then return 0; fi
  export DEBIAN_FRONTEND=noninteractive
  mkdir -p "$APT_CACHE/partial"
  # downloaded .deb files stay in $APT_CACHE: a later install reuses them without downloading
  local apt=(apt-get install -y -q --no-install-recommends -o "Dir::Cache::archives=$APT_CACHE/")
  local t0=$SECONDS
  if ! "${apt[@]}" "${PACKAGES[@]}"; then
    apt-get update -q
    "${apt[@]}" "${PACKAGES[@]}"
  fi
  say "packages installed in $((SECONDS - t0)) s (cached in $APT_CACHE)"
}

node_config() { # the generated slurm.conf and gres.conf, on stdout (gres after a line '---')
  local host gres_line="" node_gres=""
  host=$(hostname -s)
  if [ "$GPUS" -gt 0 ]; then
    gres_line="GresTypes=gpu"
    node_gres="Gres=gpu:$GPUS"
  fi
  cat <<EOF
$MARKER
ClusterName=$CLUSTER
SlurmctldHost=$host
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=${PIDFILE[slurmctld]}
SlurmdPidFile=${PIDFILE[slurmd]}
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=300
SlurmctldTimeout=60
SlurmdTimeout=60
$gres_line
NodeName=$host CPUs=$CPUS RealMemory=$MEM_MB $node_gres State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL Default=NO MaxTime=INFINITE State=UP
EOF
  echo ---
  # a GPU needs a device file, else the node is drained as invalid; /dev/null stands in for it
  [ "$GPUS" -gt 0 ] && echo "NodeName=$host Name=gpu File=/dev/null Count=$GPUS"
  return 0
}

write_config() { # status 0 when slurm.conf or gres.conf changed
  local text slurm gres changed=1
  text=$(node_config)
  slurm=${text%%$'\n'---*}
  gres=${text#*---}
  gres=${gres#$'\n'}
  mkdir -p /etc/slurm
  if [ "$(cat "$SLURM_CONF" 2>/dev/null)" != "$slurm" ]; then
    printf '%s\n' "$slurm" >"$SLURM_CONF"
    changed=0
  fi
  if [ -n "$gres" ]; then
    if [ "$(cat "$GRES_CONF" 2>/dev/null)" != "$gres" ]; then
      printf '%s\n' "$gres" >"$GRES_CONF"
      changed=0
    fi
  elif [ -e "$GRES_CONF" ]; then
    rm -f "$GRES_CONF"
    changed=0
  fi
  return $changed
}

start_munge() {
  running munged && return 0
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged --pid-file="${PIDFILE[munged]}"
  wait_for 10 munge bash -c 'munge -n | unmunge'
}

start_mariadb() {
  running mariadbd && return 0
  mkdir -p /run/mysqld
  chown mysql:mysql /run/mysqld
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  # setsid: the server does not belong to the caller's session or process group
  setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
    --pid-file="${PIDFILE[mariadbd]}" --socket=/run/mysqld/mysqld.sock \
    </dev/null >>/var/log/mariadbd.out 2>&1 &
  wait_for 60 MariaDB mysqladmin ping
}

db_password() { # the accounting database password: kept from an earlier run, else new
  if [ -s "$DBD_CONF" ] && grep -q '^StoragePass=' "$DBD_CONF"; then
    sed -n 's/^StoragePass=//p' "$DBD_CONF"
  else
    openssl rand -hex 16
  fi
}

start_slurmdbd() {
  running slurmdbd && return 0
  local pass
  pass=$(db_password)
  mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost';
    ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
  cat >"$DBD_CONF" <<EOF
$MARKER
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
LogFile=$LOG_DIR/slurmdbd.log
PidFile=${PIDFILE[slurmdbd]}
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$pass
EOF
  chown slurm:slurm "$DBD_CONF"
  chmod 600 "$DBD_CONF"
  /usr/sbin/slurmdbd
  wait_for 60 slurmdbd sacctmgr -n list cluster
}

start_slurm() {
  if ! has_line "$CLUSTER" sacctmgr -n -P list cluster format=cluster; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
  if ! running slurmctld; then
    /usr/sbin/slurmctld
  fi
  wait_for 60 slurmctld bash -c 'scontrol ping | grep -q UP'
  if ! running slurmd; then
    /usr/sbin/slurmd
  fi
  wait_for 60 "the node" node_usable
  if ! has_line "$ACCOUNT" sacctmgr -n -P list account format=account; then
    sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description=repgeom Organization=repgeom >/dev/null
  fi
  if ! has_line "$ACCOUNT" sacctmgr -n -P list assoc user=root format=account; then
    sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null
  fi
}

node_usable() {
  local state
  state=$(sinfo -h -N -o %T) || return 1
  grep -qE '^(idle|mixed|allocated|completing)$' <<<"$state"
}

stop_daemons() { # names...: SIGTERM each live daemon by its PID file and wait for it to end
  local d pid
  for d in "$@"; do
    running "$d" || continue
    pid=$(cat "${PIDFILE[$d]}")
    say "stopping $d ($pid)"
    kill "$pid"
    for _ in $(seq 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    kill -0 "$pid" 2>/dev/null && die "$d ($pid) did not stop within 30 s"
    rm -f "${PIDFILE[$d]}"
  done
  return 0
}

smoke_test() { # one CPU job and one GPU job through srun, both COMPLETED in sacct
  local ids
  ids=$(srun -p cpu -t 1 -n 1 --mem=100 printenv SLURM_JOB_ID) || die "srun in partition cpu failed"
  if [ "$GPUS" -gt 0 ]; then
    ids+=,$(srun -p gpu --gpus=1 -t 1 -n 1 --mem=100 printenv SLURM_JOB_ID) ||
      die "srun with --gpus=1 in partition gpu failed"
  fi
  local commas=${ids//[^,]/}
  wait_for 30 "accounting (sacct)" bash -c \
    "[ \"\$(sacct -n -X -P -j $ids -o State | grep -cx COMPLETED)\" = $((${#commas} + 1)) ]"
}

up() {
  preflight
  local t0=$SECONDS
  install_packages
  mkdir -p /var/spool/slurmctld /var/spool/slurmd "$LOG_DIR" /run/slurm
  chown slurm:slurm /var/spool/slurmctld "$LOG_DIR" /run/slurm
  if write_config; then
    say "configuration written to $SLURM_CONF"
    stop_daemons slurmd slurmctld # they read it only when they start
  fi
  start_munge
  start_mariadb
  start_slurmdbd
  start_slurm
  smoke_test
  sinfo
  say "up in $((SECONDS - t0)) s"
}

status() {
  local ok=0 d
  for d in "${START_ORDER[@]}"; do
    if running "$d"; then
      echo "$d: running ($(cat "${PIDFILE[$d]}"))"
    else
      echo "$d: stopped"
      ok=1
    fi
  done
  if [ $ok = 0 ]; then
    sinfo
    node_usable || ok=1
  fi
  return $ok
}

down() {
  [ "$(id -u)" = 0 ] || die "needs root"
  if running slurmctld; then
    # the cluster's own jobs (it runs nothing else)
    scancel --quiet --user=root || true
    for _ in $(seq 30); do
      [ -z "$(squeue -h -o %i)" ] && break
      sleep 1
    done
  fi
  stop_daemons "${STOP_ORDER[@]}"
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
*)
  echo "usage: $0 up|down|status" >&2
  exit 2
  ;;
esac
