#!/usr/bin/env bash
# `towerps dashboard` on a real MovieTweetings cluster run (issue 15), loaded in headless
# Chromium (Debian `chromium`):
#  1. deploy/local.sh runs a small job (2 servers, 2 workers, 1 epoch, a metrics line
#     every 200 ms, a checkpoint every second); `towerps evaluate --run_dir` scores its
#     checkpoint (evaluations.jsonl);
#  2. the page renders; Chromium loads it from disk: no JavaScript error, every chart
#     has data (the page's #selfcheck says so), a screenshot written next to the page
#     is a PNG of a plausible size;
#  3. a copy of the run with a malformed and a truncated metrics line still renders,
#     and the page names both lines;
#  4. a copy of the run with a hostile node_dead reason and a collapsed evaluation
#     appended: every chart has data, the collapse warning shows, the reason is text.
# Every Chromium runs in its own session (setsid) and is killed by its process group
# (its leader's pid) on a deadline. Skips (77) without chromium or ../shared/data.
# Usage: dashboard_test.sh TOWERPS_BINARY   (KEEP_LOGS=1 keeps the run and the pages)
set -u
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
chromium="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$chromium" ]; then
  echo "dashboard_test: SKIPPED: chromium not found (deploy/install_deps.sh installs it)"
  exit 77
fi
input="${TOWERPS_SHARED_DATA:-$root/../shared/data}/movietweetings-100k"
if [ ! -s "$input/ratings.dat" ]; then
  echo "dashboard_test: SKIPPED: MovieTweetings not found at $input (../shared/data is absent)"
  exit 77
fi
LP_TOWERPS="$bin"
# shellcheck source=deploy/local_probe.sh
source "$root/deploy/local_probe.sh"
fail=0
# shellcheck source=tests/integration/check.sh
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"
tmp="$(mktemp -d)"
job="" browser=""
cleanup() {
  [ -n "$job" ] && kill -KILL "$job" 2>/dev/null
  [ -n "$browser" ] && kill -KILL -- "-$browser" 2>/dev/null
  for pid in $(lp_leftovers "$tmp/run"); do kill -KILL "$pid"; done
  if [ "$fail" -eq 0 ] && [ -z "${KEEP_LOGS:-}" ]; then rm -rf "$tmp"; else echo "logs kept in $tmp"; fi
}
trap cleanup EXIT

# 1. The job.
"$bin" prepare --input="$input" --output="$tmp/mt" --min_rating=7 > "$tmp/prepare.log" 2>&1 ||
  { echo "FAIL: prepare"; cat "$tmp/prepare.log"; exit 1; }
# Towers of 1024,1024 for 1 epoch (lp_chaos_config): ~10 s on 2 cores, so the run has a
# few hundred metrics lines and several checkpoints.
lp_chaos_config "$root/examples/movietweetings.conf" "$tmp/mt.conf" 1 256 ||
  { echo "FAIL: the job's config"; exit 1; }
printf '%s\n' "--config=$tmp/mt.conf" "--dataset=$tmp/mt" "--run_dir=$tmp/run" \
  "--num_servers=2" "--num_workers=2" "--metrics_interval_ms=200" \
  "--checkpoint_every_ms=1000" > "$tmp/job.flags"
"$root/deploy/local.sh" --flagfile "$tmp/job.flags" --towerps "$bin" > "$tmp/local.log" 2>&1 &
job=$!
lp_wait 150 eval '! kill -0 $job 2>/dev/null'
if kill -0 "$job" 2>/dev/null; then rc=-1; kill -TERM "$job"; else wait "$job"; rc=$?; fi
job=""
check "1: the job finished (local.sh exit $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || { tail -20 "$tmp/local.log"; exit 1; }
check "1: no process left" lp_no_leftovers "$tmp/run"
"$bin" evaluate --config="$tmp/mt.conf" --dataset="$tmp/mt" --checkpoint="$tmp/run/checkpoint" \
  --run_dir="$tmp/run" --json > "$tmp/evaluate.json" 2> "$tmp/evaluate.err"
check "1: evaluate --run_dir exits 0" test $? -eq 0
check "1: the run has many metrics lines" test "$(wc -l < "$tmp/run/metrics.jsonl")" -gt 100

# chrome_run OUT SECONDS ARGS...: headless Chromium in its own session, stdout to OUT;
# its process group is killed once it exits or past SECONDS (then 1).
chrome_run() {
  local out="$1" seconds="$2" profile status=0
  shift 2
  profile="$(mktemp -d "$tmp/chrome-profile.XXXXXX")"
  setsid "$chromium" --headless=new --no-sandbox --disable-gpu --disable-background-networking \
    --no-first-run --no-default-browser-check --disable-extensions --disable-sync \
    --user-data-dir="$profile" --virtual-time-budget=10000 "$@" > "$out" 2>> "$tmp/chromium.err" &
  browser=$!
  lp_wait "$seconds" eval '! kill -0 $browser 2>/dev/null'
  if kill -0 "$browser" 2>/dev/null; then status=1; echo "chromium timed out after $seconds s"; fi
  kill -KILL -- "-$browser" 2>/dev/null
  wait "$browser" 2>/dev/null
  browser=""
  return $status
}
selfcheck() {  # selfcheck DOMFILE ATTR: the attribute of <div id="selfcheck">
  grep -o '<div id="selfcheck"[^>]*>' "$1" | grep -oE " data-$2=\"[^\"]*\"" | cut -d'"' -f2
}

# 2. Render and load.
check "2: towerps dashboard renders" "$bin" dashboard --run_dir="$tmp/run" > "$tmp/dashboard.out"
page="$tmp/run/dashboard.html"
check "2: the page exists" test -s "$page"
check "2: the page names no network resource" \
  bash -c "! grep -qE '(src|href)=\"(https?:)?//' '$page'"
