#!/usr/bin/env bash
# The job file (deploy/README.md): one gflags flag file shared by every process of a
# job, on a small generated dataset:
#  1. `--dry_run` of scheduler, ps and worker prints one JSON line of the job, binds,
#     starts and writes nothing; bad configs, missing keys, typos and lines that are not
#     flags are one error line naming what is wrong;
#  2. a flag of another role is taken from a job file but refused on the command line;
#  3. deploy/local.sh --flagfile=JOB runs the job to the end, printing the progress
#     line of `ctl status --watch` (and refuses job flags beside it);
#  4. a worker waiting for the scheduler leaves on SIGTERM (143); --exit_when_done=false keeps the scheduler (answering `ctl --flagfile=JOB status`, and `status --watch` ends at once)
#     and a server up after the job ended until SIGTERM (then exit 0), and a recovered scheduler of an ended job idles
#     instead of training it again.
# Usage: job_file_test.sh TOWERPS_BINARY
set -u
bin="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LP_TOWERPS="$bin"
# shellcheck source=deploy/local_probe.sh
source "$root/deploy/local_probe.sh"
# shellcheck source=deploy/job.sh
source "$root/deploy/job.sh"
fail=0
# shellcheck source=tests/integration/check.sh
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  for pid in $(lp_leftovers "$tmp/run"); do kill -KILL "$pid"; done
  if [ "$fail" -eq 0 ] && [ -z "${KEEP_LOGS:-}" ]; then rm -rf "$tmp"; else echo "logs kept in $tmp"; fi
}
trap cleanup EXIT

"$bin" generate --output_dir="$tmp/logs" --users=300 --items=200 --interactions=8000 \
  --clusters=4 --seed=5 >/dev/null 2>&1 || { echo "FAIL: generate"; exit 1; }
"$bin" prepare --input="$tmp/logs" --output="$tmp/ds" >/dev/null 2>&1 ||
  { echo "FAIL: prepare"; exit 1; }
cat > "$tmp/job.flags" <<EOF
# a job of 1 server and 1 worker
--config=$root/examples/generated.conf
--dataset=$tmp/ds
--run_dir=$tmp/run
--num_servers=1
--num_workers=1
--staleness=2
--heartbeat_timeout_ms=3000
EOF

# 1. Dry runs.
out="$("$bin" scheduler --flagfile="$tmp/job.flags" --dry_run)"
check "1: scheduler dry run exits 0" test $? -eq 0
check "1: scheduler dry run is one JSON line" test "$(wc -l <<<"$out")" -eq 1
check "1: dry run reports the job's servers" test "$(job_field "$out" num_servers)" = 1
check "1: dry run reports the staleness" test "$(job_field "$out" staleness)" = 2
check "1: dry run reports the run dir" test "$(job_field "$out" run_dir)" = "$tmp/run"
check "1: dry run plans steps" test "$(job_field "$out" planned_steps)" -gt 0
out="$("$bin" ps --flagfile="$tmp/job.flags" --rank=0 --dry_run)"
check "1: ps dry run exits 0" test "$(job_field "$out" role)" = ps
out="$("$bin" worker --flagfile="$tmp/job.flags" --worker_rank=0 --dry_run)"
check "1: worker dry run exits 0" test "$(job_field "$out" worker_rank)" = 0
check "1: a dry run writes nothing" test ! -e "$tmp/run"

expect_error() {  # expect_error NAME RC PATTERN ARGS...: exit code RC, one line matching
  local name="$1" want_rc="$2" pattern="$3" err rc
  shift 3
  err="$("$bin" "$@" 2>&1 >/dev/null)"; rc=$?
  check "$name: exit $want_rc (got $rc)" test "$rc" -eq "$want_rc"
  check "$name: one line" test "$(wc -l <<<"$err")" -eq 1
  check "$name: says '$pattern'" grep -q -- "$pattern" <<<"$err"
}
printf 'train epochs=1\nnonsense here\n' > "$tmp/bad.conf"
cp "$tmp/job.flags" "$tmp/badconf.flags" && echo "--config=$tmp/bad.conf" >> "$tmp/badconf.flags"
expect_error "1: bad config" 1 "bad.conf" scheduler --flagfile="$tmp/badconf.flags" --dry_run
cp "$tmp/job.flags" "$tmp/typo.flags" && echo "--stalenes=3" >> "$tmp/typo.flags"
expect_error "1: a typo" 2 "typo.flags:9: unknown flag --stalenes" \
  worker --flagfile="$tmp/typo.flags" --dry_run
cp "$tmp/job.flags" "$tmp/noflag.flags" && echo "num_servers=2" >> "$tmp/noflag.flags"
expect_error "1: a line that is no flag" 2 "noflag.flags:9: 'num_servers=2' is not a flag" \
  scheduler --flagfile="$tmp/noflag.flags" --dry_run
cp "$tmp/job.flags" "$tmp/keys.flags" && echo "--curve_dir=$tmp/no-keys" >> "$tmp/keys.flags"
expect_error "1: missing keys" 1 "no-keys" ps --flagfile="$tmp/keys.flags" --rank=0 --dry_run
expect_error "1: resume without a checkpoint" 1 "checkpoint" \
  scheduler --flagfile="$tmp/job.flags" --resume=latest --dry_run
check "1: job_has_checkpoint says none" bash -c \
  "source '$root/deploy/job.sh'; ! job_has_checkpoint '$bin' '$tmp/job.flags'"

# 2. Another role's flag: from the job file yes (--staleness above), typed no; a flag
# of no job role is refused from a file too.
expect_error "2: typed foreign flag" 2 "unknown flag --staleness" \
  worker --flagfile="$tmp/job.flags" --staleness=3 --dry_run
