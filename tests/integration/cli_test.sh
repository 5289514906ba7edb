#!/usr/bin/env bash
# The towerps CLI contract: subcommand list, version, clear non-zero exits on bad input.
set -u
bin="$1"
fail=0
check() {  # check NAME COMMAND...: the command must succeed
  local name="$1"; shift
  if ! "$@"; then echo "FAIL: $name"; fail=1; fi
}

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

if [ $fail -ne 0 ]; then exit 1; fi
echo "cli_test: all checks passed"
