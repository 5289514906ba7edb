#!/usr/bin/env bash
# Installs what is missing, builds towerps (warnings are errors) and runs every test;
# then builds with AddressSanitizer + UndefinedBehaviorSanitizer and runs the unit
# tests again; then builds the libFuzzer targets with clang (build-fuzz) and runs each
# for a bounded time (fuzz/run.sh: a crash fails the run and names its input).
# `.ci/run` calls this.
# Usage: deploy/test.sh [--no-asan] [--no-fuzz] [--fuzz-seconds N]
#   --fuzz-seconds N  seconds per fuzz target (default $TOWERPS_FUZZ_SECONDS, else 20;
#                     15 targets, about 5 minutes on 2 cores)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
asan=1
fuzz=1
fuzz_seconds="${TOWERPS_FUZZ_SECONDS:-20}"
while [ $# -gt 0 ]; do
  case "$1" in
    --no-asan) asan=0; shift ;;
    --no-fuzz) fuzz=0; shift ;;
    --fuzz-seconds) fuzz_seconds="$2"; shift 2 ;;
    *) echo "deploy/test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
jobs="$(nproc)"

deploy/install_deps.sh

if [ ! -d "$root/../shared/data" ]; then
  echo "deploy/test.sh: ../shared/data is absent; tests that need real data will skip" >&2
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTOWERPS_WERROR=ON
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j "$jobs")

if [ "$asan" -eq 1 ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTOWERPS_WERROR=ON \
    -DTOWERPS_SANITIZE=ON -DTOWERPS_BUILD_BENCH=OFF
  cmake --build build-asan -j "$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j "$jobs" -L "unit|fuzz")
fi

if [ "$fuzz" -eq 1 ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTOWERPS_FUZZ=ON -DTOWERPS_BUILD_BENCH=OFF
  cmake --build build-fuzz -j "$jobs" --target fuzzers
  fuzz/run.sh --build build-fuzz --seconds "$fuzz_seconds"
fi
