#!/usr/bin/env bash
# Runs a whole towerps cluster on this machine (127.0.0.1, ports chosen at run time):
# 1 scheduler, N parameter servers, M workers, each under a supervisor
# (deploy/supervise.sh). Every process logs under <run_dir>/logs (glog) and appends to
# <run_dir>/metrics.jsonl; the final checkpoint lands in <run_dir>/checkpoint/. Every
# process started (restarted ones too) is stopped on exit.
#
# Supervision: a process that dies while the job runs (non-zero exit or a signal) is
# started again with the same role, rank, flags and keys, after a backoff
# (--restart_backoff_ms, default 500, doubled per restart of that rank, capped at 10 s);
# the scheduler always runs with --recover (when the binary has it), so a restarted one
# takes the job over from <run_dir>/scheduler.job (docs/distributed.md, "Recovery").
# Each rank has --max_restarts (default 5) restarts; past them the job fails and
# everything is stopped. A process that exits 0 is done. Every restart is one line on
# stderr and in <run_dir>/supervisor.log; <run_dir>/pids lists "role rank pid" of the
# live processes (rewritten at every start).
#
# While the job runs, the progress line of `towerps ctl status --watch` (step of
# planned steps, loss, examples/s, LR scale, ETA; the line `towerps train` prints) goes
# to stderr every --watch_interval_ms (default 2000; 0: none); its pid is in
# <run_dir>/watch.pid, its own errors in <run_dir>/watch.err.
#
# Ctrl-C / SIGTERM stop the job gracefully: SIGTERM goes to the scheduler first,
# which has the workers report their progress, writes a final checkpoint and tells
# every process to exit; then anything left is cleaned up. A second Ctrl-C kills
# everything at once. Exit codes: 0 the job finished; 1 it failed (or the stop did); 130 / 143
# stopped by SIGINT / SIGTERM with a final checkpoint (continue with --resume).
#
# Usage: deploy/local.sh --flagfile JOB [launcher flags]
#        deploy/local.sh --config FILE --dataset DIR --run_dir DIR
#          [--servers N] [--workers M] [--staleness S] [--partitions P]
#          [--checkpoint_every_steps K] [--log_losses] [--secure]
#          [--metrics_interval_ms MS] [launcher flags]
# launcher flags: [--resume] [--towerps BINARY] [--max_restarts N] [--restart_backoff_ms MS]
#          [--watch_interval_ms MS]
#          [--checkpoint_every_ms MS] [--heartbeat_timeout_ms MS] [--stop_timeout_ms MS]
#          [--recovery_timeout_ms MS] [--full_checkpoint_every N]
#          [--keep_full_checkpoints N]        (scheduler, passed when given)
#          [--heartbeat_interval_ms MS] [--scheduler_timeout_ms MS]  (servers, workers)
#          [--request_timeout_ms MS]          (workers)
# A job file (--flagfile) is the gflags flag file every process of the job reads: the
# same one runs on Slurm and Kubernetes (deploy/README.md). Without one, the job's flags
# are written to <run_dir>/job.flags and the job runs from it.
# --resume continues a job that stopped (a crash, Ctrl-C) from the newest complete
# checkpoint under <run_dir>/checkpoint: the servers load their shards, the global step
# and every data partition's progress carry on from there.
# --secure writes the job's CURVE keys to <run_dir>/keys (towerps keygen, once) and runs
# every process with --curve_dir: connections are encrypted and only the job's keys get
# in (docs/security.md); `towerps ctl --curve_dir=<run_dir>/keys` then controls the job.
# A job file names its keys itself (--curve_dir): written at the first launch when
# that directory is empty or absent (towerps keygen), as deploy/slurm/ does.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
flagfile="" config="" dataset="" run_dir="" servers=2 workers=2 staleness=-1 partitions=0
checkpoint_every_steps=0 log_losses=false resume=() secure=false job_args=()
metrics_interval_ms=2000
max_restarts=5 restart_backoff_ms=500 watch_interval_ms=2000
towerps="$root/build/cmd/towerps"
sched_flags=() node_flags=() worker_flags=()  # pass-throughs, only when given
args=()
for a in "$@"; do  # accept --flag=value as well as --flag value
  case "$a" in --*=*) args+=("${a%%=*}" "${a#*=}") ;; *) args+=("$a") ;; esac
