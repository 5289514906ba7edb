# deploy/supervise.sh: the process supervisor of deploy/local.sh and deploy/slurm/task.sh
# (sourced, bash only).
#
# Every process runs in a slot "<role> <rank>" (scheduler 0, ps R, worker W). A process
# that dies while the job is not over (non-zero exit or a signal) is started again with
# the same command line (role, rank, flags, keys); its stdout/stderr files are appended
# to. One that exits 0 is done and stays down. Per slot:
#   - a budget of SUP_MAX_RESTARTS restarts over the whole job; the next death past it
#     sets sup_exhausted (the caller fails the job and stops everything);
#   - a backoff before each restart: SUP_BACKOFF_MS, doubled for each restart of the
#     slot, capped at 10 s; it starts over at SUP_BACKOFF_MS after a process that ran
#     for 30 s or more.
# A slot is restarted only if `sup_restartable ROLE RANK` (defined by the caller)
# succeeds; otherwise its death is recorded and left to the caller (e.g. a scheduler
# that failed the job on purpose).
# Each restart is one line on stderr and in <run_dir>/supervisor.log (supervisor-NAME.log
# with sup_init's NAME: one file per supervisor sharing a run directory):
#   <UTC time> restart role=R rank=N old_pid=P status=exit:C|signal:NAME attempt=A/MAX
#              backoff_ms=B new_pid=Q
# and a death past the budget one `gave_up` line; a first start is logged (to the file
# only) as `start role=R rank=N pid=P`, so the log names every pid the job ever had.
# <run_dir>/pids (pids-NAME) lists the live slots, "role rank pid" per line, rewritten
# (atomically) at every start and exit. A first start truncates the slot's OUT and ERR
# files, unless SUP_KEEP_LOGS=true (then every start appends).
#
# API: sup_init RUN_DIR MAX_RESTARTS BACKOFF_MS [NAME]; sup_start ROLE RANK OUT ERR CMD...;
# sup_poll (reap, restart due slots; call every ~200 ms); sup_pid ROLE RANK; sup_over
# (no restarts from now on); sup_live_pids (into the array sup_live); sup_signal_all SIG.
# A slot's state after its process ended for good: sup_status[slot] = its exit code.
#
# The towerps restart policy, shared by the launchers: sup_restartable ROLE RANK (the
# default; a caller may define its own after sourcing) restarts nothing once the
# scheduler ended the job (<run_dir>/scheduler.job says done or failed: the nodes exit
# with it), any server or worker otherwise, and the scheduler only when it runs with
# --recover (SUP_RECOVER=true) while the job is running (a restarted scheduler takes it
# over). sup_job_state RUN_DIR: running|done|failed ("" without a job file).
# sup_has_recover BINARY: does the binary's scheduler have --recover?

declare -A sup_cmd=() sup_pid_of=() sup_out=() sup_err=() sup_attempts=() sup_backoff=()
declare -A sup_due_ms=() sup_started_ms=() sup_status=() sup_last=() sup_rc=()
sup_slots=() sup_exhausted="" sup_is_over=false
SUP_KEEP_LOGS="${SUP_KEEP_LOGS:-false}" SUP_RECOVER="${SUP_RECOVER:-false}"
SUP_BACKOFF_CAP_MS=10000
SUP_BACKOFF_RESET_MS=30000

