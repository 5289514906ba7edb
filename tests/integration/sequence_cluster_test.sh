#!/usr/bin/env bash
# The sequential user tower on a real cluster (issue 16): `pooling=attention` keeps its
# encoder's parameters with the towers' on the parameter servers and pushes the
# history rows' gradients, so a 2-server, 2-worker deploy/local.sh job on generated
# sequential data (`generate --sequence_strength`) must beat the same job with mean
# pooling by a clear margin, as embedded training does (worker/sequence_quality_test),
# and so must the same job mining hard negatives on its workers.
set -u
bin="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fail=0
# shellcheck source=tests/integration/check.sh
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$bin" generate --output_dir="$work/logs" --users=1000 --items=500 --interactions=30000 \
  --sequence_strength=0.6 --seed=2 >/dev/null || { echo "FAIL: generate"; exit 1; }
"$bin" prepare --input="$work/logs" --output="$work/ds" --history_length=20 >/dev/null ||
  { echo "FAIL: prepare"; exit 1; }
cat >"$work/attention.conf" <<'CONF'
table item_id dim=32 init=uniform:0.05 optimizer=rowwise_adagrad lr=0.05
feature user history table=item_id pooling=attention heads=2 blocks=1 max_len=20 ffn=64
feature item item_id table=item_id
tower user mlp=128 cross=2 out=64 activation=relu
tower item mlp=128 cross=2 out=64 activation=relu
loss kind=softmax temperature=0.05 logq=on extra_negatives=64
dense_optimizer kind=adam lr=0.002
schedule warmup=50 min_lr_ratio=0.05
train batch=256 epochs=3 seed=1 dense_sync_every=1
CONF
sed 's/pooling=attention .*/pooling=mean/' "$work/attention.conf" >"$work/mean.conf"
# Mined hard negatives: each worker mines with the rows it pulls.
{ cat "$work/attention.conf"; echo "mine every=50 per_user=4 skip_top=10"; } >"$work/mined.conf"

recall10() {  # recall10 NAME: a local cluster job, then test Recall@10 of its checkpoint
  if ! timeout 300 "$root/deploy/local.sh" --config "$work/$1.conf" --dataset "$work/ds" \
      --run_dir "$work/$1" --servers 2 --workers 2 --watch_interval_ms 0 >"$work/$1.log" 2>&1; then
    echo "FAIL: the $1 job"; tail -5 "$work/$1.log"; fail=1; echo 0; return
  fi
  "$bin" evaluate --config="$work/$1.conf" --dataset="$work/ds" \
    --checkpoint="$work/$1/checkpoint" --json 2>/dev/null | jq -r '."recall@10"'
}
attention=$(recall10 attention)
mean=$(recall10 mean)
mined=$(recall10 mined)
echo "cluster jobs, test recall@10: attention $attention, mean pooling $mean," \
  "attention + mined negatives $mined"
dense_params() { awk '$1 == "dense_params" { print $2 }' "$work/$1/checkpoint/"*/MANIFEST 2>/dev/null | head -1; }
check "the servers hold the encoder's parameters besides the towers'" \
  test "$(dense_params attention)" -gt "$(dense_params mean)"
check "attention beats mean pooling by 0.1 on a cluster" \
  awk -v a="$attention" -v m="$mean" 'BEGIN { exit !(a > m + 0.1) }'
check "a job mining hard negatives trains as well" \
  awk -v a="$mined" -v m="$mean" 'BEGIN { exit !(a > m + 0.1) }'
exit "$fail"