done
set -- "${args[@]}"
while [ $# -gt 0 ]; do
  case "$1" in
    --flagfile) flagfile="$2"; shift 2 ;;
    --config) config="$2"; job_args+=("$1"); shift 2 ;;
    --dataset) dataset="$2"; job_args+=("$1"); shift 2 ;;
    --run_dir) run_dir="$2"; job_args+=("$1"); shift 2 ;;
    --servers) servers="$2"; job_args+=("$1"); shift 2 ;;
    --workers) workers="$2"; job_args+=("$1"); shift 2 ;;
    --staleness) staleness="$2"; job_args+=("$1"); shift 2 ;;
    --partitions) partitions="$2"; job_args+=("$1"); shift 2 ;;
    --checkpoint_every_steps) checkpoint_every_steps="$2"; job_args+=("$1"); shift 2 ;;
    --log_losses) log_losses=true; job_args+=("$1"); shift ;;
    --metrics_interval_ms) metrics_interval_ms="$2"; job_args+=("$1"); shift 2 ;;
    --secure) secure=true; job_args+=("$1"); shift ;;
    --resume) resume=(--resume=latest); shift ;;
    --towerps) towerps="$2"; shift 2 ;;
    --max_restarts) max_restarts="$2"; shift 2 ;;
    --restart_backoff_ms) restart_backoff_ms="$2"; shift 2 ;;
    --watch_interval_ms) watch_interval_ms="$2"; shift 2 ;;
    --checkpoint_every_ms|--heartbeat_timeout_ms|--stop_timeout_ms|--recovery_timeout_ms|\
    --full_checkpoint_every|--keep_full_checkpoints) sched_flags+=("$1=$2"); shift 2 ;;
    --heartbeat_interval_ms|--scheduler_timeout_ms) node_flags+=("$1=$2"); shift 2 ;;
    --request_timeout_ms) worker_flags+=("$1=$2"); shift 2 ;;
    *) echo "deploy/local.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ -n "$flagfile" ] && [ ${#job_args[@]} -gt 0 ]; then
  echo "deploy/local.sh: ${job_args[0]} belongs in the job file (--flagfile holds the job)" >&2
  exit 2
fi
if [ -z "$flagfile" ] && { [ -z "$config" ] || [ -z "$dataset" ] || [ -z "$run_dir" ]; }; then
  echo "deploy/local.sh: --flagfile, or --config, --dataset and --run_dir, are required" >&2
  exit 2
fi
for n in "$max_restarts" "$restart_backoff_ms" "$watch_interval_ms"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "deploy/local.sh: '$n' is not a count" >&2; exit 2; }
done
[ -x "$towerps" ] || { echo "deploy/local.sh: $towerps not built (cmake --build build)" >&2; exit 2; }
# shellcheck source=deploy/job.sh
source "$root/deploy/job.sh"
if [ -z "$flagfile" ]; then  # the job's flags, as a job file in its run directory
  mkdir -p "$run_dir"
  flagfile="$run_dir/job.flags"
  {
    echo "# written by deploy/local.sh from its arguments"
    echo "--config=$(realpath -m "$config")"
    echo "--dataset=$(realpath -m "$dataset")"
    echo "--run_dir=$(realpath -m "$run_dir")"
    echo "--num_servers=$servers"
    echo "--num_workers=$workers"
    echo "--num_partitions=$partitions"
    echo "--staleness=$staleness"
    echo "--checkpoint_every_steps=$checkpoint_every_steps"
    echo "--worker_log_losses=$log_losses"
    echo "--metrics_interval_ms=$metrics_interval_ms"
    if [ "$secure" = true ]; then echo "--curve_dir=$(realpath -m "$run_dir/keys")"; fi
  } > "$flagfile.tmp"
  mv -f "$flagfile.tmp" "$flagfile"
