#!/usr/bin/env bash
# /metrics against a real Prometheus (issue 15), on a small generated dataset:
#  1. a scheduler, a server and a worker of a CURVE-secured job with --metrics_port each (exit_when_done=false:
#     the scheduler and the server stay up after the job); every /metrics passes
#     `promtool check metrics` (Prometheus's own parser and linter), /healthz answers,
#     another path is 404, a DELETE 405; the same for `serve` (a router); a second
#     process on a metrics port in use fails with one error line;
#  2. a Prometheus on 127.0.0.1 from a generated config (scrape interval 1 s, its TSDB
#     in the temp dir), started before the job, scrapes them; its HTTP API returns the
#     towerps series with the labels role and rank, and plausible values: the
#     scheduler's global step reaches the planned steps, the server pulled keys, the
#     worker's pull latency histogram counted pulls;
#  3. the Grafana dashboard (deploy/grafana/towerps.json) names only exported series:
#     every towerps_* name in its queries is one Prometheus scraped from this job, and
#     every query (the dashboard's variables set to this job) evaluates, with data,
#     over the time the job ran;
#  4. everything stopped by PID.
# Skips (77) without prometheus/promtool (Debian package `prometheus`), curl or jq.
# Usage: prometheus_test.sh TOWERPS_BINARY
set -u
bin="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
for tool in prometheus promtool curl jq; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool not found (deploy/install_deps.sh installs the Debian packages prometheus, curl and jq)"
    exit 77
  fi
done
LP_TOWERPS="$bin"
# shellcheck source=deploy/local_probe.sh
source "$root/deploy/local_probe.sh"
fail=0
# shellcheck source=tests/integration/check.sh
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  if [ "$fail" -ne 0 ]; then
    for f in "$tmp"/*.err "$tmp"/prometheus.log; do
      [ -f "$f" ] && { echo "== $f"; tail -20 "$f"; }
    done
  fi
  if [ "$fail" -eq 0 ] && [ -z "${KEEP_LOGS:-}" ]; then rm -rf "$tmp"; else echo "logs kept in $tmp"; fi
}
trap cleanup EXIT

"$bin" generate --output_dir="$tmp/logs" --users=300 --items=200 --interactions=20000 \
  --clusters=4 --seed=5 >/dev/null 2>&1 || { echo "FAIL: generate"; exit 1; }
"$bin" prepare --input="$tmp/logs" --output="$tmp/ds" >/dev/null 2>&1 ||
  { echo "FAIL: prepare"; exit 1; }
# generated.conf with more epochs: the worker trains for seconds, several scrapes long.
sed 's/epochs=[0-9]*/epochs=12/' "$root/examples/generated.conf" > "$tmp/model.conf"
grep -q "epochs=12" "$tmp/model.conf" || { echo "FAIL: no epochs= in examples/generated.conf"; exit 1; }
# A secured job (CURVE), as a production one is: the dashboard shows refused connections.
"$bin" keygen --output_dir="$tmp/keys" --num_servers=1 --num_workers=1 >/dev/null ||
  { echo "FAIL: keygen"; exit 1; }
cat > "$tmp/job.flags" <<EOF
--curve_dir=$tmp/keys
--config=$tmp/model.conf
--dataset=$tmp/ds
--run_dir=$tmp/run
--num_servers=1
--num_workers=1
--heartbeat_timeout_ms=3000
EOF
planned="$("$bin" scheduler --flagfile="$tmp/job.flags" --dry_run | grep -oE '"planned_steps":[0-9]+')"
planned="${planned##*:}"
check "the job plans steps ($planned)" test "${planned:-0}" -gt 0

sched_port="$(free_port)" && ps_port="$(free_port "$sched_port")" &&
  worker_port="$(free_port "$sched_port" "$ps_port")" &&
  serve_port="$(free_port "$sched_port" "$ps_port" "$worker_port")" &&
  prom_port="$(free_port "$sched_port" "$ps_port" "$worker_port" "$serve_port")" ||
  { echo "FAIL: no free port"; exit 1; }

