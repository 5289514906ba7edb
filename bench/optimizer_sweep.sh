#!/usr/bin/env bash
# Held-out quality of one config under table/loss variants, several seeds: `towerps
# train` (embedded) + `towerps evaluate` per (variant, seed) on the same prepared data.
#   bench/optimizer_sweep.sh [--threads=N] [--seeds="1 2"] [--split=test|valid|cold] \
#     CONFIG DATASET 'name|sed-expr' ...
# --split: the split `evaluate` ranks (default test). Each variant is a sed expression
# applied to CONFIG (an empty one runs it unchanged);
# `seed=1` in the train line is replaced by each seed. One JSON line per run on stdout.
# Example (docs/models.md "Sparse Adam"):
#   bench/optimizer_sweep.sh examples/movietweetings.conf DS \
#     'adagrad|' 'adam_row|s/optimizer=rowwise_adagrad lr=0.05/optimizer=adam lr=0.001/'
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
towerps="${TOWERPS_BUILD_DIR:-$root/build}/cmd/towerps"
threads=1
seeds="1 2"
split=test
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --threads=*) threads="${1#*=}" ;;
    --seeds=*) seeds="${1#*=}" ;;
    --split=*) split="${1#*=}" ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
  shift
done
[ $# -ge 3 ] || { sed -n 2,12p "$0" >&2; exit 2; }
config="$1"; dataset="$2"; shift 2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for variant in "$@"; do
  name="${variant%%|*}"; expr="${variant#*|}"
  for seed in $seeds; do
    conf="$work/$name-$seed.conf"
    sed -e "${expr:-p;d}" "$config" | sed -E "s/^(train .*)seed=[0-9]+/\1seed=$seed/" >"$conf"
    line="$("$towerps" train --config="$conf" --dataset="$dataset" --run_dir="$work/run" \
      --threads="$threads" 2>/dev/null | grep '^trained')"
    eps="$(sed -E 's/.* s, ([0-9.]+) examples\/s.*/\1/' <<<"$line")"
    ev="$("$towerps" evaluate --config="$conf" --dataset="$dataset" \
      --checkpoint="$work/run/checkpoint" --split="$split" --json 2>/dev/null | tail -1)"
    echo "{\"variant\":\"$name\",\"seed\":$seed,\"examples_per_s\":$eps,\"eval\":$ev}"
    rm -rf "$work/run"
  done
done
