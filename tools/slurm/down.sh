#!/usr/bin/env bash
# Stop the daemons tools/slurm/up.sh started, by their recorded PIDs only (never by name), newest first.
W=${VCMEASURE_SLURM_DIR:-/tmp/vcmeasure-slurm}
for d in slurmd slurmctld slurmdbd mariadb munged; do
  f="$W/$d.pid"
  [ -s "$f" ] || continue
  p=$(cat "$f")
  if kill "$p" 2>/dev/null; then
    for _ in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
  fi
  rm -f "$f"
  echo "[slurm down] stopped $d ($p)"
done
exit 0
