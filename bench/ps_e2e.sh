#!/usr/bin/env bash
# Part of `bench/run.sh ps`: end-to-end training examples/s of a local cluster
# (1 scheduler + 2 servers + 2 workers, all on this machine's cores) beside embedded
# mode with 2 threads, same data, same model config, same run.
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

"$root/deploy/local.sh" --config "$config" --dataset "$work/ds" --run_dir "$work/cluster" \
  --servers 2 --workers 2 --towerps "$towerps" >/dev/null 2>&1
# Each worker prints "worker: N steps, M examples in S s": the cluster's rate is all
# examples over the slowest worker's time.
read -r examples seconds < <(cat "$work"/cluster/worker-*.out | awk \
  '/^worker:/ { ex += $4; if ($7 > s) s = $7 } END { print ex, s }')
cluster="$(awk -v e="$examples" -v s="$seconds" 'BEGIN { printf "%.1f", e / s }')"
ratio="$(awk -v a="$cluster" -v b="$embedded" 'BEGIN { printf "%.4f", a / b }')"
printf '{"suite":"ps","name":"e2e_training_1sched_2ps_2workers","value":%s,"unit":"examples/s","peer":"embedded_2_threads","peer_value":%s,"ratio":%s}\n' \
  "$cluster" "$embedded" "$ratio"
