# deploy/local_probe.sh: reads a running (or finished) deploy/local.sh job from its run
# directory (sourced, bash only; used by tests/integration/*_test.sh and bench/chaos_e2e.sh).
# A Slurm job (deploy/slurm/task.sh: supervisor-NAME.log, pids-NAME per task) on this
# machine reads the same way. Needs LP_TOWERPS (the binary) for lp_status.
#   lp_pid RUN_DIR ROLE RANK      the live pid of a slot, from <run_dir>/pids ("" if none)
#   lp_slots RUN_DIR              "role rank pid" of every live slot
#   lp_all_pids RUN_DIR           every pid the job ever had (<run_dir>/supervisor.log)
#   lp_leftovers RUN_DIR          those still running a towerps binary (should be none)
#   lp_no_leftovers RUN_DIR       succeeds when there are none (else says which)
#   lp_recall50 CONFIG DATASET CHECKPOINT   test Recall@50 of a checkpoint (or of the
#                                 newest under a checkpoint root; "" if it does not evaluate)
#   lp_status RUN_DIR             `towerps ctl status` JSON ("" when it does not answer)
#   lp_global_step RUN_DIR        the status's global step (-1 when it does not answer)
#   lp_worker_steps RUN_DIR RANK  steps of a live worker rank (-1 if absent)
#   lp_wait SECONDS CMD...        polls CMD every 100 ms until it succeeds (1: deadline)
#   lp_restarts RUN_DIR           the restart lines of supervisor.log
#   lp_phase RUN_DIR              the scheduler's phase ("" when it does not answer)
#   lp_progress RUN_DIR ROLE RANK a worker's steps, else the global step
#   lp_chaos ...                  the chaos loop: kill -9 of random processes (below)
#   lp_chaos_config BASE OUT EPOCHS BATCH   the chaos job's config (below)

lp_slots() { cat "$1/pids" "$1"/pids-* 2>/dev/null || true; }

lp_pid() {
  lp_slots "$1" | awk -v role="$2" -v rank="$3" '$1 == role && $2 == rank { print $3 }'
}

lp_all_pids() {
  cat "$1/supervisor.log" "$1"/supervisor-*.log 2>/dev/null |
    grep -oE '(^| )(pid|old_pid|new_pid)=[0-9]+' |
    sed 's/.*=//' | sort -un
}

lp_leftovers() {
  local pid
  for pid in $(lp_all_pids "$1"); do
    # Alive, and still a towerps process (not a pid the system has reused since).
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null |
        grep -q towerps; then
      echo "$pid"
    fi
  done
}

lp_no_leftovers() {
  local left
  left="$(lp_leftovers "$1")"
  [ -z "$left" ] || { echo "still running: $left"; return 1; }
}

lp_recall50() {
  "$LP_TOWERPS" evaluate --config="$1" --dataset="$2" --checkpoint="$3" --json 2>/dev/null |
    grep -oE '"recall@50":[0-9.eE+-]+' | head -1 | cut -d: -f2
}

lp_status() {
  local endpoint curve=()
  endpoint="$(cat "$1/scheduler.endpoint" 2>/dev/null)" || return 0
  [ -s "$1/keys/allowed_keys" ] && curve=(--curve_dir="$1/keys")
  "$LP_TOWERPS" ctl --scheduler="$endpoint" "${curve[@]}" --ctl_timeout_ms=1000 status \
    2>/dev/null || true
}

lp_global_step() {
  local s
  s="$(lp_status "$1" | grep -oE '"global_step":[0-9]+' | head -1)"
  echo "${s#*:}" | sed 's/^$/-1/'
}

lp_worker_steps() {
  local s
  s="$(lp_status "$1" | grep -oE "\{\"rank\":$2,\"alive\":true,\"steps\":[0-9]+" | head -1)"
  echo "${s##*:}" | sed 's/^$/-1/'
}

lp_wait() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

lp_restarts() { grep ' restart ' "$1/supervisor.log" 2>/dev/null || true; }

# lp_phase RUN_DIR: the scheduler's phase ("" when it does not answer).
lp_phase() {
  local s
  s="$(lp_status "$1" | grep -oE '"phase":"[a-z]+"' | head -1)"
  s="${s#*:\"}"
  echo "${s%\"}"
}

