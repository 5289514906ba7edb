#!/usr/bin/env bash
# Several hosts on one machine (issue 14): a MovieTweetings job with the scheduler on
# 127.0.0.2, servers on 127.0.0.3 and 127.0.0.4 and workers on 127.0.0.5 and
# 127.0.0.6 (--host, --port=0). The servers and workers start first, with no
# --scheduler: they wait for <run_dir>/scheduler.endpoint, which the scheduler writes
# once bound. With the job paused after its first checkpoint, `ss` (by pid) must show every listener bound to
# its own address only (never 0.0.0.0), and every connection of every process
# (workers to the scheduler and both servers, servers to the scheduler, the
# scheduler to the servers for its checkpoints) with the process's own address as
# its local address. The job must finish with every process exiting 0, and the
# servers must have registered tcp://<their host>:<port>. Skips (exit 77) without
# ../shared/data or without ss.
# Usage: multihost_test.sh TOWERPS_BINARY   (KEEP_LOGS=1 keeps the logs)
set -u
bin="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
input="${TOWERPS_SHARED_DATA:-$root/../shared/data}/movietweetings-100k"
if [ ! -s "$input/ratings.dat" ]; then
  echo "multihost_test: SKIPPED: MovieTweetings not found at $input (../shared/data is absent)"
  exit 77
fi
command -v ss >/dev/null || { echo "multihost_test: SKIPPED: no ss (iproute2)"; exit 77; }
fail=0
# shellcheck source=tests/integration/check.sh
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"
LP_TOWERPS="$bin"
# shellcheck source=deploy/local_probe.sh
source "$root/deploy/local_probe.sh"
tmp="$(mktemp -d)"
declare -A pid host
cleanup() {
  local p
  for p in "${pid[@]}"; do
    if kill -0 "$p" 2>/dev/null && tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q towerps
    then kill -KILL "$p"; fi
  done
  if [ "$fail" -eq 0 ] && [ -z "${KEEP_LOGS:-}" ]; then rm -rf "$tmp"; else echo "logs kept in $tmp"; fi
}
trap cleanup EXIT

"$bin" prepare --input="$input" --output="$tmp/mt" --min_rating=7 >/dev/null 2>&1 ||
  { echo "FAIL: prepare"; fail=1; exit 1; }
# 4 epochs (~920 steps, a few seconds): time to pause it after its first checkpoint.
sed -E 's/^(train .*)epochs=[0-9]+/\1epochs=4/' "$root/examples/movietweetings.conf" > "$tmp/mt.conf"
run="$tmp/run"
common=(--config="$tmp/mt.conf" --dataset="$tmp/mt" --run_dir="$run")
start() {  # start NAME HOST ROLE FLAGS...: one process in the background
  local name="$1"
  host[$name]="$2"
  "$bin" "$3" "${common[@]}" --host="$2" --port=0 "${@:4}" > "$tmp/$name.out" 2> "$tmp/$name.err" &
  pid[$name]=$!
}
start ps0 127.0.0.3 ps --rank=0 --handler_threads=0
start ps1 127.0.0.4 ps --rank=1 --handler_threads=0
start worker0 127.0.0.5 worker --worker_rank=0
start worker1 127.0.0.6 worker --worker_rank=1
# They wait for the endpoint file (polled every 100 ms); the scheduler comes later.
waiting() { grep -q "waiting for the scheduler's endpoint" "$tmp/$1.err" && kill -0 "${pid[$1]}"; }
for name in ps0 ps1 worker0 worker1; do
  lp_wait 30 waiting "$name"
  check "$name waits for the scheduler's endpoint file" waiting "$name"
done
start scheduler 127.0.0.2 scheduler --num_servers=2 --num_workers=2 --checkpoint_every_steps=40

lp_wait 30 test -s "$run/scheduler.endpoint"
sched_ep="$(cat "$run/scheduler.endpoint" 2>/dev/null)"
check "the endpoint file holds tcp://127.0.0.2:<port> ($sched_ep)" \
  grep -qE '^tcp://127\.0\.0\.2:[0-9]+$' <<< "$sched_ep"
sched_addr="${sched_ep#tcp://}"

