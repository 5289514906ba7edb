#!/usr/bin/env bash
# deploy/slurm/towerps.sbatch against a real Slurm (issue 14): a single-node slurmctld +
# slurmd on 127.0.0.1 from a slurm.conf generated in a temporary directory (no munge,
# no systemd, no cgroups; ports chosen at run time), and one job file for every run:
#  1. a wrong --ntasks fails the job with a clear line;
#  2. sbatch runs a MovieTweetings job (2 servers, 2 workers, CURVE keys written by the
#     batch step): COMPLETED, a checkpoint, test Recall@50 within 3% of
#  3. the same job file under deploy/local.sh;
#  4. preemption: `scontrol requeue` once training has progressed (Slurm sends SIGTERM,
#     then SIGKILL after KillWait): the first run writes a final checkpoint, the
#     requeued run (SLURM_RESTART_COUNT 1) resumes from it and completes, Recall@50
#     within 3% of the local run (measured within 1% at 2 epochs; runs stopped at 40%
#     of 1 epoch and resumed, under Slurm or local.sh --resume, scored 1-3% lower).
# No process of any run may be left (by pid); the daemons are stopped by pid.
# Skips (exit 77) without slurmctld/slurmd/sbatch or without ../shared/data.
# The job: examples/movietweetings.conf, towers of mlp=1024,1024 for SLURM_EPOCHS
# (default 2) epochs: the recall plateau (lp_chaos_config in deploy/local_probe.sh says
# why); after 1 epoch, unfaulted runs still spread over 0.400-0.413 (3%).
# Usage: slurm_test.sh TOWERPS_BINARY   (env: SLURM_EPOCHS; KEEP_LOGS=1 keeps the logs)
set -u
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PATH="$PATH:/usr/sbin:/sbin"
for tool in slurmctld slurmd sbatch srun scontrol sinfo squeue scancel; do
  command -v "$tool" > /dev/null || {
    echo "slurm_test: SKIPPED: $tool not found (deploy/install_deps.sh installs slurm-wlm)"
    exit 77
  }
done
input="${TOWERPS_SHARED_DATA:-$root/../shared/data}/movietweetings-100k"
if [ ! -s "$input/ratings.dat" ]; then
  echo "slurm_test: SKIPPED: MovieTweetings not found at $input (../shared/data is absent)"
  exit 77
