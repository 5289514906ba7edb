#!/usr/bin/env bash
# deploy/slurm/task.sh: one process of a towerps job, as one task of the Slurm step that
# deploy/slurm/towerps.sbatch starts (srun, 1 + S + W tasks). Not run by hand.
#
# Role by SLURM_PROCID: 0 the scheduler, 1..S parameter server rank PROCID-1, then
# worker rank PROCID-1-S. Every process gets --flagfile=JOB first, then --host (this
# node's IPv4 address: TOWERPS_HOST, else Slurm's NodeAddr of SLURMD_NODENAME, else the
# node name or host name resolved, a loopback answer only as a last resort),
# --log_dir=<run_dir>/logs and its rank; the scheduler --recover and the batch step's
# --resume=latest. The scheduler writes <run_dir>/scheduler.endpoint (the batch step
# removed the previous allocation's), where servers and workers find it (waiting up to
# --scheduler_timeout_ms). stdout/stderr go to
# <run_dir>/{scheduler,ps-R,worker-W}.{out,err}, appended to (a requeued job keeps the
# earlier runs' lines).
#
# The process runs under deploy/supervise.sh: a crash (non-zero exit, a signal) while
# the job runs restarts it with the same command line after a backoff (the scheduler
# takes the job over with --recover), up to --max_restarts; restarts are logged in
# <run_dir>/supervisor-<role>-<rank>.log. SIGTERM/SIGINT (scancel, requeue,
# preemption, the time limit): no restart from then on; the signal is passed on (Slurm
# signals every process of the step anyway) and the task waits for its process: the
# scheduler has the workers report, writes a final checkpoint and ends the job, the
# servers serve until then (--stop_grace_ms). Slurm's KillWait bounds that wait.
# Exit code: the process's (0 done; after a graceful stop 0, a worker 128+signal);
# 1 restarts ran out.
#
# Usage (towerps.sbatch): task.sh --flagfile JOB --towerps BIN --run_dir DIR
#   --num_servers S --num_workers W [--resume] [--max_restarts N] [--restart_backoff_ms MS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
job="" towerps="" run_dir="" servers="" workers="" resume=() max_restarts=5 backoff_ms=500
args=()
for a in "$@"; do
  case "$a" in --*=*) args+=("${a%%=*}" "${a#*=}") ;; *) args+=("$a") ;; esac
done
set -- "${args[@]}"
while [ $# -gt 0 ]; do
  case "$1" in
    --flagfile) job="$2"; shift 2 ;;
    --towerps) towerps="$2"; shift 2 ;;
    --run_dir) run_dir="$2"; shift 2 ;;
    --num_servers) servers="$2"; shift 2 ;;
    --num_workers) workers="$2"; shift 2 ;;
    --resume) resume=(--resume=latest); shift ;;
    --max_restarts) max_restarts="$2"; shift 2 ;;
    --restart_backoff_ms) backoff_ms="$2"; shift 2 ;;
    *) echo "task.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
procid="${SLURM_PROCID:?task.sh runs as a task of a Slurm step (srun)}"
if [ "$procid" -eq 0 ]; then
  role=scheduler rank=0
elif [ "$procid" -le "$servers" ]; then
  role=ps rank=$((procid - 1))
elif [ "$procid" -le $((servers + workers)) ]; then
  role=worker rank=$((procid - 1 - servers))
else
  echo "task.sh: task $procid is beyond 1 + $servers servers + $workers workers" >&2; exit 2
fi
say() { echo "task.sh: $role $rank: $*" >&2; }

is_ipv4() { [[ "$1" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; }
node_ipv4() {  # this node's IPv4 address for --host
  if [ -n "${TOWERPS_HOST:-}" ]; then echo "$TOWERPS_HOST"; return; fi
  local node="${SLURMD_NODENAME:-}" name addr loopback="" nodeaddr=""
  [ -n "$node" ] && nodeaddr="$(scontrol show node "$node" -o 2>/dev/null |
    grep -oE '(^| )NodeAddr=[^ ]+' | cut -d= -f2)" || true
  if [ -n "$nodeaddr" ] && is_ipv4 "$nodeaddr"; then echo "$nodeaddr"; return; fi
  for name in $nodeaddr $node "$(hostname)"; do
    for addr in $(getent ahostsv4 "$name" 2>/dev/null | awk '{ print $1 }' | uniq); do
      case "$addr" in 127.*) loopback="${loopback:-$addr}" ;; *) echo "$addr"; return ;; esac
    done
  done
  addr="$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9.]+$' | grep -v '^127\.' | head -1)"
  [ -n "$addr" ] && { echo "$addr"; return; }
  say "no IPv4 address other than loopback for ${node:-this node}; using ${loopback:-127.0.0.1}"
  echo "${loopback:-127.0.0.1}"
}
host="$(node_ipv4)"

# shellcheck source=deploy/supervise.sh
source "$root/deploy/supervise.sh"
SUP_KEEP_LOGS=true
recover=()
if sup_has_recover "$towerps"; then recover=(--recover) SUP_RECOVER=true; fi
sup_init "$run_dir" "$max_restarts" "$backoff_ms" "$role-$rank"
stop=""
trap 'stop=TERM' TERM
trap 'stop=INT' INT

common=(--flagfile="$job" --host="$host" --log_dir="$run_dir/logs" --logtostderr=false)
case "$role" in
  scheduler) cmd=("$towerps" scheduler "${common[@]}" "${resume[@]}" "${recover[@]}") ;;
  ps) cmd=("$towerps" ps "${common[@]}" --rank="$rank") ;;
  worker) cmd=("$towerps" worker "${common[@]}" --worker_rank="$rank") ;;
esac
name="$role"
[ "$role" = scheduler ] || name="$role-$rank"
say "on ${SLURMD_NODENAME:-?} ($host), job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0})"
sup_start "$role" "$rank" "$run_dir/$name.out" "$run_dir/$name.err" "${cmd[@]}"
slot="$role $rank"
while [ -z "$stop" ] && [ -z "$sup_exhausted" ] && [ -z "${sup_status[$slot]}" ]; do
  sup_poll
  sup_sleep 0.2
done
sup_over
if [ -n "$stop" ]; then
  say "SIG$stop: no more restarts; waiting for the process to finish"
  pid="$(sup_pid "$role" "$rank")"
  [ -n "$pid" ] && kill "-$stop" "$pid" 2>/dev/null || true
  while [ -z "${sup_status[$slot]}" ]; do
    sup_poll
    sup_sleep 0.2
  done
fi
if [ -n "$sup_exhausted" ]; then
  say "died more than --max_restarts=$max_restarts times"; tail -n 5 "$run_dir/$name.err" >&2
  exit 1
fi
rc="${sup_status[$slot]}"
if [ -n "$stop" ]; then
  say "stopped (exit $rc)"
elif [ "$rc" -ne 0 ]; then
  say "exited with $rc"; tail -n 3 "$run_dir/$name.err" >&2
fi
exit "$rc"
