#!/usr/bin/env bash
# examples/movielens.conf (issue 16's MovieLens recipe) on tiny MovieLens-1M-format data:
# the prepare command of the file's header comment (verbatim but for the paths) reads
# ratings.dat / users.dat / movies.dat as ml-1m, the config parses against that
# dataset, `train` runs a few steps and `evaluate` ranks the test split.
set -u
bin="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fail=0
# shellcheck source=tests/integration/check.sh
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
config="$root/examples/movielens.conf"

# 40 users x 12 ratings over 30 movies, in the ML-1M layout (UserID::Gender::Age::
# Occupation::Zip, MovieID::Title (Year)::Genres, UserID::MovieID::Rating::Timestamp).
mkdir -p "$work/ml"
genres=(Action Comedy Drama "Children's" Thriller)
for m in $(seq 1 30); do
  echo "$m::Movie $m ($((1970 + m)))::${genres[$((m % 5))]}|${genres[$(((m + 2) % 5))]}"
done >"$work/ml/movies.dat"
ages=(1 18 25 35 45 50 56)
for u in $(seq 1 40); do
  echo "$u::$([ $((u % 2)) = 0 ] && echo F || echo M)::${ages[$((u % 7))]}::$((u % 21))::$((10000 + u))"
  for k in $(seq 0 11); do
    echo "$u::$(((u + 3 * k) % 30 + 1))::$((k % 5 + 1))::$((978300000 + 100 * u + k))" >>"$work/ml/ratings.dat"
  done
done >"$work/ml/users.dat"

prepare="$(sed -n 's/^#[[:space:]]*\(towerps prepare .*\)$/\1/p' "$config" | head -1)"
check "the header names a prepare command" test -n "$prepare"
check "the prepare command reads ml-1m" grep -q -- "--format=ml-1m" <<<"$prepare"
# Its placeholders: --input=ML-1M-DIR --output=DIR.
prepare="${prepare/towerps /}"
prepare="$(sed -E "s#--input=[^ ]+#--input=$work/ml#; s#--output=[^ ]+#--output=$work/ds#" <<<"$prepare")"
# shellcheck disable=SC2086
out="$("$bin" $prepare 2>&1)"
check "prepare exits 0" test $? -eq 0
check "prepare detects no bad lines" grep -q "examples: train [1-9]" <<<"$out"
check "the dataset has the demographics" grep -q "sparse user occupation" "$work/ds/meta.txt"

"$bin" train --config="$config" --dataset="$work/ds" --run_dir="$work/run" --threads=1 \
  --max_steps=3 >"$work/train.log" 2>&1 || { echo "FAIL: train"; tail -5 "$work/train.log"; fail=1; }
check "train ran steps" grep -q "^trained [1-9]" "$work/train.log"
"$bin" evaluate --config="$config" --dataset="$work/ds" --checkpoint="$work/run/checkpoint" \
  --json >"$work/eval.json" 2>"$work/eval.err" ||
  { echo "FAIL: evaluate"; tail -5 "$work/eval.err"; fail=1; }
check "evaluate ranks the 40 test users" test "$(jq -r .queries "$work/eval.json")" = 40
exit "$fail"
