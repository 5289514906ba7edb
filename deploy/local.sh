#!/usr/bin/env bash
# Runs a whole towerps cluster on this machine (127.0.0.1, ports chosen at run time):
# 1 scheduler, N parameter servers, M workers. Every process logs under
# <run_dir>/logs (glog) and appends to <run_dir>/metrics.jsonl; the final checkpoint
# lands in <run_dir>/checkpoint/. Every process started is stopped on exit.
#
# Ctrl-C / SIGTERM stop the job gracefully: SIGTERM goes to the scheduler first,
# which has the workers report their progress, writes a final checkpoint and tells
# every process to exit; then anything left is cleaned up. A second Ctrl-C kills
# everything at once. Exit codes: 0 the job finished; 1 it failed (or the stop did); 130 / 143
# stopped by SIGINT / SIGTERM with a final checkpoint (continue with --resume).
#
# Usage: deploy/local.sh --config FILE --dataset DIR --run_dir DIR
#          [--servers N] [--workers M] [--staleness S] [--partitions P]
#          [--checkpoint_every_steps K] [--log_losses] [--resume] [--secure]
#          [--towerps BINARY]
# --resume continues a job that stopped (a crash, Ctrl-C) from the newest complete
# checkpoint under <run_dir>/checkpoint: the servers load their shards, the global step
# and every data partition's progress carry on from there.
# --secure writes the job's CURVE keys to <run_dir>/keys (towerps keygen, once) and runs
# every process with --curve_dir: connections are encrypted and only the job's keys get
# in (docs/security.md); `towerps ctl --curve_dir=<run_dir>/keys` then controls the job.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="" dataset="" run_dir="" servers=2 workers=2 staleness=-1 partitions=0
checkpoint_every_steps=0 log_losses=false resume="" secure=false
towerps="$root/build/cmd/towerps"
args=()
for a in "$@"; do  # accept --flag=value as well as --flag value
  case "$a" in --*=*) args+=("${a%%=*}" "${a#*=}") ;; *) args+=("$a") ;; esac
done
set -- "${args[@]}"
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --dataset) dataset="$2"; shift 2 ;;
    --run_dir) run_dir="$2"; shift 2 ;;
    --servers) servers="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --staleness) staleness="$2"; shift 2 ;;
    --partitions) partitions="$2"; shift 2 ;;
    --checkpoint_every_steps) checkpoint_every_steps="$2"; shift 2 ;;
    --log_losses) log_losses=true; shift ;;
    --resume) resume=latest; shift ;;
    --secure) secure=true; shift ;;
    --towerps) towerps="$2"; shift 2 ;;
    *) echo "deploy/local.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ -z "$config" ] || [ -z "$dataset" ] || [ -z "$run_dir" ]; then
  echo "deploy/local.sh: --config, --dataset and --run_dir are required" >&2; exit 2
fi
[ -x "$towerps" ] || { echo "deploy/local.sh: $towerps not built (cmake --build build)" >&2; exit 2; }
mkdir -p "$run_dir/logs"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
# Until the processes run, a signal just exits; afterwards it asks for a stop.
stop_code=""
trap 'exit 130' INT
trap 'exit 143' TERM

curve=()
if [ "$secure" = true ]; then
  if [ ! -s "$run_dir/keys/allowed_keys" ]; then
    "$towerps" keygen --output_dir="$run_dir/keys" --num_servers="$servers" \
      --num_workers="$workers" >/dev/null
  fi
  curve=(--curve_dir="$run_dir/keys")
fi
common=(--config="$config" --dataset="$dataset" --run_dir="$run_dir" --log_dir="$run_dir/logs"
        --logtostderr=false "${curve[@]}")
