#!/usr/bin/env bash
# `bench/run.sh train`: towerps embedded training beside the PyTorch reference of the
# same model (bench/peers/torch_two_tower.py), same data, config, batch and schedule,
# 2 threads each, in one run. Prints JSON figures: test Recall@50 and NDCG@10 (peer =
# reference), training examples/s (peer = reference) and towerps's model FLOP
# utilisation (analytic FLOPs/example x examples/s / OpenBLAS sgemm GFLOP/s on the
# step's shapes, measured by bench_model_flops in this run).
# Data: MovieTweetings (examples/movietweetings.conf) when ../shared/data has it
# (TOWERPS_SHARED_DATA overrides), else `towerps generate` defaults (examples/generated.conf).
# Not run by CI; installs Debian's python3-torch with apt-get when it is missing.
# Figures are medians over 3 interleaved rounds (towerps, sgemm bound, reference).
# Usage: bench/train_e2e.sh BUILD_DIR [--quick]   (--quick: one round of 60 steps)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$1"; shift
quick=false
[ "${1:-}" = "--quick" ] && quick=true
python=/usr/bin/python3  # Debian's python3-torch is for the system interpreter
threads=2

if ! "$python" -c 'import torch, numpy' 2>/dev/null; then
  echo "bench/run.sh train: python3-torch is missing; installing it with apt-get" \
       "(the reference is not a CI dependency)" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y python3-torch python3-numpy >&2
  else
    sudo apt-get install -y python3-torch python3-numpy >&2
  fi
fi
# Debian's torch calls whatever libblas.so.3 points at; the reference BLAS is ~20x slower.
blas_link="$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || true)"
case "$blas_link" in
  *openblas*) ;;
  *) echo "bench/run.sh train: libblas.so.3 is $blas_link, not OpenBLAS; run" \
          "update-alternatives --config libblas.so.3-x86_64-linux-gnu" >&2; exit 1 ;;
esac
cmake --build "$build" --target bench_model_flops >&2

towerps="$build/cmd/towerps"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mt=""
d="${TOWERPS_SHARED_DATA:-$root/../shared/data}/movietweetings-100k"
[ -d "$d" ] && mt="$d"
if [ -n "$mt" ]; then
  data_name=movietweetings
  config="$root/examples/movietweetings.conf"
  "$towerps" prepare --input="$mt" --output="$work/ds" --min_rating=7 >/dev/null 2>&1
else
  data_name=generated
  config="$root/examples/generated.conf"
  "$towerps" generate --output_dir="$work/logs" >/dev/null 2>&1
  "$towerps" prepare --input="$work/logs" --output="$work/ds" >/dev/null 2>&1
fi
steps_flag=""
$quick && steps_flag="--max_steps=60"
echo "bench/run.sh train: data $data_name, config ${config#"$root"/}" >&2

# Rounds of (towerps train + evaluate, sgemm bound, reference), interleaved so that
# both trainers see the same drift in machine load; figures are medians over rounds.
rounds=3
$quick && rounds=1
towerps_evals=(); refs=(); flops_lines=()
for ((r = 0; r < rounds; ++r)); do
  # "trained N steps (M examples) in S s, R examples/s, final loss L"
  line="$("$towerps" train --config="$config" --dataset="$work/ds" --run_dir="$work/run$r" \
    --threads="$threads" $steps_flag 2>/dev/null | grep '^trained')"
  echo "towerps: $line" >&2
  eps="$(sed -E 's/.* s, ([0-9.]+) examples\/s.*/\1/' <<<"$line")"
  eval_json="$("$towerps" evaluate --config="$config" --dataset="$work/ds" \
    --checkpoint="$work/run$r/checkpoint" --json 2>/dev/null | tail -1)"
  towerps_evals+=("${eval_json%\}},\"examples_per_s\":$eps}")
  # The sgemm bound right after training, on the step's shapes and threads.
  flops_lines+=("$("$build/bench/bench_model_flops" --config="$config" --dataset="$work/ds" \
    --threads="$threads")")
  echo "bench_model_flops: ${flops_lines[-1]}" >&2
  refs+=("$("$python" "$root/bench/peers/torch_two_tower.py" --dataset="$work/ds" \
    --config="$config" --threads="$threads" $steps_flag | tail -1)")
done

# median KEY JSON...: the median of one number over several JSON objects.
median() {
  "$python" -c 'import json, statistics, sys
print(statistics.median(json.loads(o)[sys.argv[1]] for o in sys.argv[2:]))' "$@"
}
figure() {  # name value unit peer peer_value
  awk -v n="$1" -v v="$2" -v u="$3" -v p="$4" -v pv="$5" 'BEGIN {
    printf "{\"suite\":\"train\",\"name\":\"%s\",\"value\":%.6g,\"unit\":\"%s\",", n, v, u
    printf "\"peer\":\"%s\",\"peer_value\":%.6g,\"ratio\":%.4f}\n", p, pv, (pv != 0 ? v / pv : 0) }'
}
peer="pytorch_reference_${threads}_threads"
for metric in recall@50 recall@10 ndcg@10; do
  figure "${metric}_${data_name}_towerps_embedded" "$(median "$metric" "${towerps_evals[@]}")" \
    "$metric" "$peer" "$(median "$metric" "${refs[@]}")"
done
towerps_eps="$(median examples_per_s "${towerps_evals[@]}")"
figure "training_examples_per_s_${threads}_threads" "$towerps_eps" examples/s "$peer" \
  "$(median examples_per_s "${refs[@]}")"
per_example="$(median flops_per_example "${flops_lines[@]}")"
sgemm="$(median sgemm_gflops "${flops_lines[@]}")"
achieved="$(awk -v f="$per_example" -v e="$towerps_eps" 'BEGIN { print f * e / 1e9 }')"
figure "model_gflops_${threads}_threads" "$achieved" GFLOP/s \
  "openblas_sgemm_same_shapes_${threads}_threads" "$sgemm"
"$python" -c 'import json, sys; r = json.loads(sys.argv[1])
print("reference: torch", r["torch"], "BLAS", ", ".join(r["blas"]), file=sys.stderr)' "${refs[0]}"
