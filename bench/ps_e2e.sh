#!/usr/bin/env bash
# Part of `bench/run.sh ps`: end-to-end training examples/s of a local cluster
# (1 scheduler + 2 servers + 2 workers, all on this machine's cores) beside embedded
# mode with 2 threads, same data, same model config, same run; then the same cluster
# with --secure (CURVE on every connection) beside it.
# Usage: bench/ps_e2e.sh BUILD_DIR [--quick]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$1"; shift
quick=false
[ "${1:-}" = "--quick" ] && quick=true
towerps="$build/cmd/towerps"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
interactions=400000
$quick && interactions=60000
"$towerps" generate --output_dir="$work/logs" --users=10000 --items=5000 \
  --interactions="$interactions" --seed=2 >/dev/null 2>&1
"$towerps" prepare --input="$work/logs" --output="$work/ds" >/dev/null 2>&1
config="$root/examples/generated.conf"

embedded_line="$("$towerps" train --config="$config" --dataset="$work/ds" \
  --run_dir="$work/embedded" --threads=2 2>/dev/null | grep '^trained')"
# "trained N steps (M examples) in S s, R examples/s, ..."
embedded="$(sed -E 's/.* s, ([0-9.]+) examples\/s.*/\1/' <<<"$embedded_line")"

# Examples/s of a local cluster run into $work/$1 (extra local.sh flags after it).
# Each worker prints "worker: N steps, M examples in S s": the cluster's rate is all
# examples over the slowest worker's time.
cluster_rate() {
  local run="$work/$1"; shift
  "$root/deploy/local.sh" --config "$config" --dataset "$work/ds" --run_dir "$run" \
    --servers 2 --workers 2 --towerps "$towerps" "$@" >/dev/null 2>&1
  cat "$run"/worker-*.out | awk '/^worker:/ { ex += $4; if ($7 > s) s = $7 }
    END { printf "%.1f", ex / s }'
}
figure() {  # name value unit peer peer_value
  printf '{"suite":"ps","name":"%s","value":%s,"unit":"%s","peer":"%s","peer_value":%s,"ratio":%s}\n' \
    "$1" "$2" "$3" "$4" "$5" "$(awk -v a="$2" -v b="$5" 'BEGIN { printf "%.4f", a / b }')"
}
cluster="$(cluster_rate cluster)"
figure e2e_training_1sched_2ps_2workers "$cluster" examples/s embedded_2_threads "$embedded"
# The same cluster with every connection encrypted and authenticated (--secure).
secure="$(cluster_rate secure --secure)"
figure e2e_training_secure_1sched_2ps_2workers "$secure" examples/s same_cluster_plaintext \
  "$cluster"
