#!/usr/bin/env bash
# bench/run.sh quality: issue 16's comparison table. Per dataset, the same prepared
# data and the base config's epochs for every row: mean pooling / attention, each
# without and with in-batch and with mined hard negatives, two seeds (bench/optimizer_sweep.sh:
# embedded `train` + `evaluate`, 1 training thread).
#   bench/quality_table.sh [BUILD_DIR] [--quick] [--seeds="1 2"]
# Datasets: (1) MovieTweetings (../shared/data, --min_rating=7,
# examples/movietweetings.conf; skipped with a message when absent), (2) generated
# sequential data (--sequence_strength=0.6, examples/generated.conf), (3) the cold-item
# split (generated with content vectors, --cold_item_fraction=0.2, evaluate
# --split=cold, examples/generated.conf). --quick: one seed. Prints a markdown table
# (per-seed values "s1 / s2" for Recall@10/50, means elsewhere); the raw JSON lines go
# to stderr. ~8 min on a 2-core VM (load average ~2-3).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${TOWERPS_BUILD_DIR:-$root/build}"
if [ $# -ge 1 ] && [ -d "$1" ]; then build="$1"; shift; fi
seeds="1 2"
while [ $# -ge 1 ]; do
  case "$1" in
    --quick) seeds="1" ;;
    --seeds=*) seeds="${1#*=}" ;;
    *) echo "usage: bench/quality_table.sh [BUILD_DIR] [--quick] [--seeds=\"1 2\"]" >&2; exit 2 ;;
  esac
  shift
done
export TOWERPS_BUILD_DIR="$build"
towerps="$build/cmd/towerps"
[ -x "$towerps" ] || { echo "quality_table: no $towerps (cmake --build build --target towerps)" >&2; exit 1; }
command -v jq >/dev/null || { echo "quality_table: needs jq" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The variants (sed expressions on the base config; bench/optimizer_sweep.sh).
attention='s/^feature user history table=item_id pooling=mean/feature user history table=item_id pooling=attention heads=2 blocks=1 max_len=20 ffn=64/'
hard='s/^loss .*/& hard_negatives=8 hard_weight=2/'
mined='mine every=100 per_user=8 skip_top=50'  # docs/models.md "Hard negatives", Mined
variants=(
  "mean|"
  "mean + hard|$hard"
  "attention|$attention"
  "attention + hard|$attention;$hard"
  "mean + mined|\$a $mined"
  "attention + mined|$attention;\$a $mined"
)

sweep() {  # sweep LABEL CONFIG DATASET [SPLIT]: one JSON line per (variant, seed), tagged
  "$root/bench/optimizer_sweep.sh" --threads=1 --seeds="$seeds" --split="${4:-test}" \
    "$2" "$3" "${variants[@]}" | jq -c --arg data "$1" '. + {data: $data}' | tee -a "$work/runs.jsonl" >&2
}

mt="$root/../shared/data/movietweetings-100k"
if [ -d "$mt" ]; then
  "$towerps" prepare --input="$mt" --output="$work/mt" --min_rating=7 >/dev/null
  sweep "MovieTweetings, rating >= 7" "$root/examples/movietweetings.conf" "$work/mt"
else
  echo "quality_table: $mt absent, MovieTweetings rows skipped" >&2
fi

"$towerps" generate --output_dir="$work/seq-logs" --users=2000 --items=1000 \
  --interactions=60000 --sequence_strength=0.6 --seed=1 >/dev/null
"$towerps" prepare --input="$work/seq-logs" --output="$work/seq" --history_length=20 >/dev/null
sweep "generated sequential (S=0.6)" "$root/examples/generated.conf" "$work/seq"

"$towerps" generate --output_dir="$work/cold-logs" --users=3000 --items=1500 \
  --interactions=90000 --seed=1 >/dev/null
"$towerps" prepare --input="$work/cold-logs" --output="$work/cold" --cold_item_fraction=0.2 >/dev/null
sweep "generated, cold items (20%)" "$root/examples/generated.conf" "$work/cold" cold

# One row per (data, variant): per-seed Recall@10/50, means of the rest.
echo "| data | user history + loss | Recall@10 | Recall@50 | Recall@100 | NDCG@10 | popularity R@10 / R@50 | train examples/s |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
jq -rs '
  def f3: (. * 1000 | round) as $n | "\($n / 1000 | floor).\("00\($n % 1000)" | .[-3:])";
  def mean(f): (map(f) | add / length);
  reduce .[] as $r ({}; .[$r.data + "|" + $r.variant] += [$r]) |  # keeps run order
  .[] | {data: .[0].data, variant: .[0].variant, runs: .} |
  "| \(.data) | \(.variant) | \([.runs[].eval["recall@10"] | f3] | join(" / ")) | " +
  "\([.runs[].eval["recall@50"] | f3] | join(" / ")) | " +
  "\(.runs | mean(.eval["recall@100"]) | f3) | \(.runs | mean(.eval["ndcg@10"]) | f3) | " +
  "\(.runs[0].eval["popularity_recall@10"] | f3) / \(.runs[0].eval["popularity_recall@50"] | f3) | " +
  "\(.runs | mean(.examples_per_s) | round) |"
' "$work/runs.jsonl"