# `ss` lines of one process: listeners (LISTEN) or connections (-t: established etc.),
# as "local peer".
listeners() { ss -H -tlnp 2>/dev/null | grep "pid=$1," | awk '{ print $4 }'; }
connections() { ss -H -tnp 2>/dev/null | grep "pid=$1," | awk '{ print $4, $5 }'; }
ps_addr() { listeners "${pid[$1]}" | head -1; }
# Every connection that must exist at once: worker -> scheduler and both servers,
# ps -> scheduler, scheduler -> both servers (its checkpoint client).
connected() {  # connected NAME PEER...: NAME has a connection to each PEER
  local c peer
  c="$(connections "${pid[$1]}")"
  shift
  for peer in "$@"; do grep -qE " $peer\$" <<< "$c" || return 1; done
}
all_connected() {
  local a0 a1
  a0="$(ps_addr ps0)" a1="$(ps_addr ps1)"
  [ -n "$a0" ] && [ -n "$a1" ] &&
    connected worker0 "$sched_addr" "$a0" "$a1" && connected worker1 "$sched_addr" "$a0" "$a1" &&
    connected ps0 "$sched_addr" && connected ps1 "$sched_addr" && connected scheduler "$a0" "$a1"
}
# Paused once the scheduler has written a checkpoint (its client to the servers is
# then connected), the connections stay put while `ss` looks at them.
ctl() { "$bin" ctl --scheduler="$sched_ep" --ctl_timeout_ms=2000 "$1" > /dev/null 2>&1; }
checkpointed() { lp_status "$run" | grep -qE '"phase":"training".*"last_checkpoint":"[^"]'; }
lp_wait 60 checkpointed
check "the job trains and writes a checkpoint" checkpointed
check "ctl pause" ctl pause
lp_wait 60 all_connected
check "every process is connected to its peers" all_connected

own_listeners() {  # own_listeners NAME: listens on its own host only (at least once)
  local l
  l="$(listeners "${pid[$1]}")"
  [ -n "$l" ] && ! grep -qvE "^${host[$1]//./\\.}:[0-9]+\$" <<< "$l" ||
    { echo "$1 (${host[$1]}) listens on: $l"; return 1; }
}
own_connections() {  # own_connections NAME: every connection's local address is its host
  local c
  c="$(connections "${pid[$1]}")"
  [ -n "$c" ] && ! grep -qvE "^${host[$1]//./\\.}:[0-9]+ " <<< "$c" ||
    { echo "$1 (${host[$1]}) connections (local peer): $c"; return 1; }
}
for name in scheduler ps0 ps1; do
  check "$name listens on ${host[$name]} only" own_listeners "$name"
done
for name in worker0 worker1; do
  check "$name listens on no TCP port" test -z "$(listeners "${pid[$name]}")"
done
for name in scheduler ps0 ps1 worker0 worker1; do
  check "$name connects from ${host[$name]} only" own_connections "$name"
done
status="$(lp_status "$run")"
check "ps 0 registered tcp://$(ps_addr ps0)" grep -q "\"endpoint\":\"tcp://$(ps_addr ps0)\"" <<< "$status"
check "ps 1 registered tcp://$(ps_addr ps1)" grep -q "\"endpoint\":\"tcp://$(ps_addr ps1)\"" <<< "$status"

check "ctl resume" ctl resume

# The job finishes by itself: every process exits 0 (bounded: ctest TIMEOUT 240).
all_exited() {
  local p
  for p in "${pid[@]}"; do kill -0 "$p" 2>/dev/null && return 1; done
  return 0
}
lp_wait 150 all_exited
check "every process exited in time" all_exited
for name in scheduler ps0 ps1 worker0 worker1; do
  if kill -0 "${pid[$name]}" 2>/dev/null; then continue; fi
  wait "${pid[$name]}"
  rc=$?
  check "$name exits 0 (exit $rc)" test "$rc" -eq 0
done
check "the scheduler ends the job done" grep -q '"phase":"done"' "$tmp/scheduler.out"
check "a checkpoint was written" test -s "$(ls -d "$run"/checkpoint/step-*/MANIFEST 2>/dev/null | head -1)"

if [ $fail -ne 0 ]; then
  for f in "$tmp"/*.err; do echo "== $f"; tail -5 "$f"; done
  exit 1
fi
echo "multihost_test: all checks passed"