cp "$tmp/job.flags" "$tmp/index.flags" && echo "--index_dir=$tmp" >> "$tmp/index.flags"
expect_error "2: a flag of no job role" 2 "unknown flag --index_dir in a flag file" \
  worker --flagfile="$tmp/index.flags" --dry_run

# 3. deploy/local.sh --flagfile.
"$root/deploy/local.sh" --flagfile "$tmp/job.flags" --towerps "$bin" > "$tmp/local.log" 2>&1
check "3: local.sh --flagfile exits 0" test $? -eq 0
check "3: the job is done" grep -q "^state:* *done" "$tmp/run/scheduler.job"
check "3: the job wrote a checkpoint" job_has_checkpoint "$bin" "$tmp/job.flags"
check "3: local.sh's stderr shows the progress line" \
  grep -qE '^step +[0-9]+/[0-9]+  loss .* examples/s  lr x[0-9.]+  ETA ' "$tmp/local.log"
watcher="$(cat "$tmp/run/watch.pid" 2>/dev/null)"
check "3: ... and its watcher is gone" test -n "$watcher" -a ! -e "/proc/${watcher:-0}"
"$root/deploy/local.sh" --flagfile "$tmp/job.flags" --workers 2 --towerps "$bin" \
  > "$tmp/local2.log" 2>&1
check "3: job flags beside --flagfile are refused" test $? -eq 2
check "3: ... saying why" grep -q "belongs in the job file" "$tmp/local2.log"

# 4. --exit_when_done=false. First, a worker that finds no scheduler yet waits for its
# endpoint file; SIGTERM ends the wait at once: stopped, not done (143).
rm -rf "$tmp/run"
mkdir -p "$tmp/run"
"$bin" worker --flagfile="$tmp/job.flags" --worker_rank=0 > "$tmp/waiting.out" 2>&1 &
waiting=$!; pids+=("$waiting")
check "4: a worker waits for the scheduler's endpoint file" \
  lp_wait 20 grep -qs "waiting for the scheduler's endpoint" "$tmp/waiting.out"
kill -TERM "$waiting"
wait "$waiting"; rc=$?
check "4: ... and SIGTERM ends the wait: exit 143 (got $rc)" test "$rc" -eq 143
ep="$tmp/run/scheduler.endpoint"
"$bin" scheduler --flagfile="$tmp/job.flags" --endpoint_file="$ep" --exit_when_done=false \
  > "$tmp/sched.out" 2> "$tmp/sched.err" &
sched=$!; pids+=("$sched")
check "4: the scheduler binds" lp_wait 30 test -s "$ep"
"$bin" ps --flagfile="$tmp/job.flags" --scheduler="$(cat "$ep")" --rank=0 \
  --exit_when_done=false > "$tmp/ps.out" 2> "$tmp/ps.err" &
ps=$!; pids+=("$ps")
"$bin" worker --flagfile="$tmp/job.flags" --scheduler="$(cat "$ep")" --worker_rank=0 \
  > "$tmp/worker.out" 2> "$tmp/worker.err" &
worker=$!; pids+=("$worker")
job_done() { grep -q "^state:* *done" "$tmp/run/scheduler.job" 2>/dev/null; }
check "4: the job finishes" lp_wait 90 job_done
check "4: the worker exits" lp_wait 20 eval '! kill -0 '"$worker"' 2>/dev/null'
check "4: the scheduler prints its final status" lp_wait 20 test -s "$tmp/sched.out"
sleep 3  # past the final phase's 2 s and the servers' next heartbeats
check "4: the scheduler stays up" kill -0 "$sched"
check "4: the server stays up" kill -0 "$ps"
status="$("$bin" ctl --flagfile="$tmp/job.flags" status 2>&1)"
check "4: ctl --flagfile finds the idle scheduler, which says done" \
  grep -q '"phase":"done"' <<<"$status"
out="$("$bin" ctl --flagfile="$tmp/job.flags" status --watch 2>&1)"; rc=$?
check "4: ctl status --watch of the ended job exits 0 (got $rc)" test "$rc" -eq 0
check "4: ... printing its progress line (not a terminal)" \
  grep -qE '^step +[0-9]+/[0-9]+  loss [0-9.]+ ' <<<"$out"
kill -TERM "$sched" "$ps"
wait "$sched"; rc=$?
check "4: the scheduler exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
out="$("$bin" ctl --flagfile="$tmp/job.flags" status --watch --watch_interval_ms=100 \
  --ctl_timeout_ms=200 --watch_give_up_ms=1000 2>&1)"; rc=$?
check "4: --watch with no scheduler gives up when asked to (exit 1, got $rc)" test "$rc" -eq 1
check "4: ... saying it retried" grep -q "scheduler unreachable, retrying" <<<"$out"
wait "$ps"; rc=$?
check "4: the server exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
"$bin" scheduler --flagfile="$tmp/job.flags" --recover --exit_when_done=false \
  > "$tmp/sched2.out" 2> "$tmp/sched2.err" &
sched=$!; pids+=("$sched")
sleep 2
check "4: a recovered scheduler of an ended job idles" kill -0 "$sched"
check "4: ... without starting a new job" test "$(grep -c '^state' "$tmp/run/scheduler.job")" -eq 1
check "4: ... still done" job_done
kill -TERM "$sched"
wait "$sched"; rc=$?
check "4: ... and exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0

if [ $fail -ne 0 ]; then exit 1; fi
echo "job_file_test: all checks passed"
