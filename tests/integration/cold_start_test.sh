#!/usr/bin/env bash
# Cold-start items (issue 16): on generated data whose items carry content vectors,
# hold 20% of the items out entirely (`prepare --cold_item_fraction`), train the same
# model with and without the item side's content and attributes, and rank the
# held-out items' positives among themselves (`evaluate --split=cold`). The content
# model must retrieve them; the ID-only model and popularity cannot (their rows and
# counts never saw those items), so they stay near chance (10 / held-out items).
set -u
bin="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fail=0
# shellcheck source=tests/integration/check.sh
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$bin" generate --output_dir="$work/logs" --users=2000 --items=1000 --interactions=60000 \
  --seed=3 >/dev/null || { echo "FAIL: generate"; exit 1; }
out=$("$bin" prepare --input="$work/logs" --output="$work/ds" --cold_item_fraction=0.2)
check "prepare exits 0" test $? -eq 0
check "prepare reports the cold split" grep -q "cold [1-9]" <<<"$out"

# The ID-only model: the same config without the item side's content and attributes.
config="$root/examples/generated.conf"
grep -v -e '^feature item creator' -e '^feature item item_country' \
  -e '^feature item item_language' -e '^feature item tags' "$config" |
  sed -e 's/^dense item on/dense item off/' >"$work/id_only.conf"
check "the ID-only config differs" test "$(diff "$config" "$work/id_only.conf" | grep -c '^>')" -eq 1

cold_eval() {  # cold_eval NAME CONFIG: trains, evaluates the cold split into NAME.json
  "$bin" train --config="$2" --dataset="$work/ds" --run_dir="$work/$1" --threads=2 \
    >"$work/$1.log" 2>&1 || { echo "FAIL: train $1"; tail -5 "$work/$1.log"; fail=1; }
  "$bin" evaluate --config="$2" --dataset="$work/ds" --checkpoint="$work/$1/checkpoint" \
    --split=cold --json >"$work/$1.json" 2>"$work/$1.eval.err" ||
    { echo "FAIL: evaluate $1"; tail -5 "$work/$1.eval.err"; fail=1; }
}
cold_eval content "$config"
cold_eval id_only "$work/id_only.conf"
content=$(jq -r '."recall@10"' "$work/content.json")
popularity=$(jq -r '."popularity_recall@10"' "$work/content.json")
items=$(jq -r '.items' "$work/content.json")
id_only=$(jq -r '."recall@10"' "$work/id_only.json")
echo "cold split over $items held-out items, recall@10: content $content, ID-only $id_only," \
  "popularity $popularity (chance $(awk -v n="$items" 'BEGIN { printf "%.3f", 10 / n }'))"
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
check "the held-out items are about 20% of the catalog" gt "$items" 120
check "content model retrieves cold items (recall@10 > 0.25)" gt "$content" 0.25
check "content model beats the ID-only one by 4x" gt "$content" "$(awk -v x="$id_only" 'BEGIN { print 4 * x }')"
check "content model beats popularity by 4x" gt "$content" "$(awk -v x="$popularity" 'BEGIN { print 4 * x }')"
check "ID-only model stays near chance" gt "$(awk -v n="$items" 'BEGIN { print 30 / n }')" "$id_only"
exit "$fail"
