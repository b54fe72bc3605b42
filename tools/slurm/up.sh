#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster with accounting and four fake GPUs, for the cluster test
# (tests/test_cluster.py) and for trying profiles/slurm/ without a real cluster. Debian 12, run as root,
# no systemd. Recipe and pitfalls: ../../docs/cluster.md ("The test cluster").
#
#   sudo tools/slurm/up.sh      # ~20 s once the packages are installed, ~1-2 min on a fresh machine
#   sudo tools/slurm/down.sh    # stops exactly the daemons this script started, by PID
#
# Daemons: munged, MariaDB, slurmdbd, slurmctld, slurmd. Partitions `cpu` (default) and `gpu`, account
# `vcmeasure`: the names profiles/slurm/config.v8+.yaml uses, so the profile runs here unedited.
set -euo pipefail
W=${VCMEASURE_SLURM_DIR:-/tmp/vcmeasure-slurm}
# The node is declared bigger than the machine (config_overrides) so that the profile's real-cluster requests
# (e.g. 4 CPUs and 16 GB per GPU job) schedule on a 2-core CI runner; nothing is enforced without cgroups.
NODE_CPUS=${VCMEASURE_SLURM_CPUS:-16}
NODE_MEM_MB=${VCMEASURE_SLURM_MEM_MB:-64000}
H=$(hostname -s)
t0=$(date +%s)
log() { echo "[slurm up +$(( $(date +%s) - t0 ))s] $*"; }

[ "$(id -u)" = 0 ] || { echo "tools/slurm/up.sh: must run as root (installs packages, starts daemons)" >&2; exit 2; }
if [ -s "$W/slurmctld.pid" ] && kill -0 "$(cat "$W/slurmctld.pid")" 2>/dev/null; then
  echo "tools/slurm/up.sh: a cluster from $W is already running; run tools/slurm/down.sh first" >&2; exit 2
fi
# A fresh state directory each time: leftover state can restore a drained node or old jobs.
rm -rf "$W"
mkdir -p "$W"/{state/ctld,state/d,log,fakegpu,mysql}
# On any failure stop what was already started, so that nothing is left running.
trap 'echo "tools/slurm/up.sh: failed at line $LINENO; logs in $W/log" >&2; "$(dirname "$0")/down.sh"' ERR

pkgs="slurmctld slurmd slurm-client slurmdbd munge mariadb-server"
missing=$(for p in $pkgs; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d 101: the packages' postinst must not try to start services (no systemd here; we start them)
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends $missing >"$W/log/apt.log" 2>&1 \
    || { rm -f /usr/sbin/policy-rc.d; tail -20 "$W/log/apt.log" >&2; exit 1; }
  rm -f /usr/sbin/policy-rc.d
  log "installed: $(echo $missing)"
fi

# --- munge (the Debian postinst generates /etc/munge/munge.key)
[ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create
mkdir -p /run/munge && chown munge:munge /run/munge
rm -f /run/munge/munged.pid
runuser -u munge -- /usr/sbin/munged   # daemonizes itself; its pid file is written by the munge user
for _ in $(seq 20); do [ -s /run/munge/munged.pid ] && break; sleep 0.25; done
cp /run/munge/munged.pid "$W/munged.pid"

# --- fake GPUs: File= must exist and be a device; file-less GPUs are dropped, regular files rejected
for i in 0 1 2 3; do ln -sf /dev/null "$W/fakegpu/nvidia$i"; done

# The config must sit at the default path: the plugin's job step strips SLURM_* (SLURM_CONF too).
mkdir -p /etc/slurm
cat >/etc/slurm/slurm.conf <<CONF
ClusterName=vcmeasure
SlurmctldHost=$H
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$W/state/ctld
SlurmdSpoolDir=$W/state/d
SlurmctldPidFile=$W/state/slurmctld.pid
SlurmdPidFile=$W/state/slurmd.pid
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
AccountingStorageEnforce=associations
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/filetxt
JobCompLoc=$W/log/jobcomp.txt
GresTypes=gpu
NodeName=$H CPUs=$NODE_CPUS RealMemory=$NODE_MEM_MB Gres=gpu:4 State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
CONF
echo "NodeName=$H Name=gpu File=$W/fakegpu/nvidia[0-3]" >/etc/slurm/gres.conf

# --- MariaDB on its socket only (no TCP port to collide with), then slurmdbd
mkdir -p /run/mysqld && chown mysql:mysql "$W/mysql" /run/mysqld
mariadb-install-db --user=mysql --datadir="$W/mysql" --skip-test-db >"$W/log/mariadb-install.log" 2>&1
mariadbd --user=mysql --datadir="$W/mysql" --socket=/run/mysqld/mysqld.sock --skip-networking \
  --pid-file="$W/mysql/mariadbd.pid" >"$W/log/mariadb.log" 2>&1 &
echo $! >"$W/mariadb.pid"
for _ in $(seq 60); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
cat >/etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$W/log/slurmdbd.log
PidFile=$W/state/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
CONF
chmod 600 /etc/slurm/slurmdbd.conf
slurmdbd -D >"$W/log/slurmdbd.out" 2>&1 &
echo $! >"$W/slurmdbd.pid"
for _ in $(seq 60); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.5; done
sacctmgr -i add cluster vcmeasure >/dev/null
sacctmgr -i add account vcmeasure Description=vcmeasure Organization=vcmeasure >/dev/null
sacctmgr -i add user root Account=vcmeasure DefaultAccount=vcmeasure >/dev/null
log "accounting up"

slurmctld -D >"$W/log/slurmctld.out" 2>&1 &
echo $! >"$W/slurmctld.pid"
slurmd -D >"$W/log/slurmd.out" 2>&1 &
echo $! >"$W/slurmd.pid"
state=""
for _ in $(seq 120); do
  state=$(sinfo -h -N -p cpu -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break; sleep 0.5
done
[ "$state" = idle ] || { echo "tools/slurm/up.sh: node not idle (state '$state'); see $W/log" >&2; exit 1; }
sinfo -o '%P %a %D %t %N %G'
timeout 60 srun -p gpu -t 1 --gpus=1 bash -c 'echo "srun ok on $(hostname): CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"'
log "cluster accepts jobs (state and logs in $W)"