fi
# A secured job's keys are written at its first launch (towerps keygen), then kept.
job_make_keys "$towerps" "$flagfile" || { echo "deploy/local.sh: towerps keygen failed" >&2; exit 1; }
job_load "$towerps" "$flagfile" || exit 2
run_dir="$job_run_dir" servers="$job_servers" workers="$job_workers"
mkdir -p "$run_dir/logs"
# shellcheck source=deploy/supervise.sh
source "$root/deploy/supervise.sh"
sup_init "$run_dir" "$max_restarts" "$restart_backoff_ms"
# The progress line: `towerps ctl status --watch` in the background (its output on
# this script's stderr), stopped by its pid when the job ends or this script exits.
watch_pid=""
start_watch() {
  [ "$watch_interval_ms" -gt 0 ] || return 0
  "$towerps" ctl --flagfile="$flagfile" --log_dir="$run_dir/logs" --logtostderr=false status \
    --watch --watch_format=line --watch_interval_ms="$watch_interval_ms" \
    >&2 2>> "$run_dir/watch.err" &
  watch_pid=$!
  echo "$watch_pid" > "$run_dir/watch.pid"
}
stop_watch() {
  [ -n "$watch_pid" ] || return 0
  kill -TERM "$watch_pid" 2>/dev/null || true
  wait "$watch_pid" 2>/dev/null || true
  watch_pid=""
}
cleanup() {
  stop_watch
  sup_over
  sup_live_pids
  for pid in "${sup_live[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${sup_live[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
# Until the processes run, a signal just exits; afterwards it asks for a stop.
stop_code=""
trap 'exit 130' INT
trap 'exit 143' TERM

# A restarted scheduler takes the job over only with --recover (a binary without it
# cannot: its death fails the job, as before supervision). Restart policy: supervise.sh.
recover=()
if sup_has_recover "$towerps"; then recover=(--recover) SUP_RECOVER=true; fi
job_state() { sup_job_state "$run_dir"; }

# The job file first: the flags after it are this launcher's, per process.
common=(--flagfile="$flagfile" --log_dir="$run_dir/logs" --logtostderr=false)
endpoint_file="$run_dir/scheduler.endpoint"
rm -f "$endpoint_file"
sup_start scheduler 0 "$run_dir/scheduler.out" "$run_dir/scheduler.err" \
  "$towerps" scheduler "${common[@]}" --endpoint_file="$endpoint_file" \
  "${resume[@]}" "${recover[@]}" "${sched_flags[@]}"
for _ in $(seq 1 300); do  # up to 30 s for the scheduler to bind
  [ -s "$endpoint_file" ] && break
  kill -0 "$(sup_pid scheduler 0)" 2>/dev/null || { cat "$run_dir/scheduler.err" >&2; exit 1; }
  sleep 0.1
done
[ -s "$endpoint_file" ] || { echo "deploy/local.sh: the scheduler did not start" >&2; exit 1; }
endpoint="$(cat "$endpoint_file")"
echo "local cluster: scheduler at $endpoint, $servers servers, $workers workers, run dir $run_dir" >&2

for s in $(seq 0 $((servers - 1))); do
  # Every process shares this machine's cores: servers answer on their io thread
  # (no hand-off to handler threads, fewer context switches per request).
  sup_start ps "$s" "$run_dir/ps-$s.out" "$run_dir/ps-$s.err" \
    "$towerps" ps "${common[@]}" --scheduler="$endpoint" --rank="$s" --handler_threads=0 \
    "${node_flags[@]}"
done
for w in $(seq 0 $((workers - 1))); do
  sup_start worker "$w" "$run_dir/worker-$w.out" "$run_dir/worker-$w.err" \
    "$towerps" worker "${common[@]}" --scheduler="$endpoint" --worker_rank="$w" \
    "${node_flags[@]}" "${worker_flags[@]}"
done
start_watch

# Until the scheduler ends the job (done, or failed for good), a rank's restarts run
# out, or a stop is asked for. Dead processes are restarted meanwhile.
trap 'stop_code=130' INT
trap 'stop_code=143' TERM
while [ -z "$stop_code" ] && [ -z "$sup_exhausted" ] && [ -z "${sup_status[scheduler 0]}" ]; do
  sup_poll
  sup_sleep 0.2
done
sup_over
stop_watch
if [ -n "$stop_code" ]; then
  echo "deploy/local.sh: stopping the job (the workers report their progress, then a final checkpoint)" >&2
  # A second signal forces: every process is killed (no final checkpoint).
  trap 'sup_signal_all KILL' INT TERM
  sched="$(sup_pid scheduler 0)"
  [ -n "$sched" ] && kill -TERM "$sched" 2>/dev/null || true
  while [ -z "${sup_status[scheduler 0]}" ]; do sup_poll; sup_sleep 0.2; done
  sup_wait_all 10000 || true  # the others follow the scheduler's final phase
  cat "$run_dir/scheduler.out"
  if [ "${sup_status[scheduler 0]}" -ne 0 ] && [ "$(job_state)" != done ]; then
    tail -n 3 "$run_dir/scheduler.err" >&2
    echo "deploy/local.sh: the stop failed" >&2
    exit 1
  fi
  echo "deploy/local.sh: stopped with a final checkpoint; continue with --resume" >&2
  exit "$stop_code"
fi
if [ -n "$sup_exhausted" ]; then
  echo "deploy/local.sh: $sup_exhausted died more than --max_restarts=$max_restarts times;" \
       "stopping the job" >&2
  tail -n 5 "${sup_err[$sup_exhausted]}" >&2
  trap 'sup_signal_all KILL' INT TERM
  sched="$(sup_pid scheduler 0)"
  [ -n "$sched" ] && kill -TERM "$sched" 2>/dev/null || true  # a final checkpoint if it can
  sup_signal_all TERM
  sup_wait_all 20000 || sup_signal_all KILL
  echo "deploy/local.sh: the job failed; continue it from its last checkpoint with --resume" >&2
  exit 1
fi
# The scheduler ended the job: the others follow its final phase within seconds. (A
# scheduler killed after it recorded the job as done, while it lingers, finished it.)
sup_wait_all 10000 || true
cat "$run_dir/scheduler.out"
if [ "${sup_status[scheduler 0]}" -ne 0 ] && [ "$(job_state)" != done ]; then
  tail -n 5 "$run_dir"/worker-*.err >&2
  tail -n 3 "$run_dir/scheduler.err" >&2
  echo "deploy/local.sh: the job failed; continue it from its last checkpoint with --resume" >&2
  exit 1
fi
exit 0