# A sleep that hides bash's "Killed" notice of a supervised child reaped meanwhile
# (sup_poll reports deaths itself), and never fails (under Slurm the sleep gets the
# step's SIGTERM too: not an error of the caller's `set -e`).
sup_sleep() { { sleep "$1"; } 2>/dev/null || true; }
sup_now_ms() { local t="${EPOCHREALTIME//[.,]/}"; echo $((10#$t / 1000)); }
sup_time() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }

sup_init() {
  SUP_RUN_DIR="$1" SUP_MAX_RESTARTS="$2" SUP_BACKOFF_MS="$3"
  SUP_LOG="$SUP_RUN_DIR/supervisor${4:+-$4}.log"
  SUP_PIDS="$SUP_RUN_DIR/pids${4:+-$4}"
  : >> "$SUP_LOG"
}

sup_write_pids() {
  local slot tmp="${SUP_PIDS%/*}/.${SUP_PIDS##*/}.tmp.$$"  # not matched by pids-*
  : > "$tmp"
  for slot in "${sup_slots[@]}"; do
    [ -n "${sup_pid_of[$slot]}" ] && echo "$slot ${sup_pid_of[$slot]}" >> "$tmp"
  done
  mv -f "$tmp" "$SUP_PIDS"
}

# Starts the slot's command in the background (append: the log of a dead process stays).
sup_launch() {
  local slot="$1" mode="$2"
  local -a argv
  eval "argv=(${sup_cmd[$slot]})"
  if [ "$mode" = new ] && [ "$SUP_KEEP_LOGS" != true ]; then
    "${argv[@]}" > "${sup_out[$slot]}" 2> "${sup_err[$slot]}" &
  else
    "${argv[@]}" >> "${sup_out[$slot]}" 2>> "${sup_err[$slot]}" &
  fi
  sup_pid_of[$slot]=$!
  sup_started_ms[$slot]=$(sup_now_ms)
  sup_due_ms[$slot]=""
  sup_write_pids
}

sup_start() {  # sup_start ROLE RANK OUT ERR CMD...
  local slot="$1 $2"
  sup_out[$slot]="$3" sup_err[$slot]="$4"
  shift 4
  sup_cmd[$slot]="$(printf '%q ' "$@")"
  sup_attempts[$slot]=0 sup_backoff[$slot]=0 sup_status[$slot]="" sup_last[$slot]=""
  sup_slots+=("$slot")
  sup_launch "$slot" new
  echo "$(sup_time) start role=${slot% *} rank=${slot#* } pid=${sup_pid_of[$slot]}" >> "$SUP_LOG"
}

sup_pid() { echo "${sup_pid_of[$1 $2]:-}"; }

sup_describe() {  # exit code -> exit:C or signal:NAME (bash reports a signal as 128+N)
  local rc="$1" name
  if [ "$rc" -gt 128 ] && name="$(kill -l "$((rc - 128))" 2>/dev/null)"; then
    echo "signal:$name"
  else
    echo "exit:$rc"
  fi
}

sup_log() { echo "$(sup_time) $*" >> "$SUP_LOG"; echo "supervisor: $*" >&2; }

# One process of `slot` ended with `rc`: done, restart later, or give up.
sup_ended() {
  local slot="$1" rc="$2" now role rank
  now=$(sup_now_ms)
  read -r role rank <<< "$slot"
  sup_last[$slot]="${sup_pid_of[$slot]} $(sup_describe "$rc")"
  sup_rc[$slot]="$rc"
  local old="${sup_pid_of[$slot]}"
  sup_pid_of[$slot]=""
  if [ "$rc" -eq 0 ] || $sup_is_over || ! sup_restartable "$role" "$rank"; then
    sup_status[$slot]="$rc"
    sup_write_pids
    return
  fi
  if [ "${sup_attempts[$slot]}" -ge "$SUP_MAX_RESTARTS" ]; then
    sup_status[$slot]="$rc"
    sup_exhausted="$slot"
    sup_log "gave_up role=$role rank=$rank old_pid=$old status=$(sup_describe "$rc")" \
      "restarts=${sup_attempts[$slot]}/$SUP_MAX_RESTARTS (--max_restarts): the job fails"
    sup_write_pids
    return
  fi
  local backoff=$((2 * sup_backoff[$slot]))
  if [ "$backoff" -eq 0 ] || [ $((now - sup_started_ms[$slot])) -ge "$SUP_BACKOFF_RESET_MS" ]; then
    backoff="$SUP_BACKOFF_MS"
  fi
  [ "$backoff" -gt "$SUP_BACKOFF_CAP_MS" ] && backoff="$SUP_BACKOFF_CAP_MS"
  sup_backoff[$slot]="$backoff"
  sup_due_ms[$slot]=$((now + backoff))
  sup_write_pids
}

sup_poll() {
  local slot pid rc role rank now
  for slot in "${sup_slots[@]}"; do
    pid="${sup_pid_of[$slot]}"
    [ -z "$pid" ] && continue
    kill -0 "$pid" 2>/dev/null && continue
    { wait "$pid"; } 2>/dev/null && rc=0 || rc=$?  # no "Killed" notice from bash
    sup_ended "$slot" "$rc"
  done
  [ -n "$sup_exhausted" ] && return
  now=$(sup_now_ms)
  for slot in "${sup_slots[@]}"; do
    [ -n "${sup_due_ms[$slot]}" ] || continue
    [ "$now" -ge "${sup_due_ms[$slot]}" ] || continue
    sup_attempts[$slot]=$((sup_attempts[$slot] + 1))
    sup_launch "$slot" restart
    read -r role rank <<< "$slot"
    local old_pid status
    read -r old_pid status <<< "${sup_last[$slot]}"
    sup_log "restart role=$role rank=$rank old_pid=$old_pid status=$status" \
      "attempt=${sup_attempts[$slot]}/$SUP_MAX_RESTARTS backoff_ms=${sup_backoff[$slot]}" \
      "new_pid=${sup_pid_of[$slot]}"
  done
}

sup_over() {  # the job is over (or stopping): no more restarts, pending ones dropped
  sup_is_over=true
  local slot
  for slot in "${sup_slots[@]}"; do
    if [ -n "${sup_due_ms[$slot]}" ]; then
      sup_due_ms[$slot]=""
      sup_status[$slot]="${sup_rc[$slot]}"
    fi
  done
}

sup_live_pids() {
  sup_live=()
  local slot
  for slot in "${sup_slots[@]}"; do
    [ -n "${sup_pid_of[$slot]}" ] && sup_live+=("${sup_pid_of[$slot]}")
  done
  return 0
}

sup_signal_all() {
  sup_live_pids
  local pid
  for pid in "${sup_live[@]}"; do kill "-$1" "$pid" 2>/dev/null || true; done
}

# Waits up to `1` ms for every supervised process to exit (reaping, no restarts).
sup_wait_all() {
  local deadline=$(($(sup_now_ms) + $1))
  while [ "$(sup_now_ms)" -lt "$deadline" ]; do
    sup_poll
    sup_live_pids
    [ "${#sup_live[@]}" -eq 0 ] && return 0
    sup_sleep 0.2
  done
  return 1
}

sup_job_state() {
  sed -nE 's/^state:?[[:space:]]+([a-z]+)[[:space:]]*$/\1/p' "$1/scheduler.job" 2>/dev/null | head -1
}

# (grep reads the whole help: one that quits early kills the writer with SIGPIPE.)
sup_has_recover() { "$1" scheduler --help 2>/dev/null | grep -E -- '-recover( |$)' >/dev/null; }

sup_restartable() {  # ROLE RANK: may this dead process be started again?
  local state
  state="$(sup_job_state "$SUP_RUN_DIR")"
  [ "$state" = "done" ] || [ "$state" = failed ] && return 1
  [ "$1" != scheduler ] && return 0
  [ "$SUP_RECOVER" = true ] && [ "$state" = running ]
}
