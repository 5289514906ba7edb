#!/usr/bin/env bash
# `bench/run.sh chaos`: the long variant of tests/integration/chaos_test.sh, same job
# (2 servers + 2 asynchronous workers under deploy/local.sh's supervisor, checkpoints
# every 2 s; MovieTweetings' example config with mlp=1024,1024 towers; 6 epochs, --quick 2, the
# recall plateau). Runs it unfaulted (the peer), then with kill -9 of a random process
# (scheduler, a server or a worker; fixed seed) 10 times (--quick: 3), kill n once the
# global step reached n/(kills+2) of the planned steps, the previous victim's
# replacement is stepping and 1 s has passed. Prints JSON figures: kills survived (the
# job still finished with exit 0), steps lost (the scheduler's
# towerps_scheduler_recovery_lost_steps_total, summed over scheduler processes), test
# Recall@50 and wall time (peer: unfaulted), time to recover median and max (kill -> the
# scheduler logs the killed role's replacement in and the job training), time to step
# again median and max (kill -> the job's global step, or the replaced worker's steps,
# grows again: what a user sees; includes workers waiting out requests to a dead
# server). Then the unfaulted job twice more, without periodic checkpoints and with one
# every 100 ms (one is almost always being written): training examples/s of each.
# Data: MovieTweetings when ../shared/data has it, else `towerps generate`
# (examples/generated.conf, the same tower change). Not run by CI. Workers run with the
# default --request_timeout_ms (what a user gets) unless CHAOS_REQUEST_TIMEOUT_MS is set.
# Usage: bench/chaos_e2e.sh BUILD_DIR [--quick]
#   (env: CHAOS_KILLS, CHAOS_SEED, CHAOS_EPOCHS, CHAOS_REQUEST_TIMEOUT_MS)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$1"; shift
quick=false
[ "${1:-}" = "--quick" ] && quick=true
kills="${CHAOS_KILLS:-10}" seed="${CHAOS_SEED:-7}" interval=1 batch=256
$quick && kills="${CHAOS_KILLS:-3}"
towerps="$build/cmd/towerps"
LP_TOWERPS="$towerps"
# shellcheck source=deploy/local_probe.sh
source "$root/deploy/local_probe.sh"
work="$(mktemp -d)"
trap 'for d in "$work"/clean "$work"/chaos "$work"/plain "$work"/busy; do for p in $(lp_leftovers "$d"); do kill -KILL "$p"; done; done; rm -rf "$work"' EXIT

mt="${TOWERPS_SHARED_DATA:-$root/../shared/data}/movietweetings-100k"
if [ -s "$mt/ratings.dat" ]; then
  base="$root/examples/movietweetings.conf"
  prepared="$("$towerps" prepare --input="$mt" --output="$work/ds" --min_rating=7 2>&1)"
else
  base="$root/examples/generated.conf"
  "$towerps" generate --output_dir="$work/logs" --seed=2 >/dev/null 2>&1
  prepared="$("$towerps" prepare --input="$work/logs" --output="$work/ds" 2>&1)"
fi
train_examples="$(sed -n 's/^examples: train \([0-9]*\).*/\1/p' <<< "$prepared")"
# 10 kills need room: each waits for the previous victim to step again plus 1 s
# (~3 s, ~60 steps here), so the long variant trains 6 epochs (--quick: 2).
epochs=6
$quick && epochs=2
epochs="${CHAOS_EPOCHS:-$epochs}"
config="$work/model.conf"
lp_chaos_config "$base" "$config" "$epochs" "$batch"
step_every=$((epochs * train_examples / batch / (kills + 2)))
echo "bench/run.sh chaos: ${base#"$root"/} with mlp=1024,1024, epochs=$epochs, $kills kills" \
     "every $step_every steps, seed $seed" >&2

run_job() {  # run_job NAME [CHECKPOINT_EVERY_MS]: local.sh in the background, pid in $job
  local every=()
  [ "${2:-2000}" -gt 0 ] && every=(--checkpoint_every_ms "${2:-2000}")
  [ -n "${CHAOS_REQUEST_TIMEOUT_MS:-}" ] && every+=(--request_timeout_ms "$CHAOS_REQUEST_TIMEOUT_MS")
  "$root/deploy/local.sh" --config "$config" --dataset "$work/ds" --run_dir "$work/$1" \
    --servers 2 --workers 2 --towerps "$towerps" "${every[@]}" \
    --heartbeat_timeout_ms 3000 --max_restarts "$kills" > "$work/$1.log" 2>&1 &
  job=$!
}
wait_job() { rc=0; wait "$job" || rc=$?; }  # local.sh's exit code in $rc
recall50() { lp_recall50 "$config" "$work/ds" "$work/$1/checkpoint"; }

