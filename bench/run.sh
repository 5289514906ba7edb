#!/usr/bin/env bash
# bench/run.sh SUITE [--quick] | list
# Builds Release into build/ if needed and runs one benchmark suite. Prints one JSON
# object per figure (DESIGN.md, "Contracts"); BENCHMARKS.md holds the latest figures.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${TOWERPS_BUILD_DIR:-$root/build}"

# suite name -> what it measures; the program is build/bench/bench_<suite>.
declare -A suites=(
  [common]="CRC-32C and metrics recording beside their memory/atomic bounds"
  [sparse_emb]="embedding table pull/push/memory beside std::unordered_map and a flat gather"
  [checkpoint]="sparse_emb snapshots at 10M/100M rows: full vs incremental (1%, 10% touched); pushes during a save vs without"
  [data]="prepare, generate and example-reader throughput"
  [models]="layer forward/backward throughput beside OpenBLAS sgemm on the same shapes; attention vs mean pooling step"
  [exact_topk]="exact top-100 retrieval (blocked sgemm + selection) beside a naive Eigen loop"
  [index]="sharded Faiss HNSW (4 shards) build, QPS and recall@10 beside one HNSW index and exact brute force"
  [ps]="parameter-server pull/push on loopback beside raw ZeroMQ, CURVE beside plaintext; cluster vs embedded training"
  [chaos]="kill -9 of random cluster processes under deploy/local.sh's supervisor: kills survived, steps lost, recall, time to recover"
  [dashboard]="towerps dashboard on 100k and 1M metrics lines: page bytes, render seconds, peak RSS (flat)"
  [serve]="towerps serve on the demo index under N closed-loop clients: QPS, p50/p99/p999, HTTP beside ZeroMQ"
  [fresh]="item delta -> retrievable latency (p50/p99) at 100/1000 ms watcher polls and on SIGHUP; apply and query cost of a fresh segment"
  [train]="towerps embedded training beside a PyTorch reference of the same model (recall, examples/s, MFU)"
  [quality]="issue 16's table: mean/attention pooling x in-batch hard negatives on MovieTweetings, generated sequential data and the cold-item split (markdown)"
)
# Suites that are one script under another name than bench/<suite>_e2e.sh.
declare -A scripts=([quality]=quality_table.sh)

usage() { echo "usage: bench/run.sh SUITE [--quick] | list" >&2; exit 2; }
[ $# -ge 1 ] || usage
if [ "$1" = list ]; then
  for s in $(printf '%s\n' "${!suites[@]}" | sort); do printf '%-12s %s\n' "$s" "${suites[$s]}"; done
  exit 0
fi
suite="$1"; shift
[ -n "${suites[$suite]+x}" ] || { echo "bench/run.sh: unknown suite '$suite' (bench/run.sh list)" >&2; exit 2; }

if [ ! -f "$build/build.ninja" ] ||
   { [ -f "$root/bench/${suite}_bench.cc" ] && [ ! -x "$build/bench/bench_$suite" ]; }; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
fi
# A suite without bench/<suite>_bench.cc (train) is only its _e2e.sh script.
if [ -f "$root/bench/${suite}_bench.cc" ]; then
  cmake --build "$build" --target "bench_$suite" >&2
  "$build/bench/bench_$suite" "$@"
fi
# A suite may add figures measured with whole processes (bench/<suite>_e2e.sh).
script="$root/bench/${scripts[$suite]:-${suite}_e2e.sh}"
if [ -x "$script" ]; then
  cmake --build "$build" --target towerps >&2
  "$script" "$build" "$@"
fi
