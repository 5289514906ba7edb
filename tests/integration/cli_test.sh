#!/usr/bin/env bash
# The towerps CLI contract: subcommand list, version, clear non-zero exits on bad input.
set -u
bin="$1"
fail=0
# shellcheck source=tests/integration/check.sh
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"

out=$("$bin" --help); check "--help exits 0" test $? -eq 0
check "--help lists version" grep -q '^  version' <<<"$out"

out=$("$bin" version); check "version exits 0" test $? -eq 0
for lib in zeromq capnproto faiss openblas; do
  check "version names $lib" grep -q "^$lib [0-9A-Za-z]" <<<"$out"
done

err=$("$bin" no-such-subcommand 2>&1 >/dev/null); rc=$?
check "unknown subcommand exits non-zero" test $rc -ne 0
check "unknown subcommand says one line" test "$(wc -l <<<"$err")" -eq 1
check "unknown subcommand names it" grep -q "no-such-subcommand" <<<"$err"

err=$("$bin" version --no_such_flag=1 2>&1 >/dev/null); rc=$?
check "unknown flag exits non-zero" test $rc -ne 0
check "unknown flag names it" grep -q "no_such_flag" <<<"$err"

err=$("$bin" version --no-such-flag=a-b 2>&1 >/dev/null); rc=$?
check "a dashed unknown flag is named with underscores" grep -q "no_such_flag" <<<"$err"
gen="$(mktemp -d)"
"$bin" generate --output-dir="$gen/logs" --users=20 --items=10 --interactions=100 --clusters=2 \
  >/dev/null
check "flag names may use dashes (--output-dir)" test -s "$gen/logs/interactions.csv"
rm -rf "$gen"

"$bin" >/dev/null 2>&1; rc=$?
check "no subcommand exits non-zero" test $rc -ne 0

out=$("$bin" version --help); check "subcommand --help exits 0" test $? -eq 0
check "subcommand --help names it" grep -q "towerps version" <<<"$out"

# Keys (docs/security.md): keygen, and clear refusals of bad key setups.
keys="$(mktemp -d)"
trap 'rm -rf "$keys"' EXIT
"$bin" keygen --output_dir="$keys/k" --num_servers=2 --num_workers=1 >/dev/null
check "keygen exits 0" test $? -eq 0
check "keygen writes the allow-list" test "$(grep -vc '^#' "$keys/k/allowed_keys")" -eq 6
check "keygen makes secrets private" test "$(stat -c %a "$keys/k/ps-1.secret")" = 600
err=$("$bin" keygen --output_dir="$keys/k" 2>&1 >/dev/null); rc=$?
check "keygen never overwrites keys" test $rc -ne 0
check "keygen says why in one line" test "$(wc -l <<<"$err")" -eq 1
err=$("$bin" ps --config=x --dataset=x --scheduler=tcp://127.0.0.1:1 --run_dir="$keys/run" --curve_dir="$keys/k" \
  2>&1 >/dev/null); rc=$?
check "ps with keys and no rank exits non-zero" test $rc -ne 0
check "ps with keys and no rank names --rank" grep -q -- "--rank" <<<"$err"
printf 'scheduler not-a-key\n' > "$keys/k/allowed_keys"
err=$("$bin" ctl --scheduler=tcp://127.0.0.1:1 --curve_dir="$keys/k" status 2>&1 >/dev/null); rc=$?
check "a bad allow-list exits non-zero" test $rc -ne 0
check "a bad allow-list names file:line" grep -q "allowed_keys:1:" <<<"$err"

# Addresses (--host, --port, --advertise_host; net/address.h): refused before anything
# is loaded or bound, one line, exit 1.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
addr_refused() {  # addr_refused NAME WORD ROLE FLAGS...: exit 1, one line naming WORD
  local name="$1" word="$2" err rc
  err=$("$bin" "${@:3}" 2>&1 >/dev/null); rc=$?
  check "$name exits 1 (exit $rc)" test $rc -eq 1
  check "$name says one line" test "$(wc -l <<<"$err")" -eq 1
  check "$name names $word" grep -q -- "$word" <<<"$err"
}
for role in scheduler ps worker; do
  addr_refused "$role --host=0.0.0.0 without --advertise_host" --advertise_host \
    "$role" --config=x --dataset=x --run_dir="$keys/run" --host=0.0.0.0
done
addr_refused "an unresolvable --host" no-such-host.invalid \
  worker --config=x --dataset=x --run_dir="$keys/run" --host=no-such-host.invalid
addr_refused "a malformed --host" "10.0.1" \
  scheduler --config=x --dataset=x --run_dir="$keys/run" --host=10.0.1
addr_refused "--port out of range" --port ps --config=x --dataset=x --run_dir="$keys/run" --port=70000
"$bin" scheduler --config=x --dataset=x --run_dir="$keys/run" --bind=tcp://127.0.0.1:0 \
  >/dev/null 2>&1
check "the scheduler's --bind is gone" test $? -ne 0
"$bin" worker --config=x --dataset=x >/dev/null 2>&1
check "a worker with neither --scheduler nor --run_dir is a usage error" test $? -eq 2
# No --scheduler: <run_dir>/scheduler.endpoint, waited for up to --scheduler_timeout_ms
# (after the config and dataset load: a small generated one).
mkdir -p "$keys/wait"
"$bin" generate --output_dir="$keys/log" --users=200 --items=100 --interactions=3000 \
  >/dev/null 2>&1 && "$bin" prepare --input="$keys/log" --output="$keys/ds" >/dev/null 2>&1
check "a small dataset for the worker" test $? -eq 0
endpoint_refused() {  # endpoint_refused NAME WORD: the worker of $keys/wait exits 1 naming WORD
  local err rc
  err=$("$bin" worker --config="$root/examples/generated.conf" --dataset="$keys/ds" \
        --run_dir="$keys/wait" --scheduler_timeout_ms=300 2>&1 >/dev/null); rc=$?
  check "$1: exit 1 (exit $rc)" test $rc -eq 1
  check "$1: one error line naming $2" test "$(grep -c "^towerps worker: .*$2" <<<"$err")" -eq 1
}
endpoint_refused "no endpoint file in time" "scheduler.endpoint after 300 ms"
for role in ps worker; do  # a dry run waits for nothing
  "$bin" "$role" --config="$root/examples/generated.conf" --dataset="$keys/ds" \
    --run_dir="$keys/wait" --scheduler_timeout_ms=20000 --dry_run >/dev/null 2>&1
  check "a $role dry run without --scheduler exits 0 at once" test $? -eq 0
done
printf 'tcp://127.0.0.1:80\nsecond line\n' > "$keys/wait/scheduler.endpoint"
endpoint_refused "a bad endpoint file" "scheduler.endpoint: bad endpoint"
head -c 100000 /dev/zero > "$keys/wait/scheduler.endpoint"
endpoint_refused "an oversized endpoint file" "scheduler.endpoint: over"

if [ $fail -ne 0 ]; then exit 1; fi
echo "cli_test: all checks passed"
