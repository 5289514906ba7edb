#!/usr/bin/env bash
# Installs what is missing, builds towerps (warnings are errors) and runs every test;
# then builds with AddressSanitizer + UndefinedBehaviorSanitizer and runs the unit
# tests again. `.ci/run` calls this. Usage: deploy/test.sh [--no-asan]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
asan=1
for arg in "$@"; do
  case "$arg" in
    --no-asan) asan=0 ;;
    *) echo "deploy/test.sh: unknown argument '$arg'" >&2; exit 2 ;;
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
     ctest --output-on-failure -j "$jobs" -L unit)
fi