# --- parsing the scheduler's logs: adjust here when the log lines change -------------
# An ERE for the scheduler's log line that says ROLE RANK's replacement is back
# (scheduler/recovery.cc, scheduler/job_state.cc as of the recovery merge): a server's
# shard restored and training again, the scheduler's job adopted with every node back, a
# worker's replacement registered (it trains as soon as a partition is free: its own are
# often taken over by the other worker meanwhile).
back_to_training_re() {
  case "$1" in
    ps) echo "recovered in .*training again" ;;
    worker) echo "worker $2 (registered again|re-registered) as a new process" ;;
    scheduler) echo "every node is back|registered; training" ;;
  esac
}
# glog line -> unix seconds: "I20261206 03:54:29.123456 tid file:line] msg" (the header's
# "Log line format: [IWEF]yyyymmdd hh:mm:ss.uuuuuu"), or older glog's "I1206 ..." (the year
# from the header "Log file created at: 2026/12/06 ...").
glog_time() {
  local file="$1" line="$2" year
  if [ "${line:9:1}" = " " ]; then
    date -d "${line:1:4}-${line:5:2}-${line:7:2} ${line:10:15}" +%s.%N
  else
    year="$(sed -n 's|^Log file created at: \([0-9]*\)/.*|\1|p' "$file" | head -1)"
    date -d "$year-${line:1:2}-${line:3:2} ${line:6:15}" +%s.%N
  fi
}
# The earliest scheduler log line matching RE after unix time T, as unix seconds ("" if
# none). Every severity's file of every scheduler process: a process killed with -9
# loses its buffered INFO lines, WARNING and above are written at once.
scheduler_line_after() {
  local run="$1" re="$2" t="$3" pid file line
  for pid in $(grep -oE 'role=scheduler rank=0 (pid|.*new_pid)=[0-9]+' "$run/supervisor.log" |
               sed 's/.*=//'); do
    for file in "$run"/logs/*.log.*."$pid"; do
      [ -f "$file" ] || continue
      while IFS= read -r line; do
        glog_time "$file" "$line"
      done < <(grep -E '^[IWEF][0-9]{4}([0-9]{4})? ' "$file" | grep -E "$re")
    done
  done | awk -v t="$t" '$1 > t' | sort -g | head -1
}
# Steps lost: the counter restarts at 0 in a new scheduler process; sum each one's last.
lost_steps() {
  grep '"role":"scheduler"' "$1/metrics.jsonl" 2>/dev/null |
    grep -oE '"towerps_scheduler_recovery_lost_steps_total":[0-9]+' | cut -d: -f2 |
    awk 'BEGIN { seen = 0 } { seen = 1; if ($1 < last) total += last; last = $1 }
         END { if (seen) print total + last; else print "null" }'
}
# ------------------------------------------------------------------------------------

start=$SECONDS
run_job clean
wait_job
clean_rc="$rc"
clean_s=$((SECONDS - start))
[ "$clean_rc" -eq 0 ] || { echo "bench/run.sh chaos: the unfaulted job failed ($clean_rc)" >&2; exit 1; }
start=$SECONDS
run_job chaos
lp_chaos "$work/chaos" "$job" "$kills" "$interval" "$seed" "$work/kills.txt" \
  $((SECONDS + 3600)) "$step_every" ||
  echo "bench/run.sh chaos: the chaos loop stopped early" >&2
wait_job
chaos_rc="$rc"
chaos_s=$((SECONDS - start))
done_kills=$(wc -l < "$work/kills.txt" 2>/dev/null || echo 0)
survived=0
[ "$chaos_rc" -eq 0 ] && survived="$done_kills"
[ "$chaos_rc" -eq 0 ] || echo "bench/run.sh chaos: the faulted job exited $chaos_rc" \
  "after $done_kills kills; see $(tail -n 3 "$work/chaos.log")" >&2

# Time to recover per kill; from the scheduler's log, else (no line matched) from what
# lp_chaos saw: the next poll with a new process in the slot and the phase training.
# Time to step again: lp_chaos's poll of the global step (a worker: its own steps).
recoveries=() steppings=()
while read -r t role rank pid seen stepping; do
  step_s=-
  [ "${stepping:--}" = - ] || step_s="$(awk -v a="$stepping" -v b="$t" 'BEGIN { printf "%.3f", a - b }')"
  [ "$step_s" = - ] || steppings+=("$step_s")
  back="$(scheduler_line_after "$work/chaos" "$(back_to_training_re "$role" "$rank")" "$t")"
  if [ -z "$back" ]; then
    echo "bench/run.sh chaos: no scheduler log line for $role $rank's recovery" \
         "(adjust back_to_training_re); using the poll's time" >&2
    back="$seen"
  fi
  [ "$back" = - ] && continue
  recoveries+=("$(awk -v a="$back" -v b="$t" 'BEGIN { printf "%.3f", a - b }')")
  echo "bench/run.sh chaos: $role $rank back in ${recoveries[-1]} s, stepping again in" \
       "$step_s s" >&2
done < "$work/kills.txt"

# Examples/s of the unfaulted job without periodic checkpoints and with one every 100 ms
# (the same job, one run each): the job's global step (one batch a step) over the time
# between the workers' first metrics line past step 0 and their last (every 2 s).
examples_per_s() {
  grep '"role":"worker"' "$1/metrics.jsonl" 2>/dev/null |
    sed -nE 's/.*"ts_ms":([0-9]+).*"towerps_worker_global_step":([0-9]+).*/\1 \2/p' |
    awk -v b="$batch" '$2 > 0 { if (!n++ || $1 < t0) { t0 = $1; s0 = $2 }
                                if ($1 >= t1) { t1 = $1; s1 = $2 } }
         END { if (t1 > t0) printf "%.0f", (s1 - s0) * b * 1000 / (t1 - t0); else print "null" }'
}
checkpoints_written() {  # the scheduler's towerps_scheduler_checkpoints_total, last line
  grep '"role":"scheduler"' "$1/metrics.jsonl" 2>/dev/null |
    grep -oE '"towerps_scheduler_checkpoints_total":[0-9]+' | tail -1 | cut -d: -f2
}
declare -A secs
for pair in "plain 0" "busy 100"; do
  read -r name every <<< "$pair"
  start=$SECONDS
  run_job "$name" "$every"
  wait_job
  secs[$name]=$((SECONDS - start))
  [ "$rc" -eq 0 ] || echo "bench/run.sh chaos: the $name job exited $rc" >&2
  echo "bench/run.sh chaos: $name job (checkpoint every ${every} ms) ${secs[$name]} s," \
       "$(checkpoints_written "$work/$name") checkpoints" >&2
