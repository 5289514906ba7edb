#!/usr/bin/env bash
# deploy/local.sh's supervisor with real processes on a small generated job:
#  1. a worker killed with -9 is restarted with the same rank (supervisor.log, pids),
#     and the job finishes (exit 0), its progress line on stderr;
#  2. a rank killed again and again runs out of --max_restarts: the job fails, exit 1;
#  3. Ctrl-C still stops the job gracefully (exit 130, final checkpoint, no restart);
# and after each, no process of the job is left (by pid).
# Usage: supervisor_test.sh TOWERPS_BINARY
set -u
bin="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LP_TOWERPS="$bin"
# shellcheck source=deploy/local_probe.sh
source "$root/deploy/local_probe.sh"
fail=0
# shellcheck source=tests/integration/check.sh
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"
tmp="$(mktemp -d)"
job=""
cleanup() {
  [ -n "$job" ] && kill -KILL "$job" 2>/dev/null
  for d in "$tmp"/run*; do
    for pid in $(lp_leftovers "$d"); do kill -KILL "$pid"; done
  done
  if [ "$fail" -eq 0 ] && [ -z "${KEEP_LOGS:-}" ]; then rm -rf "$tmp"; else echo "logs kept in $tmp"; fi
}
trap cleanup EXIT
set -m  # background jobs get SIGINT (not ignored) and their own process group

"$bin" generate --output_dir="$tmp/logs" --users=600 --items=400 --interactions=20000 \
  --clusters=8 --seed=3 >/dev/null 2>&1 || { echo "FAIL: generate"; exit 1; }
"$bin" prepare --input="$tmp/logs" --output="$tmp/ds" >/dev/null 2>&1 ||
  { echo "FAIL: prepare"; exit 1; }
# examples/generated.conf for 12 epochs: long enough to kill and restart a worker.
sed -E 's/^(train .*)epochs=[0-9]+/\1epochs=12/' "$root/examples/generated.conf" > "$tmp/model.conf"

start_job() {  # start_job NAME [local.sh flags...]: local.sh in the background, pid in $job
  local name="$1"; shift
  "$root/deploy/local.sh" --config "$tmp/model.conf" --dataset "$tmp/ds" --run_dir "$tmp/$name" \
    --servers 1 --workers 2 --towerps "$bin" --heartbeat_timeout_ms 1500 \
    --stop_timeout_ms 3000 "$@" > "$tmp/$name.log" 2>&1 &
  job=$!
}
finish_job() {  # finish_job SECONDS: waits for local.sh; its exit code in $rc (-1: timed out)
  rc=""
  lp_wait "$1" eval '! kill -0 "$job" 2>/dev/null'
  if kill -0 "$job" 2>/dev/null; then rc=-1; kill -KILL "$job"; fi
  [ "$rc" = -1 ] || { wait "$job"; rc=$?; }
  job=""
}
training() { [ "$(lp_worker_steps "$1" "$2")" -gt 0 ]; }

# 1. kill -9 of worker 1 while it trains: restarted as worker 1, the job finishes.
start_job run1 --watch_interval_ms 250
check "1: worker 1 trains" lp_wait 60 training "$tmp/run1" 1
victim="$(lp_pid "$tmp/run1" worker 1)"
kill -KILL "$victim"
check "1: the kill is logged as a restart of worker 1" lp_wait 20 grep -q \
  "restart role=worker rank=1 old_pid=$victim status=signal:KILL attempt=1/5 backoff_ms=500 new_pid=" \
  "$tmp/run1/supervisor.log"
new="$(lp_pid "$tmp/run1" worker 1)"
check "1: pids names a new worker 1" test -n "$new" -a "$new" != "$victim"
grep -q "supervisor: restart role=worker rank=1" "$tmp/run1.log"
check "1: the restart is on stderr too" test $? -eq 0
finish_job 120
check "1: the job finishes (exit 0, got $rc)" test "$rc" -eq 0
check "1: local.sh prints the progress line while training" \
  grep -qE '^step +[1-9][0-9]*/[0-9]+  loss [0-9.]+ +[1-9][0-9]* examples/s' "$tmp/run1.log"
check "1: only worker 1 was restarted" test -z "$(lp_restarts "$tmp/run1" | grep -v 'role=worker rank=1')"
check "1: no process left" lp_no_leftovers "$tmp/run1"

# 2. worker 0 killed each time it comes back: past --max_restarts 2 the job fails.
start_job run2 --max_restarts 2 --restart_backoff_ms 100
check "2: worker 0 trains" lp_wait 60 training "$tmp/run2" 0
killed=0
while kill -0 "$job" 2>/dev/null && [ "$killed" -lt 10 ]; do
  pid="$(lp_pid "$tmp/run2" worker 0)"
  if [ -n "$pid" ] && [ "$pid" != "${last:-}" ]; then
    kill -KILL "$pid" 2>/dev/null && killed=$((killed + 1))
    last="$pid"
  fi
  sleep 0.05