# 2 (first half). Prometheus before the job, so that it sees the worker while it trains.
mkdir -p "$tmp/tsdb"
cat > "$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: towerps
    static_configs:
      - targets: ['127.0.0.1:$sched_port', '127.0.0.1:$ps_port', '127.0.0.1:$worker_port',
                  '127.0.0.1:$serve_port']
EOF
check "promtool accepts the generated config" promtool check config "$tmp/prometheus.yml" >/dev/null
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" > "$tmp/prometheus.log" 2>&1 &
pids+=("$!")
api="http://127.0.0.1:$prom_port/api/v1"
# query QUERY: the JSON of one instant query; has_result QUERY: it returned a series.
query() { curl -sf --get --data-urlencode "query=$1" "$api/query"; }
has_result() { query "$1" | grep -q '"result":\[{'; }
check "prometheus is ready" lp_wait 60 curl -sf -o /dev/null "http://127.0.0.1:$prom_port/-/ready"
job_start_s="$(date +%s)"

# 1. The job.
mkdir -p "$tmp/run"
ep="$tmp/run/scheduler.endpoint"
"$bin" scheduler --flagfile="$tmp/job.flags" --endpoint_file="$ep" --exit_when_done=false \
  --metrics_port="$sched_port" > "$tmp/sched.out" 2> "$tmp/sched.err" &
pids+=("$!")
check "the scheduler binds" lp_wait 30 test -s "$ep"
"$bin" ps --flagfile="$tmp/job.flags" --scheduler="$(cat "$ep")" --rank=0 \
  --exit_when_done=false --metrics_port="$ps_port" > "$tmp/ps.out" 2> "$tmp/ps.err" &
pids+=("$!")
# serve as a router (no index needed; its shard endpoint is never asked).
"$bin" serve --route_to=tcp://127.0.0.1:9 --metrics_port="$serve_port" \
  > "$tmp/serve.out" 2> "$tmp/serve.err" &
pids+=("$!")
# Prometheus applies its targets a few seconds after it starts: the worker (which
# trains for a few seconds only) starts once every target is being scraped ("up"
# exists for all four, 0 for the worker's port until it listens).
check "prometheus scrapes its four targets" \
  lp_wait 60 has_result 'count(up{job="towerps"}) == 4'
"$bin" worker --flagfile="$tmp/job.flags" --scheduler="$(cat "$ep")" --worker_rank=0 \
  --metrics_port="$worker_port" > "$tmp/worker.out" 2> "$tmp/worker.err" &
worker=$!; pids+=("$worker")

for port in "$sched_port" "$ps_port" "$serve_port"; do
  check "/healthz on $port" lp_wait 30 curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"
  curl -sf "http://127.0.0.1:$port/metrics" > "$tmp/metrics.$port"
  check "/metrics on $port passes promtool check metrics" \
    promtool check metrics < "$tmp/metrics.$port"
  check "/metrics on $port has role and rank" \
    grep -qE '^towerps_[a-z_]+\{role="(scheduler|ps|serve)",rank="0"' "$tmp/metrics.$port"
  code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nope")"
  check "an unknown path is 404 (got $code)" test "$code" = 404
  code="$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$port/metrics")"
  check "DELETE /metrics is 405 (got $code)" test "$code" = 405
done

# A port in use is refused (no SO_REUSEPORT sharing): one error line, exit 1.
err="$("$bin" serve --route_to=tcp://127.0.0.1:9 --metrics_port="$sched_port" 2>&1 >/dev/null)"; rc=$?
check "a second process on a metrics port in use exits 1 (got $rc)" test "$rc" -eq 1
check "... saying it cannot bind" grep -q "cannot bind 127.0.0.1:$sched_port" <<<"$err"

# 2. Read back through Prometheus's HTTP API.
job_done() { grep -q "^state:* *done" "$tmp/run/scheduler.job" 2>/dev/null; }
# The worker may be gone by now: a series of a target that no longer answers is stale
# at once, so ask for what was scraped over the last minutes.
check "prometheus scraped the training worker" lp_wait 60 has_result \
  'max_over_time(towerps_worker_global_step{role="worker",rank="0",job="towerps"}[10m]) > 0'