done

figure() {  # name value unit [peer peer_value]
  if [ $# -ge 5 ]; then
    printf '{"suite":"chaos","name":"%s","value":%s,"unit":"%s","peer":"%s","peer_value":%s,"ratio":%s}\n' \
      "$1" "$2" "$3" "$4" "$5" "$(awk -v a="$2" -v b="$5" 'BEGIN { printf "%.4f", b ? a / b : 0 }')"
  else
    printf '{"suite":"chaos","name":"%s","value":%s,"unit":"%s"}\n' "$1" "$2" "$3"
  fi
}
figure kills_survived "$survived" kills
figure steps_lost "$(lost_steps "$work/chaos")" steps
clean_recall="$(recall50 clean)"
chaos_recall="$(recall50 chaos || true)"
figure recall_at_50_under_chaos "${chaos_recall:-null}" recall unfaulted "$clean_recall"
figure wall_time_under_chaos "$chaos_s" s unfaulted "$clean_s"
median_max() {  # median_max NAME VALUES...: figures NAME_median and NAME_max (seconds)
  local name="$1" n sorted
  shift
  [ $# -gt 0 ] || return 0
  mapfile -t sorted < <(printf '%s\n' "$@" | sort -g)
  n=${#sorted[@]}
  figure "${name}_median" "$(awk -v a="${sorted[$(((n - 1) / 2))]}" -v b="${sorted[$((n / 2))]}" \
    'BEGIN { printf "%.3f", (a + b) / 2 }')" s
  figure "${name}_max" "${sorted[-1]}" s
}
median_max time_to_recover "${recoveries[@]}"
median_max time_to_step_again "${steppings[@]}"
figure examples_per_s_checkpointing "$(examples_per_s "$work/busy")" examples/s \
  no_checkpoints "$(examples_per_s "$work/plain")"
figure checkpoints_per_s_checkpointing "$(awk -v n="$(checkpoints_written "$work/busy")" \
  -v s="${secs[busy]}" 'BEGIN { printf "%.2f", s ? n / s : 0 }')" 1/s
