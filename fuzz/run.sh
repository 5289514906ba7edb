#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build (fuzz/README.md) for a bounded time and
# fails if any crashes, naming the crashing input. The seed corpus fuzz/corpus/NAME is
# read only; what a run discovers goes to BUILD/fuzz-corpus/NAME, crash inputs to
# BUILD/fuzz-artifacts/NAME/.
# Usage: fuzz/run.sh [--build DIR] [--seconds N] [--seed N] [NAME...]
#   --build DIR   the fuzz build directory (default build-fuzz)
#   --seconds N   seconds per target (default $TOWERPS_FUZZ_SECONDS, else 20)
#   --seed N      libFuzzer's seed (default $TOWERPS_FUZZ_SEED, else 1: a CI run explores
#                 the same way each time; use 0 for a random seed when hunting)
#   NAME...       targets to run (default: every fuzz/*_fuzzer.cc)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-fuzz"
seconds="${TOWERPS_FUZZ_SECONDS:-20}"
seed="${TOWERPS_FUZZ_SEED:-1}"
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$(cd "$2" && pwd)"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    -*) echo "fuzz/run.sh: unknown argument '$1'" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
if [ ${#names[@]} -eq 0 ]; then
  for f in "$root"/fuzz/*_fuzzer.cc; do names+=("$(basename "$f" _fuzzer.cc)"); done
fi

# Per-input work is bounded by -max_len and -timeout; -rss_limit_mb keeps a target
# from taking the machine. ASan/UBSan reports abort, so libFuzzer records them.
# The readers that take paths write each input to a scratch file: on tmpfs that is ~30x
# faster than on a disk.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
start=$(date +%s)
for name in "${names[@]}"; do
  bin="$build/fuzz/${name}_fuzzer"
  [ -x "$bin" ] || { echo "fuzz/run.sh: $bin is not built" >&2; exit 1; }
  corpus="$build/fuzz-corpus/$name"
  artifacts="$build/fuzz-artifacts/$name"
  mkdir -p "$corpus" "$artifacts"
  log="$artifacts/run.log"
  flags=(-max_len=16384)
  case "$name" in
    example_reader|movielens|csv) flags=(-max_len=65536) ;;
    # Keeps schedulers alive across inputs (scheduler_fuzzer.cc), which per-input leak
    # checks would take for leaks and scan the heap for every input.
    scheduler) flags+=(-detect_leaks=0) ;;
  esac
  if "$bin" -seed="$seed" -max_total_time="$seconds" "${flags[@]}" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$artifacts/" \
       "$corpus" "$root/fuzz/corpus/$name" >"$log" 2>&1; then
    echo "fuzz $name: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs in ${seconds}s)"
  else
    crash="$(grep -o 'Test unit written to .*' "$log" | tail -1 | sed 's/Test unit written to //')"
    echo "fuzz $name: FAILED; crashing input: ${crash:-none written}; log: $log" >&2
    grep -m3 -E 'ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error|uncaught' "$log" >&2 || true
    failed+=("$name")
  fi
done
echo "fuzz: ${#names[@]} targets in $(( $(date +%s) - start ))s"
echo "fuzz: $(( ${#names[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