# lp_chaos RUN_DIR JOB_PID KILLS INTERVAL_S SEED OUT [UNTIL [STEP_EVERY]]: kill -9 of a random live
# process of the job (scheduler, ps or worker; RANDOM seeded with SEED, so the same
# choices on every run of the same job) every INTERVAL_S seconds, KILLS times, while
# JOB_PID (the local.sh) runs. The first kill waits for a complete checkpoint; each next
# one waits for the victim's replacement and the job training again, then INTERVAL_S.
# With STEP_EVERY (> 0), kill n also waits until the job's global step reaches
# n * STEP_EVERY: kills at the same points of the training whatever the machine's speed
# (the step is read from `towerps ctl status`; while the scheduler does not answer, the
# kill waits). Every wait ends by UNTIL (a $SECONDS value; default: 10 minutes from
# now): then 1.
# Appends one line per kill to OUT: "<kill time> <role> <rank> <pid> <back time>
# <stepping time>" (unix seconds; back: when the poll saw the replacement and the phase
# training; stepping: when, after that, the job's global step (a worker: that rank's
# steps) grew; "-" when not seen before the job ended). The next kill waits for both.
# lp_back RUN_DIR ROLE RANK OLD_PID: a new process holds the slot and the job trains.
lp_back() {
  local p
  p="$(lp_pid "$1" "$2" "$3")"
  [ -n "$p" ] && [ "$p" != "$4" ] && [ "$(lp_phase "$1")" = training ]
}

# lp_progress RUN_DIR ROLE RANK: the steps that show ROLE RANK's recovery training:
# a worker's own steps, else the global step (-1 when the scheduler does not answer).
lp_progress() {
  if [ "$2" = worker ]; then lp_worker_steps "$1" "$3"; else lp_global_step "$1"; fi
}

lp_chaos() {
  local run="$1" job="$2" kills="$3" interval="$4" out="$6" until="${7:-$((SECONDS + 600))}"
  local step_every="${8:-0}" n=0 slots pick role rank pid killed_at back stepping from
  RANDOM="$5"
  lp_wait $((until - SECONDS)) eval \
    "! kill -0 $job 2>/dev/null || ls $run/checkpoint/step-*/MANIFEST >/dev/null 2>&1" || {
    echo "chaos: no complete checkpoint in time" >&2; return 1; }
  while [ "$n" -lt "$kills" ] && kill -0 "$job" 2>/dev/null; do
    sleep "$interval"
    if [ "$step_every" -gt 0 ]; then
      lp_wait $((until - SECONDS)) eval "! kill -0 $job 2>/dev/null ||
        [ \$(lp_global_step $run) -ge $(((n + 1) * step_every)) ]" || {
        echo "chaos: global step $(((n + 1) * step_every)) not reached in time" >&2; return 1; }
      kill -0 "$job" 2>/dev/null || break
    fi
    mapfile -t slots < <(lp_slots "$run" | sort)
    [ "${#slots[@]}" -gt 0 ] || continue
    pick=$((RANDOM % ${#slots[@]}))
    read -r role rank pid <<< "${slots[$pick]}"
    kill -KILL "$pid" 2>/dev/null || continue
    killed_at="${EPOCHREALTIME/,/.}" back="-"
    n=$((n + 1))
    echo "chaos: kill -9 $role $rank (pid $pid), $n/$kills" >&2
    # Back to training: a new process in the slot, and the scheduler's phase.
    lp_wait $((until - SECONDS)) eval "! kill -0 $job 2>/dev/null || lp_back $run $role $rank $pid" &&
      lp_back "$run" "$role" "$rank" "$pid" && back="${EPOCHREALTIME/,/.}"
    stepping="-"
    if [ "$back" != - ]; then
      from="$(lp_progress "$run" "$role" "$rank")"
      lp_wait $((until - SECONDS)) eval \
        "! kill -0 $job 2>/dev/null || [ \$(lp_progress $run $role $rank) -gt $from ]" &&
        [ "$(lp_progress "$run" "$role" "$rank")" -gt "$from" ] && stepping="${EPOCHREALTIME/,/.}"
    fi
    echo "$killed_at $role $rank $pid $back $stepping" >> "$out"
    if [ "$back" = - ]; then
      kill -0 "$job" 2>/dev/null || { echo "chaos: the job ended after kill $n" >&2; return 0; }
      echo "chaos: $role $rank is not back to training in time" >&2
      return 1
    fi
  done
}

# lp_chaos_config BASE OUT EPOCHS BATCH: writes BASE (a model config) to OUT with the
# train line's epochs and batch set and both towers' MLPs widened to 1024,1024 (1 on
# success, with a message, when a line to set is missing). Why: the chaos job must be
# near its recall plateau and last long enough for several kills and recoveries. The
# example MovieTweetings towers take ~2 s an epoch on 2 cores and overfit past 3 epochs
# (test Recall@50 0.41 at 2, 0.37 at 20, where a faulted run, training less, scores
# 1-3% higher); with 1024,1024 towers 2 epochs take 15-30 s and sit on the plateau
# (1, 2, 3 epochs: 0.407, 0.413, 0.404).
lp_chaos_config() {
  sed -E -e "s/^(train .*)epochs=[0-9]+/\1epochs=$3/" -e "s/^(train .*)batch=[0-9]+/\1batch=$4/" \
    -e "s/^(tower .*)mlp=[0-9,]+/\1mlp=1024,1024/" "$1" > "$2"
  [ "$(grep -cE "^train .*batch=$4 .*epochs=$3|^tower .*mlp=1024,1024" "$2")" -eq 3 ] || {
    echo "lp_chaos_config: no train line or no two tower lines to set in $1" >&2; return 1; }
}