fi
LP_TOWERPS="$bin"
# shellcheck source=deploy/local_probe.sh
source "$root/deploy/local_probe.sh"
# shellcheck source=deploy/job.sh
source "$root/deploy/job.sh"
fail=0
# shellcheck source=tests/integration/check.sh
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"
epochs="${SLURM_EPOCHS:-2}" batch=256
tmp="$(mktemp -d)"
export SLURM_CONF="$tmp/slurm/slurm.conf"
jobs=() local_job="" daemons=()
stop_daemons() {  # slurmd, then slurmctld; each by its pid (from its pid file)
  local pid
  for pid in "${daemons[@]}"; do
    kill -TERM "$pid" 2>/dev/null || continue
    lp_wait 15 eval "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null
  done
}
daemons_down() {
  local pid
  for pid in "${daemons[@]}"; do ! kill -0 "$pid" 2>/dev/null || return 1; done
}
cleanup() {
  [ -n "$local_job" ] && kill -KILL "$local_job" 2>/dev/null
  if [ "${#jobs[@]}" -gt 0 ] && [ -n "$(squeue -h -j "$(IFS=,; echo "${jobs[*]}")" 2>/dev/null)" ]; then
    scancel --signal=KILL "${jobs[@]}" 2>/dev/null; scancel "${jobs[@]}" 2>/dev/null
    lp_wait 30 eval '[ -z "$(squeue -h 2>/dev/null)" ]'
  fi
  stop_daemons
  for d in "$tmp"/*/run; do
    for pid in $(lp_leftovers "$d"); do kill -KILL "$pid"; done
  done
  if [ "$fail" -eq 0 ] && [ -z "${KEEP_LOGS:-}" ]; then rm -rf "$tmp"; else echo "logs kept in $tmp"; fi
}
trap cleanup EXIT
test_start=$SECONDS

# free_port (check.sh): the daemons are started again on other ports if one was taken
# meanwhile.
mkdir -p "$tmp/slurm/state" "$tmp/slurm/spool"
node_idle() { [ "$(sinfo -h -n towerps1 -o %t 2>/dev/null)" = idle ]; }
start_daemons() {  # slurm.conf with fresh ports, both daemons; 1 unless the node is idle
  local ctld_port slurmd_port f
  ctld_port="$(free_port)" && slurmd_port="$(free_port "$ctld_port")" ||
    { echo "no free port"; return 1; }
  rm -f "$tmp/slurm/slurmd.pid" "$tmp/slurm/slurmctld.pid"
  # auth/none + cred/none: no munge; proctrack/linuxproc + task/none: no cgroups;
  # config_overrides: the node may declare more CPUs than it has (1 + 2 + 2 tasks).
  # KillWait: SIGTERM to SIGKILL, long enough for the final checkpoint. cred_expire: how
  # long a requeued job waits before it may start again (default 120 s).
  cat > "$SLURM_CONF" <<EOF
ClusterName=towerpstest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/none
CredType=cred/none
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmdParameters=config_overrides
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
JobRequeue=1
KillWait=60
ReturnToService=2
StateSaveLocation=$tmp/slurm/state
SlurmdSpoolDir=$tmp/slurm/spool
SlurmctldPidFile=$tmp/slurm/slurmctld.pid
SlurmdPidFile=$tmp/slurm/slurmd.pid
SlurmctldLogFile=$tmp/slurm/slurmctld.log
SlurmdLogFile=$tmp/slurm/slurmd.log
NodeName=towerps1 NodeAddr=127.0.0.1 CPUs=8 State=UNKNOWN
PartitionName=test Nodes=towerps1 Default=YES MaxTime=INFINITE State=UP
EOF
  # Both detach once started; their pid files are written by then.
  slurmctld -f "$SLURM_CONF" && slurmd -f "$SLURM_CONF" -N towerps1 ||
    { echo "the Slurm daemons did not start"; return 1; }
  for f in slurmd slurmctld; do
    lp_wait 10 test -s "$tmp/slurm/$f.pid" && daemons+=("$(cat "$tmp/slurm/$f.pid")") ||
      { echo "no $f.pid"; return 1; }
  done
  lp_wait 30 node_idle || { echo "the Slurm node is not idle after 30 s"; return 1; }
}
for attempt in 1 2 3; do
  start_daemons > "$tmp/slurm/start.log" && break
  echo "slurm_test: attempt $attempt: $(cat "$tmp/slurm/start.log")"
  tail -n 5 "$tmp"/slurm/*.log
  stop_daemons; daemons=()
  [ "$attempt" -lt 3 ] || { echo "FAIL: the Slurm daemons did not come up"; exit 1; }
done
daemons_s=$((SECONDS - test_start))

prepared="$("$bin" prepare --input="$input" --output="$tmp/mt" --min_rating=7 2>&1)" ||
  { echo "FAIL: prepare"; exit 1; }
train_examples="$(sed -n 's/^examples: train \([0-9]*\).*/\1/p' <<< "$prepared")"
[ -n "$train_examples" ] || { echo "FAIL: no 'examples: train N' line from prepare"; exit 1; }
lp_chaos_config "$root/examples/movietweetings.conf" "$tmp/mt.conf" "$epochs" "$batch" ||
  { echo "FAIL: the job's config"; exit 1; }
planned=$((epochs * train_examples / batch))
# The job file: relative paths are relative to the launch directory, so every run
# (launched from its own directory) has its own run directory.
cat > "$tmp/job.flags" <<EOF
# MovieTweetings on 2 servers + 2 asynchronous workers, secured, checkpoints every 2 s
--config=$tmp/mt.conf
--dataset=$tmp/mt
--run_dir=run
--curve_dir=run/keys
--num_servers=2
--num_workers=2
--staleness=-1
--checkpoint_every_ms=2000
--heartbeat_timeout_ms=3000
EOF

submit() {  # submit NAME NTASKS: sbatch from $tmp/NAME; the job id in $id
  mkdir -p "$tmp/$1"
  id="$(cd "$tmp/$1" && sbatch --parsable --ntasks="$2" --output="$tmp/$1/slurm-%j.out" \
    "$root/deploy/slurm/towerps.sbatch" --flagfile=../job.flags --towerps="$bin")" ||
    { echo "FAIL: sbatch"; exit 1; }
  id="${id%%;*}"
  jobs+=("$id")
}
slurm_field() { scontrol show job "$1" -o 2>/dev/null | grep -oE "(^| )$2=[^ ]*" | cut -d= -f2; }
job_ended() {
  case "$(slurm_field "$1" JobState)" in
    COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|PREEMPTED|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE) ;;
    *) return 1 ;;
  esac
}
wait_job() {  # wait_job ID SECONDS: its final state in $state ("timeout" past SECONDS)
  if lp_wait "$2" job_ended "$1"; then state="$(slurm_field "$1" JobState)"; else state=timeout; fi
}
recall50() { lp_recall50 "$tmp/mt.conf" "$tmp/mt" "$tmp/$1/run/checkpoint"; }  # NAME's newest
within() {  # within PERCENT A B: |A - B| <= PERCENT% of B (B > 0.3: a trained model)
  awk -v p="$1" -v a="$2" -v b="$3" \
    'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0.3 && d <= p / 100 * b) }'
}

