#!/usr/bin/env bash
# `bench/run.sh serve`: starts one `towerps serve` over a run's index and exported
# embeddings (default runs/demo, made by deploy/demo.sh when absent) with the ZeroMQ
# socket and --http_port, then drives it with bench_serve_load (bench/serve_load.cc):
# N closed-loop clients over HTTP, then the same over ZeroMQ, a fixed time each;
# once per --max_batch value (a fresh server each: 1 = no batching), with serve's
# --search_threads. Prints the suite's JSON figures (label <run dir>_b<max_batch>);
# stops each server (by its PID) when done or on exit.
# Usage: bench/serve_e2e.sh BUILD_DIR [--quick] [--run_dir DIR] [--clients 1,8]
#                           [--seconds S] [--threads T] [--max_batch 1,32]
#                           [--search_threads N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$1"; shift
run_dir="$root/runs/demo"
clients="1,8"
seconds=5
threads=8  # serve's handler threads on both APIs: one per concurrent client at most
max_batches="1"  # serve's default; "1,32" compares batching off and on
search_threads=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) seconds=2; shift ;;
    --run_dir) run_dir="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --max_batch) max_batches="$2"; shift 2 ;;
    --search_threads) search_threads="$2"; shift 2 ;;
    *) echo "bench/serve_e2e.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
towerps="$build/cmd/towerps"
if [ ! -f "$run_dir/index/MANIFEST" ] || [ ! -f "$run_dir/embeddings/users.emb" ]; then
  echo "bench/serve_e2e.sh: no index in $run_dir: running deploy/demo.sh (~1 min)" >&2
  "$root/deploy/demo.sh" --run_dir "$run_dir" >&2
fi
cmake --build "$build" --target bench_serve_load >&2
source "$root/tests/integration/check.sh"  # free_port

work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
for max_batch in ${max_batches//,/ }; do
# A port may be taken between free_port and the bind: try a few.
rm -f "$work/endpoint"
for _ in 1 2 3 4 5; do
  port="$(free_port)"
  "$towerps" serve --index_dir="$run_dir/index" --embeddings="$run_dir/embeddings" \
    --serve_threads="$threads" --http_threads="$threads" --http_port="$port" \
    --max_batch="$max_batch" --search_threads="$search_threads" \
    --serve_endpoint_file="$work/endpoint" > "$work/serve.out" 2> "$work/serve.err" &
  pid=$!
  for _ in $(seq 1 600); do  # up to 60 s to load
    [ -s "$work/endpoint" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -s "$work/endpoint" ] && break
  wait "$pid" 2>/dev/null || true
  pid=""
done
[ -n "$pid" ] || { echo "bench/serve_e2e.sh: serve did not start:" >&2; cat "$work/serve.err" >&2; exit 1; }
"$build/bench/bench_serve_load" --http="http://127.0.0.1:$port" --zmq="$(cat "$work/endpoint")" \
  --users="$run_dir/embeddings/users.emb" --clients="$clients" --seconds="$seconds" \
  --label="$(basename "$run_dir")_b$max_batch"
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=""
done