endpoint_file="$run_dir/scheduler.endpoint"
rm -f "$endpoint_file"
"$towerps" scheduler "${common[@]}" --num_servers="$servers" --num_workers="$workers" \
  --num_partitions="$partitions" --staleness="$staleness" \
  --checkpoint_every_steps="$checkpoint_every_steps" --endpoint_file="$endpoint_file" \
  --resume="$resume" \
  > "$run_dir/scheduler.out" 2> "$run_dir/scheduler.err" &
scheduler_pid=$!
pids+=("$scheduler_pid")
for _ in $(seq 1 300); do  # up to 30 s for the scheduler to bind
  [ -s "$endpoint_file" ] && break
  kill -0 "$scheduler_pid" 2>/dev/null || { cat "$run_dir/scheduler.err" >&2; exit 1; }
  sleep 0.1
done
[ -s "$endpoint_file" ] || { echo "deploy/local.sh: the scheduler did not start" >&2; exit 1; }
endpoint="$(cat "$endpoint_file")"
echo "local cluster: scheduler at $endpoint, $servers servers, $workers workers, run dir $run_dir" >&2

for s in $(seq 0 $((servers - 1))); do
  # Every process shares this machine's cores: servers answer on their io thread
  # (no hand-off to handler threads, fewer context switches per request).
  "$towerps" ps "${common[@]}" --scheduler="$endpoint" --rank="$s" --handler_threads=0 \
    > "$run_dir/ps-$s.out" 2> "$run_dir/ps-$s.err" &
  pids+=("$!")
done
worker_pids=()
for w in $(seq 0 $((workers - 1))); do
  "$towerps" worker "${common[@]}" --scheduler="$endpoint" --worker_rank="$w" \
    --worker_log_losses="$log_losses" > "$run_dir/worker-$w.out" 2> "$run_dir/worker-$w.err" &
  pids+=("$!")
  worker_pids+=("$!")
done

# Until every worker is done, or the scheduler ends the job early (it fails the job
# when a parameter server dies; the workers exit on their own within seconds), or a
# stop is asked for.
trap 'stop_code=130' INT
trap 'stop_code=143' TERM
while [ -z "$stop_code" ]; do
  running=0
  for pid in "${worker_pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=1; done
  [ "$running" -eq 0 ] && break
  kill -0 "$scheduler_pid" 2>/dev/null || break
  sleep 0.2
done
if [ -n "$stop_code" ]; then
  echo "deploy/local.sh: stopping the job (the workers report their progress, then a final checkpoint)" >&2
  # A second signal forces: every process is killed (no final checkpoint).
  force() {
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  }
  trap force INT TERM
  kill -TERM "$scheduler_pid" 2>/dev/null || true
  stopped=0
  while kill -0 "$scheduler_pid" 2>/dev/null; do sleep 0.2; done
  wait "$scheduler_pid" || stopped=$?
  for pid in "${pids[@]}"; do  # they follow the scheduler's final phase
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  done
  cat "$run_dir/scheduler.out"
  if [ "$stopped" -ne 0 ]; then
    tail -n 3 "$run_dir/scheduler.err" >&2
    echo "deploy/local.sh: the stop failed" >&2
    exit 1
  fi
  echo "deploy/local.sh: stopped with a final checkpoint; continue with --resume" >&2
  exit "$stop_code"
fi
failed=0
for pid in "${worker_pids[@]}"; do
  kill -0 "$pid" 2>/dev/null && continue  # still running: the scheduler ended the job
  wait "$pid" || failed=1
done
if [ "$failed" -ne 0 ]; then
  echo "deploy/local.sh: a worker failed:" >&2
  tail -n 5 "$run_dir"/worker-*.err >&2
  "$towerps" ctl --scheduler="$endpoint" "${curve[@]}" stop >/dev/null 2>&1 || true
fi
wait "$scheduler_pid" || failed=1
cat "$run_dir/scheduler.out"
if [ "$failed" -ne 0 ]; then
  tail -n 3 "$run_dir/scheduler.err" >&2
  echo "deploy/local.sh: the job failed; continue it from its last checkpoint with --resume" >&2
fi
exit "$failed"
