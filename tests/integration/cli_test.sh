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

if [ $fail -ne 0 ]; then exit 1; fi
echo "cli_test: all checks passed"
