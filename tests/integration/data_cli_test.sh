#!/usr/bin/env bash
# towerps generate / prepare through the real binary: outputs, counts, clear errors.
set -u
bin="$1"
fail=0
# shellcheck source=tests/integration/check.sh
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

out=$("$bin" generate --output_dir="$tmp/log" --users=300 --items=200 --interactions=5000 \
      --seed=7 2>&1); check "generate exits 0" test $? -eq 0
check "generate reports rows" grep -q "^interactions: 5000" <<<"$out"
for f in interactions.csv item_vectors.csv towerps.spec; do
  check "generate wrote $f" test -s "$tmp/log/$f"
done
"$bin" generate --output_dir="$tmp/log2" --users=300 --items=200 --interactions=5000 --seed=7 \
  >/dev/null 2>&1
check "generate is deterministic" cmp -s "$tmp/log/interactions.csv" "$tmp/log2/interactions.csv"

out=$("$bin" prepare --input="$tmp/log" --output="$tmp/ds" --history_length=5 2>&1)
check "prepare exits 0" test $? -eq 0
check "prepare prints users" grep -q "^users: [1-9]" <<<"$out"
check "prepare prints splits" grep -Eq "^examples: train [1-9][0-9]*, valid [1-9][0-9]*, test [1-9]" <<<"$out"
check "prepare wrote meta" grep -q "^history_length 5$" "$tmp/ds/meta.txt"
check "prepare left no temp dir" test -z "$(ls -d "$tmp"/ds.tmp-* 2>/dev/null)"

err=$("$bin" prepare --input="$tmp/log" --output="$tmp/ds" 2>&1 >/dev/null); rc=$?
check "existing output refused" test $rc -ne 0
check "existing output says one line" test "$(wc -l <<<"$err")" -eq 1

mkdir -p "$tmp/bad"
printf '1::10::5::100\n1::11::5\n1::12::5::300\n' >"$tmp/bad/ratings.dat"
err=$("$bin" prepare --input="$tmp/bad" --output="$tmp/bad_ds" --strict 2>&1 >/dev/null); rc=$?
check "strict exits non-zero" test $rc -ne 0
check "strict names file:line" grep -q "ratings.dat:2: wrong column count" <<<"$err"
check "strict leaves nothing" test ! -e "$tmp/bad_ds"
out=$("$bin" prepare --input="$tmp/bad" --output="$tmp/bad_ds" 2>/dev/null)
check "lenient run skips and counts" grep -q "^skipped lines: 1" <<<"$out"

err=$("$bin" prepare --input="$tmp/nope" --output="$tmp/x" 2>&1 >/dev/null); rc=$?
check "missing input exits non-zero" test $rc -ne 0
check "missing input says one line" test "$(wc -l <<<"$err")" -eq 1
printf 'interactions = a.csv\nuser = u\n' >"$tmp/bad.spec"
err=$("$bin" prepare --column_spec="$tmp/bad.spec" --output="$tmp/x" 2>&1 >/dev/null); rc=$?
check "bad spec exits non-zero" test $rc -ne 0
check "bad spec names the key" grep -q "'item' is missing" <<<"$err"
err=$("$bin" generate --output_dir="$tmp/g" --clusters=1 2>&1 >/dev/null); rc=$?
check "bad generate flag exits non-zero" test $rc -ne 0

out=$("$bin" prepare --help); check "prepare --help" grep -q -- "--min_rating" <<<"$out"

if [ $fail -ne 0 ]; then exit 1; fi
echo "data_cli_test: all checks passed"
