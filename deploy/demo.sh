#!/usr/bin/env bash
# The main job end to end on the default data: install what is missing, build Release
# into build/, then run every stage that exists. The last line of output is one JSON
# object (DESIGN.md, "Contracts").
# Usage: deploy/demo.sh [--data DIR] [--run_dir DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
data=""
run_dir="$root/runs/demo"
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --run_dir) run_dir="$2"; shift 2 ;;
    *) echo "deploy/demo.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

deploy/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target towerps
towerps="$root/build/cmd/towerps"
mkdir -p "$run_dir"

"$towerps" version
echo '{"stage":"foundation","status":"ok"}'