# 1. A wrong --ntasks: the batch step refuses the job with the count it needs.
submit wrong 3
wait_job "$id" 30
check "1: --ntasks=3 fails the job ($state)" test "$state" = FAILED
check "1: the batch output says --ntasks=5" grep -q -- "needs --ntasks=5" "$tmp/wrong/slurm-$id.out"
check "1: nothing started" test ! -e "$tmp/wrong/run/scheduler.out"

# 2. The job under Slurm.
start=$SECONDS
submit slurm 5
wait_job "$id" 150
slurm_s=$((SECONDS - start))
check "2: the Slurm job completed ($state)" test "$state" = COMPLETED
check "2: the batch step wrote the CURVE keys" test -s "$tmp/slurm/run/keys/allowed_keys"
check "2: a complete checkpoint" eval '(cd "$tmp/slurm" && job_has_checkpoint "$bin" ../job.flags)'
check "2: the scheduler ended the job" grep -q '"phase":"done"' "$tmp/slurm/run/scheduler.out"
check "2: every task ran on 127.0.0.1" test "$(grep -c '(127.0.0.1), job' "$tmp/slurm/slurm-$id.out")" -eq 5
check "2: no process left" lp_no_leftovers "$tmp/slurm/run"
slurm_recall="$(recall50 slurm)"

# 3. The same job file under deploy/local.sh (its keys made first, as towerps.sbatch
# does).
start=$SECONDS
mkdir -p "$tmp/local"
(cd "$tmp/local" && job_make_keys "$bin" ../job.flags &&
  exec "$root/deploy/local.sh" --flagfile ../job.flags --towerps "$bin") \
  > "$tmp/local/local.log" 2>&1 &
local_job=$!
lp_wait 150 eval '! kill -0 $local_job 2>/dev/null'
if kill -0 "$local_job" 2>/dev/null; then rc=-1; kill -TERM "$local_job"; else wait "$local_job"; rc=$?; fi
local_job=""
local_s=$((SECONDS - start))
check "3: local.sh finished the job (exit $rc)" test "$rc" -eq 0
check "3: no process left" lp_no_leftovers "$tmp/local/run"
local_recall="$(recall50 local)"