check "the job finishes" lp_wait 120 job_done
check "the worker exits" lp_wait 30 eval '! kill -0 '"$worker"' 2>/dev/null'
steps="$(grep -oE '^worker: [0-9]+ steps' "$tmp/worker.out" | grep -oE '[0-9]+')"
check "the worker trained (${steps:-?} of $planned planned steps)" test "${steps:-0}" -gt 0
check "prometheus scraped the scheduler's final global step, the worker's $steps steps" \
  lp_wait 30 has_result "towerps_scheduler_global_step{role=\"scheduler\",rank=\"0\",job=\"towerps\"} == ${steps:-0}"
out="$(query 'towerps_scheduler_global_step')"
echo "towerps_scheduler_global_step: $out"
check "... with its labels role and rank" grep -q '"rank":"0","role":"scheduler"' <<<"$out"
check "prometheus scraped the server's pulled keys, > 0" \
  lp_wait 30 has_result 'towerps_ps_pulled_keys_total{role="ps",rank="0"} > 0'
check "... and its per-table rows, with the table label" \
  lp_wait 30 has_result 'towerps_sparse_emb_rows{role="ps",table="item_id"} > 0'
check "prometheus scraped serve" \
  lp_wait 30 has_result 'towerps_net_requests_total{role="serve",rank="0",job="towerps"}'
# The worker is gone now; what was scraped while it trained stays queryable.
check "prometheus scraped the worker's pull latency histogram while it trained" \
  has_result 'max_over_time(towerps_worker_pull_latency_seconds_count{role="worker",rank="0"}[10m]) > 0'
out="$(query 'histogram_quantile(0.5, max_over_time(towerps_worker_pull_latency_seconds_bucket[10m]))')"
echo "worker pull latency p50 (s): $out"
v="$(grep -oE '"value":\[[0-9.]+,"[^"]+"' <<<"$out" | sed 's/.*,"//; s/"$//')"
check "... its p50 is a plausible latency (0 < $v < 10 s)" \
  awk -v v="${v:-x}" 'BEGIN { exit !(v + 0 > 0 && v + 0 < 10) }'

# 3. The Grafana dashboard: its series against what Prometheus scraped from this job.
grafana="$root/deploy/grafana/towerps.json"
check "the Grafana dashboard is JSON" jq -e '.panels | length > 0' "$grafana" >/dev/null
# Every query of the dashboard: panel targets and the job variable's.
jq -r '[.. | objects | select(has("expr")) | .expr] + [.templating.list[] |
  select(.type == "query") | .definition] | .[]' "$grafana" > "$tmp/grafana.exprs"
check "the dashboard has queries ($(wc -l < "$tmp/grafana.exprs"))" \
  test "$(wc -l < "$tmp/grafana.exprs")" -ge 20
curl -sf "$api/label/__name__/values" | jq -r '.data[]' | sort -u > "$tmp/scraped.names"
grep -oE 'towerps_[a-z0-9_]+' "$tmp/grafana.exprs" | sort -u > "$tmp/grafana.names"
unexported="$(comm -23 "$tmp/grafana.names" "$tmp/scraped.names" | tr '\n' ' ')"
check "every series the dashboard names was scraped from the job (not: ${unexported:-none})" \
  test -z "$unexported"
end_s="$(date +%s)"
n=0
while IFS= read -r expr; do
  case "$expr" in label_values*) continue ;; esac
  n=$((n + 1))
  promql="${expr//\$__rate_interval/5s}"
  promql="${promql//\$job/towerps}"
  out="$(curl -sf --get --data-urlencode "query=$promql" --data-urlencode "start=$job_start_s" \
    --data-urlencode "end=$end_s" --data-urlencode "step=1" "$api/query_range")"
  check "dashboard query $n has data while the job ran: $expr" \
    grep -q '"status":"success".*"result":\[{' <<<"$out"
done < "$tmp/grafana.exprs"

[ "$fail" -ne 0 ] && echo "== prometheus targets: $(curl -s "$api/targets")"

# 4. Stop by PID (the cleanup kills what is left).
for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
pids=()
if [ $fail -ne 0 ]; then exit 1; fi
echo "prometheus_test: all checks passed"
