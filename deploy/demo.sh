#!/usr/bin/env bash
# The main job end to end: install what is missing, build Release into build/, then
#   generate (or --data DIR) -> prepare -> train -> evaluate -> dashboard -> export -> build-index
#   -> evaluate --ann
# and print result tables. The last line of output is one JSON object with the test
# split's exact-retrieval figures (recall@K, ndcg@K) and the ANN ones through the
# sharded index (ann_recall@K, index_recall@K, latency; DESIGN.md, "Contracts").
#
# Training runs on a local cluster (1 scheduler, 2 parameter servers, 2 workers on
# 127.0.0.1, deploy/local.sh --secure: CURVE keys in <run_dir>/train/keys, every
# connection encrypted and authenticated) unless --embedded.
#
# Usage: deploy/demo.sh [--data DIR] [--config FILE] [--run_dir DIR] [--embedded]
#                       [--users N] [--items N] [--interactions N] [--threads N]
#                       [--servers N] [--workers N] [--min_rating R]
#   --data DIR   a MovieLens/MovieTweetings-format directory (or one with a
#                towerps.spec) instead of generated data; pair it with --config.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
data=""
config=""
run_dir="$root/runs/demo"
users=5000
items=3000
interactions=200000
threads="$(nproc)"
min_rating=0
embedded=false
servers=2
workers=2
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --run_dir) run_dir="$2"; shift 2 ;;
    --users) users="$2"; shift 2 ;;
    --items) items="$2"; shift 2 ;;
    --interactions) interactions="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --min_rating) min_rating="$2"; shift 2 ;;
    --embedded) embedded=true; shift ;;
    --servers) servers="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    *) echo "deploy/demo.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

deploy/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target towerps
towerps="$root/build/cmd/towerps"
rm -rf "$run_dir"
mkdir -p "$run_dir"
step() { echo; echo "=== $* ==="; }

if [ -z "$data" ]; then
  step "generate: $users users, $items items, $interactions interactions"
  "$towerps" generate --output_dir="$run_dir/logs" --users="$users" --items="$items" \
    --interactions="$interactions" --seed=1
  data="$run_dir/logs"
  config="${config:-$root/examples/generated.conf}"
fi
[ -n "$config" ] || { echo "deploy/demo.sh: --data needs --config (see examples/)" >&2; exit 2; }

step "prepare: $data"
"$towerps" prepare --input="$data" --output="$run_dir/dataset" --min_rating="$min_rating"

if [ "$embedded" = true ]; then
  step "train (embedded, $threads threads): $config"
  "$towerps" train --config="$config" --dataset="$run_dir/dataset" --run_dir="$run_dir/train" \
    --threads="$threads" --metrics_interval_ms=500
else
  step "train (secured local cluster: 1 scheduler, $servers servers, $workers workers): $config"
  deploy/local.sh --config "$config" --dataset "$run_dir/dataset" --run_dir "$run_dir/train" \
    --servers "$servers" --workers "$workers" --secure --towerps "$towerps" \
    --metrics_interval_ms 500
  echo "logs: $run_dir/train/logs, metrics: $run_dir/train/metrics.jsonl"
fi

step "evaluate: test split, exact retrieval over all items"
"$towerps" evaluate --config="$config" --dataset="$run_dir/dataset" \
  --checkpoint="$run_dir/train/checkpoint" --split=test --threads="$threads" \
  --run_dir="$run_dir/train" | tee "$run_dir/evaluate.txt"

step "dashboard: the run's charts, evaluation and embedding health in one HTML page"
"$towerps" dashboard --run_dir="$run_dir/train"
echo "open it in a browser: file://$run_dir/train/dashboard.html"

step "export: user tower over every user, item tower over every item"
"$towerps" export --config="$config" --dataset="$run_dir/dataset" \
  --checkpoint="$run_dir/train/checkpoint" --embeddings="$run_dir/embeddings"

step "build-index: 4 shards over the item embeddings (--engine=auto: exact search for small shards, hnswlib HNSW above)"
"$towerps" build-index --embeddings="$run_dir/embeddings" --index_dir="$run_dir/index" \
  --shards=4 --threads="$threads"

step "evaluate --ann: test split through the index beside exact retrieval"
"$towerps" evaluate --ann --config="$config" --dataset="$run_dir/dataset" \
  --checkpoint="$run_dir/train/checkpoint" --index_dir="$run_dir/index" --split=test \
  --threads="$threads" \
  | tee "$run_dir/evaluate_ann.txt"   # its last line is the contract's JSON object