check "2: chromium loads the page" chrome_run "$tmp/dom.html" 60 --dump-dom "file://$page"
check "2: the page finished rendering" grep -q "<title>.*\[rendered\]</title>" "$tmp/dom.html"
errors="$(selfcheck "$tmp/dom.html" errors)"
charts="$(selfcheck "$tmp/dom.html" charts)"
empty="$(selfcheck "$tmp/dom.html" empty)"
check "2: no JavaScript error ($errors)" test -z "$errors"
check "2: every chart has data (empty: '$empty')" test -z "$empty"
check "2: 14 charts drawn ($charts)" test "${charts:-0}" -eq 14
shot="$tmp/run/dashboard.png"
check "2: chromium takes a screenshot" chrome_run "$tmp/shot.out" 60 --window-size=1400,4000 \
  --screenshot="$shot" "file://$page"
check "2: the screenshot is a PNG" \
  bash -c "head -c 8 '$shot' | od -An -tx1 | tr -d ' \n' | grep -q '^89504e470d0a1a0a'"
check "2: ... of a plausible size ($(stat -c %s "$shot" 2>/dev/null) bytes)" \
  test "$(stat -c %s "$shot" 2>/dev/null || echo 0)" -gt 50000

# 3. Malformed lines.
mkdir -p "$tmp/bad"
cp "$tmp/run/metrics.jsonl" "$tmp/bad/"
[ -e "$tmp/run/events.jsonl" ] && cp "$tmp/run/events.jsonl" "$tmp/bad/"
echo 'this is not json </script><script>alert(1)</script>' >> "$tmp/bad/metrics.jsonl"
bad_line="$(wc -l < "$tmp/bad/metrics.jsonl")"
printf '{"ts_ms":1,"role":"worker","rank":0,"towerps_wor' >> "$tmp/bad/metrics.jsonl"
check "3: a run with malformed lines renders" "$bin" dashboard --run_dir="$tmp/bad" \
  --output="$tmp/bad/page.html" > /dev/null
check "3: chromium loads it" chrome_run "$tmp/bad-dom.html" 60 --dump-dom "file://$tmp/bad/page.html"
check "3: no JavaScript error ($(selfcheck "$tmp/bad-dom.html" errors))" \
  test -z "$(selfcheck "$tmp/bad-dom.html" errors)"
check "3: two problems counted" test "$(selfcheck "$tmp/bad-dom.html" problems)" = 2
check "3: the page names the malformed line $bad_line" \
  grep -q "metrics.jsonl line $bad_line: not valid JSON" "$tmp/bad-dom.html"
check "3: ... and the truncated one" \
  grep -q "metrics.jsonl line $((bad_line + 1)): truncated" "$tmp/bad-dom.html"
check "3: the hostile text never became a script" \
  bash -c "! grep -q '<script>alert' '$tmp/bad-dom.html'"

# 4. The real run with a hostile event and a collapsed evaluation appended (as a
# scheduler and evaluate write them): the warning shows, the text stays text.
mkdir -p "$tmp/full"
cp "$tmp/run/metrics.jsonl" "$tmp/run/events.jsonl" "$tmp/full/"
t1="$(tail -1 "$tmp/run/metrics.jsonl" | grep -oE '"ts_ms":[0-9]+' | cut -d: -f2)"
echo "{\"ts_ms\":$t1,\"event\":\"node_dead\",\"role\":\"worker\",\"rank\":1,\"reason\":\"heartbeat timeout </script>\"}" \
  >> "$tmp/full/events.jsonl"
eval_line="$(tail -1 "$tmp/run/evaluations.jsonl")"
check "4: the run's evaluation has embedding health" grep -q '"collapse_warning":' <<< "$eval_line"
collapsed="$(sed -E 's/"collapse_warning":(true|false)/"collapse_warning":true/;
  s/"item_mean_pairwise_cosine":[-0-9.e]+/"item_mean_pairwise_cosine":0.97/' <<< "$eval_line")"
echo "$collapsed" > "$tmp/full/evaluations.jsonl"
check "4: the completed run renders" "$bin" dashboard --run_dir="$tmp/full" > /dev/null
check "4: chromium loads it" chrome_run "$tmp/full-dom.html" 60 --dump-dom "file://$tmp/full/dashboard.html"
check "4: no JavaScript error ($(selfcheck "$tmp/full-dom.html" errors))" \
  test -z "$(selfcheck "$tmp/full-dom.html" errors)"
check "4: every chart has data (empty: '$(selfcheck "$tmp/full-dom.html" empty)')" \
  test -z "$(selfcheck "$tmp/full-dom.html" empty)"
check "4: 14 charts drawn ($(selfcheck "$tmp/full-dom.html" charts))" \
  test "$(selfcheck "$tmp/full-dom.html" charts)" = 14
check "4: no problem reported" test "$(selfcheck "$tmp/full-dom.html" problems)" = 0
check "4: the collapse warning shows" grep -q "COLLAPSE WARNING" "$tmp/full-dom.html"
check "4: the dead worker is listed" grep -q "worker 1 dead: heartbeat timeout &lt;/script&gt;" \
  "$tmp/full-dom.html"
check "4: a screenshot of it" chrome_run "$tmp/full-shot.out" 60 --window-size=1400,4000 \
  --screenshot="$tmp/full/dashboard.png" "file://$tmp/full/dashboard.html"

if [ $fail -ne 0 ]; then
  tail -5 "$tmp/chromium.err" 2>/dev/null
  exit 1
fi
echo "dashboard_test: all checks passed ($charts charts, page $(stat -c %s "$page") bytes," \
  "screenshot $(stat -c %s "$shot") bytes)"
