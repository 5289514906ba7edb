#!/usr/bin/env bash
# Poisoned numbers, repeated config keys and checkpoint files that belong elsewhere,
# through the real binary: each is refused with one clear line and a non-zero exit.
set -u
bin="$1"
src="$(cd "$(dirname "$0")/../.." && pwd)"
fail=0
# shellcheck source=tests/integration/check.sh
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"
refused() {  # refused NAME PATTERN COMMAND...: non-zero exit, one stderr line matching PATTERN
  local name="$1" pattern="$2"; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  check "$name exits non-zero" test $rc -ne 0
  check "$name says one line" test "$(grep -vc '^$' <<<"$err")" -eq 1
  if ! grep -q -- "$pattern" <<<"$err"; then echo "FAIL: $name: '$err' lacks '$pattern'"; fail=1; fi
}
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$bin" generate --output_dir="$tmp/log" --users=200 --items=150 --interactions=3000 --seed=3 \
  >/dev/null 2>&1
"$bin" prepare --input="$tmp/log" --output="$tmp/ds" >/dev/null 2>&1
check "dataset prepared" test -s "$tmp/ds/meta.txt"
conf="$src/examples/generated.conf"
train() {  # train RUN_DIR CONFIG [STEPS]
  "$bin" train --config="$2" --dataset="$tmp/ds" --run_dir="$1" --threads=1 \
    --max_steps="${3:-4}" --metrics_interval_ms=100000 --logtostderr=0 --minloglevel=3
}

# Numbers that would poison training, and repeated keys, are refused before training.
sed 's/^\(table item_id .*\) lr=0.05$/\1 lr=nan/' "$conf" >"$tmp/nan.conf"
refused "lr=nan" "nan.conf:5: lr=nan" train "$tmp/run_nan" "$tmp/nan.conf"
check "lr=nan trained nothing" test ! -e "$tmp/run_nan/checkpoint"
sed 's/^table item_id dim=32 /table item_id dim=32 dim=8 /' "$conf" >"$tmp/dup.conf"
refused "dim=32 dim=8" "key 'dim' appears twice" train "$tmp/run_dup" "$tmp/dup.conf"
sed 's/dense_sync_every=1/dense_sync_every=0/' "$conf" >"$tmp/sync.conf"
refused "dense_sync_every=0" "dense_sync_every=0" train "$tmp/run_sync" "$tmp/sync.conf"
sed 's/temperature=0.05/temperature=0/' "$conf" >"$tmp/temp.conf"
refused "temperature=0" "temperature=0" train "$tmp/run_temp" "$tmp/temp.conf"

# A missing checkpoint says it does not exist (not "torn").
refused "--checkpoint=/nope" "does not exist" "$bin" export --config="$conf" \
  --dataset="$tmp/ds" --checkpoint="$tmp/nope" --embeddings="$tmp/emb"
refused "--resume=/nope" "does not exist" "$bin" scheduler --config="$conf" \
  --dataset="$tmp/ds" --run_dir="$tmp/sched" --resume="$tmp/nope" --logtostderr=0

# Two runs; a file of the first copied into the second's checkpoint is refused.
train "$tmp/run1" "$conf" 4 >/dev/null 2>&1; check "run 1 trains" test $? -eq 0
train "$tmp/run2" "$conf" 6 >/dev/null 2>&1; check "run 2 trains" test $? -eq 0
ckpt1="$(ls -d "$tmp"/run1/checkpoint/step-*)"
ckpt2="$(ls -d "$tmp"/run2/checkpoint/step-*)"
export_to() {  # export_to CONFIG CHECKPOINT OUT
  "$bin" export --config="$1" --dataset="$tmp/ds" --checkpoint="$2" --embeddings="$3" \
    --logtostderr=0
}
export_to "$conf" "$ckpt2" "$tmp/emb_ok" >/dev/null 2>&1; check "intact checkpoint exports" test $? -eq 0
sed '5{h;d};6{G}' "$conf" >"$tmp/swapped.conf"  # item_id and user_id tables swapped
check "tables swapped in the config" grep -q "^table user_id" <(sed -n 5p "$tmp/swapped.conf")
refused "swapped tables" "table 'item_id', not 'user_id'" export_to "$tmp/swapped.conf" "$ckpt2" "$tmp/emb_swapped"
cp "$ckpt1/ps-0-table-0.snap" "$ckpt2/ps-0-table-0.snap"
refused "file from another run" "ps-0-table-0.snap belongs elsewhere: job" export_to "$conf" "$ckpt2" "$tmp/emb_copied"

if [ $fail -ne 0 ]; then exit 1; fi
echo "integrity_cli_test: all checks passed"