# 4. Preemption: requeued once the job is past 40% of its steps.
start=$SECONDS
submit requeue 5
run="$tmp/requeue/run"
progressed() { [ "$(lp_global_step "$run")" -ge $((planned * 2 / 5)) ]; }
check "4: the job trains past step $((planned * 2 / 5))" lp_wait 120 progressed
step_before="$(lp_global_step "$run")"
check "4: scontrol requeue" scontrol requeue "$id"
first_ended() { grep -q '"phase"' "$run/scheduler.out" 2>/dev/null; }
check "4: the first run's scheduler ended" lp_wait 90 first_ended
final="$(grep -m1 -oE '"last_checkpoint":"[^"]*"' "$run/scheduler.out" | cut -d'"' -f4)"
final_step="$(grep -oE '[0-9]+$' <<< "$final" | sed -E 's/^0+([0-9])/\1/')"
case "$final" in /*) final_abs="$final" ;; *) final_abs="$tmp/requeue/$final" ;; esac
check "4: its last checkpoint ($final) is complete" test -s "$final_abs/MANIFEST"
check "4: ... and final (step ${final_step:-?} >= $step_before, after SIGTERM)" \
  test "${final_step:-0}" -ge "$step_before"
wait_job "$id" 150
# (glog flushes INFO lines within 30 s; all are written once the processes exited)
check "4: the first scheduler was stopped by SIGTERM" grep -q "stopped by Terminated" \
  "$run"/logs/*.INFO.*
out="$tmp/requeue/slurm-$id.out"
check "4: every task of the first run waited for its process" \
  test "$(grep -c "SIGTERM: no more restarts; waiting" "$out")" -eq 5
stopped_well="$(sed -n '1,/tasks ended/p' "$out" | grep -cE "task.sh: (scheduler|ps) .*: stopped \(exit 0\)")"
check "4: ... the scheduler and both servers exited 0 ($stopped_well; workers 143: stopped)" \
  test "$stopped_well" -eq 3
requeue_s=$((SECONDS - start))
check "4: the requeued job completed ($state)" test "$state" = COMPLETED
check "4: it was requeued once (Restarts=$(slurm_field "$id" Restarts))" \
  test "$(slurm_field "$id" Restarts)" = 1
check "4: the batch step saw restart 1 and resumed" \
  grep -q "(restart 1): .*resuming from the newest complete checkpoint" "$tmp/requeue/slurm-$id.out"
resumed="$(grep -h "resuming from .* at global step" "$run"/logs/*.INFO.* |
  sed -nE 's/.*resuming from (.*) at global step ([0-9]+).*/\1 \2/p' | tail -1)"
check "4: the requeued scheduler resumed from $final at step $final_step ($resumed)" \
  test "$resumed" = "$final $final_step" -a "${final_step:-0}" -gt 0
check "4: the requeued run ended the job" test "$(grep -c '"phase":"done"' "$run/scheduler.out")" -eq 2
check "4: no process left" lp_no_leftovers "$run"
requeue_recall="$(recall50 requeue)"

echo "slurm_test: daemons up in ${daemons_s} s; Slurm job ${slurm_s} s, recall@50 ${slurm_recall:-?};" \
  "local.sh ${local_s} s, recall@50 ${local_recall:-?}; requeued at step $step_before/$planned," \
  "final checkpoint step ${final_step:-?}, ${requeue_s} s, recall@50 ${requeue_recall:-?}"
check "every run evaluates" test -n "$slurm_recall" -a -n "$local_recall" -a -n "$requeue_recall"
if [ -n "$slurm_recall" ] && [ -n "$local_recall" ]; then
  check "Slurm recall@50 $slurm_recall within 3% of local.sh's $local_recall" \
    within 3 "$slurm_recall" "$local_recall"
fi
if [ -n "$requeue_recall" ] && [ -n "$local_recall" ]; then
  check "requeued recall@50 $requeue_recall within 3% of local.sh's $local_recall" \
    within 3 "$requeue_recall" "$local_recall"
fi
stop_start=$SECONDS
stop_daemons
check "the Slurm daemons stopped" daemons_down
echo "slurm_test: total $((SECONDS - test_start)) s (daemons down in $((SECONDS - stop_start)) s)"
if [ $fail -ne 0 ]; then exit 1; fi
echo "slurm_test: all checks passed"