done
finish_job 60
check "2: the job fails (exit 1, got $rc)" test "$rc" -eq 1
check "2: two restarts of worker 0" test "$(lp_restarts "$tmp/run2" | grep -c 'role=worker rank=0')" -eq 2
check "2: the backoff doubles" grep -q "role=worker rank=0 .* attempt=2/2 backoff_ms=200 " \
  "$tmp/run2/supervisor.log"
check "2: the budget's end is logged" grep -q "gave_up role=worker rank=0 .*restarts=2/2" \
  "$tmp/run2/supervisor.log"
check "2: local.sh says why" grep -q "died more than --max_restarts=2 times" "$tmp/run2.log"
check "2: no process left" lp_no_leftovers "$tmp/run2"

# 3. Ctrl-C: a graceful stop with a final checkpoint, nothing restarted.
start_job run3
check "3: worker 0 trains" lp_wait 60 training "$tmp/run3" 0
kill -INT "$job"
finish_job 60
check "3: stopped by SIGINT (exit 130, got $rc)" test "$rc" -eq 130
check "3: says so" grep -q "stopped with a final checkpoint" "$tmp/run3.log"
check "3: a final checkpoint" test -n "$(ls "$tmp"/run3/checkpoint/step-*/MANIFEST 2>/dev/null)"
check "3: nothing restarted" test -z "$(lp_restarts "$tmp/run3")"
check "3: no process left" lp_no_leftovers "$tmp/run3"

# 4. The scheduler's restart, with a stub towerps that has --recover (the real one may
# not yet): killed while <run_dir>/scheduler.job says running, it is restarted with
# --recover and the same flags; once it failed the job on purpose (state failed,
# exit 1), it is not.
cat > "$tmp/towerps-stub" <<'STUB'
#!/usr/bin/env bash
role="$1"; shift
dry=""
for a in "$@"; do
  case "$a" in
    --help) echo "  --recover (bool) take over the job in <run_dir>/scheduler.job"; exit 0 ;;
    --flagfile=*) run="$(sed -n 's/^--run_dir=//p' "${a#*=}")" ;;
    --endpoint_file=*) endpoint_file="${a#*=}" ;;
    --dry_run) dry=1 ;;
  esac
done
if [ -n "$dry" ]; then  # what deploy/job.sh reads of a dry run
  echo "{\"dry_run\":\"ok\",\"run_dir\":\"$run\",\"num_servers\":1,\"num_workers\":1}"
  exit 0
fi
if [ "$role" = scheduler ]; then
  echo "$*" >> "$run/stub-scheduler.args"
  printf 'job 00000000000000aa\nendpoint tcp://127.0.0.1:9\nstate running\n' > "$run/scheduler.job"
  echo tcp://127.0.0.1:9 > "$endpoint_file"
fi
until [ -f "$run/stub.end" ]; do sleep 0.05; done  # holds the scheduler's exit code
[ "$role" = scheduler ] || exit 0
printf 'job 00000000000000aa\nendpoint tcp://127.0.0.1:9\nstate failed\n' > "$run/scheduler.job"
exit "$(cat "$run/stub.end")"
STUB
chmod +x "$tmp/towerps-stub"
"$root/deploy/local.sh" --config "$tmp/model.conf" --dataset "$tmp/ds" --run_dir "$tmp/run4" \
  --servers 1 --workers 1 --towerps "$tmp/towerps-stub" > "$tmp/run4.log" 2>&1 &
job=$!
has_pid() { [ -n "$(lp_pid "$1" "$2" "$3")" ]; }
check "4: the stub job starts" lp_wait 30 has_pid "$tmp/run4" worker 0
victim="$(lp_pid "$tmp/run4" scheduler 0)"
kill -KILL "$victim"
check "4: the killed scheduler is restarted" lp_wait 20 grep -q \
  "restart role=scheduler rank=0 old_pid=$victim status=signal:KILL " "$tmp/run4/supervisor.log"
recovers() { [ "$(grep -c -- '--recover' "$1/stub-scheduler.args")" -eq "$2" ]; }
check "4: with --recover, both times" lp_wait 10 recovers "$tmp/run4" 2
check "4: with the same flags" test "$(sort -u "$tmp/run4/stub-scheduler.args" | wc -l)" -eq 1
echo 1 > "$tmp/run4/stub.end"
finish_job 30
check "4: a job failed on purpose is not restarted (exit 1, got $rc)" test "$rc" -eq 1
check "4: one restart only" test "$(lp_restarts "$tmp/run4" | wc -l)" -eq 1
check "4: no process left" lp_no_leftovers "$tmp/run4"

if [ $fail -ne 0 ]; then exit 1; fi
echo "supervisor_test: all checks passed"
