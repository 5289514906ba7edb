#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions run through check() and the EXIT trap
# deploy/k8s and the Dockerfile, offline (no cluster, no Docker engine):
#  1. the image's runtime packages (Dockerfile, RUNTIME_PACKAGES) exist in Debian and,
#     with their dependencies, hold every library `ldd towerps` lists; the image's
#     user is the manifests' runAsUser;
#  2. `kubectl kustomize` renders the base, storage/ and a test overlay that adds the
#     Secret towerps-keys from fresh `towerps keygen` keys, with this machine's kubectl
#     and with Debian 12's kubectl 1.20 (kustomize v2.0.3; package kubernetes-client,
#     unpacked into the build dir) when it can be fetched: the same objects;
#  3. every rendered object passes the schema check (deploy/k8s/validate/validate.mjs,
#     npm packages pinned by its package-lock.json, installed into the build dir), and
#     a deliberately broken object (an unknown field, a wrong type) is refused;
#  4. every container of every pod the overlay makes (scheduler, ps per ordinal,
#     worker per index) runs here with --dry_run appended (validate/pods.mjs): mount
#     paths mapped to local folders holding the ConfigMap/Secret contents and a
#     prepared dataset (MovieTweetings from ../shared/data, else a small generated one
#     with examples/generated.conf); each prints its role, rank and the job's size; and
#     the keys straight from the Secret's volume (mode 0440) are refused, which is why
#     the pods copy them first.
# Skips (exit 77) with a message when kubectl or npm (or the npm registry) is missing.
# Usage: k8s_test.sh TOWERPS_BINARY BUILD_DIR
set -u
bin="$1"
build="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
k8s="$root/deploy/k8s"
fail=0
# shellcheck source=tests/integration/check.sh
source "$(dirname "${BASH_SOURCE[0]}")/check.sh"
tmp="$(mktemp -d)"
cleanup() {
  if [ "$fail" -eq 0 ] && [ -z "${KEEP_LOGS:-}" ]; then rm -rf "$tmp"; else echo "logs kept in $tmp"; fi
}
trap cleanup EXIT
skip() { echo "k8s_test: SKIPPED: $*"; [ "$fail" -eq 0 ] && exit 77; exit 1; }
package_exists() { apt-cache show "$1" >/dev/null 2>&1; }
render() {  # render KUBECTL DIR OUT: kubectl kustomize DIR > OUT (its errors shown)
  "$1" kustomize "$2" > "$3" 2> "$3.err" || { cat "$3.err"; return 1; }
}

# 1. The image.
runtime="$(sed -nE 's/^ARG RUNTIME_PACKAGES="([^"]*)"$/\1/p' "$root/Dockerfile")"
check "the Dockerfile names its runtime packages" test -n "$runtime"
if command -v apt-cache >/dev/null && command -v dpkg >/dev/null; then
  for p in $runtime; do
    check "runtime package $p exists" package_exists "$p"
  done
  # shellcheck disable=SC2086
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances $runtime 2>/dev/null | grep -E '^[a-z0-9]' | sort -u \
    > "$tmp/closure"
  mapfile -t libs < <(ldd "$bin" | awk '$2 == "=>" {print $3}')
  check "ldd lists the binary's libraries" test "${#libs[@]}" -gt 0
  paths=()  # as ldd names it and its real path (dpkg knows one of them)
  for lib in "${libs[@]}"; do paths+=("$lib" "$(readlink -f "$lib")"); done
  dpkg -S "${paths[@]}" 2>/dev/null | grep -v '^diversion' > "$tmp/owners"
  for lib in "${libs[@]}"; do
    owner="$(awk -F': ' -v a="$lib" -v b="$(readlink -f "$lib")" \
      '$2 == a || $2 == b {sub(/[:,].*/, "", $1); print $1; exit}' "$tmp/owners")"
    check "$lib (package '${owner}') is in the image" grep -qx -- "${owner:-none}" "$tmp/closure"
  done
else
  echo "k8s_test: no apt-cache/dpkg here: the image's packages are not checked"
fi
check "the image runs as uid 10001" grep -qx 'USER 10001:10001' "$root/Dockerfile"
check "deploy/k8s/model.conf is examples/movietweetings.conf" \
  cmp -s "$k8s/model.conf" "$root/examples/movietweetings.conf"

# 2. Rendering.
command -v kubectl >/dev/null || skip "no kubectl on PATH (deploy/install_deps.sh installs Debian's)"
kubectls=(kubectl)
old="$build/k8s_test/kubernetes-client/usr/bin/kubectl"
if [ ! -x "$old" ] && command -v apt-get >/dev/null; then
  mkdir -p "$build/k8s_test/download"
  if (cd "$build/k8s_test/download" && timeout 60 apt-get download kubernetes-client >/dev/null 2>&1); then
    dpkg -x "$build"/k8s_test/download/kubernetes-client_*.deb "$build/k8s_test/kubernetes-client"
  fi
fi
if [ -x "$old" ] && "$old" version --client >/dev/null 2>&1 &&
   [ "$(readlink -f "$old")" != "$(readlink -f "$(command -v kubectl)")" ]; then
  kubectls+=("$old")
else
  echo "k8s_test: Debian's kubectl 1.20 unavailable: rendering checked with $(kubectl version --client 2>/dev/null | head -1) only"
fi

if [ -s "${TOWERPS_SHARED_DATA:-$root/../shared/data}/movietweetings-100k/ratings.dat" ]; then
  data="movietweetings"
  "$bin" prepare --input="${TOWERPS_SHARED_DATA:-$root/../shared/data}/movietweetings-100k" \
    --output="$tmp/dataset" --min_rating=7 >/dev/null 2>&1 || { echo "FAIL: prepare"; exit 1; }
else
  data="generated"
  echo "k8s_test: no MovieTweetings under ../shared/data: a generated dataset and examples/generated.conf"
  if ! "$bin" generate --output_dir="$tmp/logs" --users=300 --items=200 --interactions=5000 \
         --seed=3 >/dev/null 2>&1 ||
     ! "$bin" prepare --input="$tmp/logs" --output="$tmp/dataset" >/dev/null 2>&1; then
    echo "FAIL: generate/prepare"; exit 1
  fi
fi
servers=2 workers=2  # deploy/k8s/job.flags
mkdir -p "$tmp/overlay" "$tmp/run"
"$bin" keygen --output_dir="$tmp/overlay" --num_servers=$servers --num_workers=$workers \
  >/dev/null || { echo "FAIL: keygen"; exit 1; }
{
  echo "# kustomize v2 syntax (kubectl 1.20); later ones accept 'bases' with a warning"
  echo "bases:"
  echo "- $(realpath --relative-to="$tmp/overlay" "$k8s")"
  echo "secretGenerator:"
  echo "- name: towerps-keys"
  echo "  files:"
  for f in "$tmp"/overlay/*.public "$tmp"/overlay/*.secret "$tmp/overlay/allowed_keys"; do
    echo "  - $(basename "$f")"
  done
  if [ "$data" = generated ]; then
    cp "$root/examples/generated.conf" "$tmp/overlay/model.conf"
    printf 'configMapGenerator:\n- name: towerps-job\n  behavior: merge\n  files:\n  - model.conf\n'
  fi
} > "$tmp/overlay/kustomization.yaml"

for i in "${!kubectls[@]}"; do
  kc="${kubectls[$i]}"
  check "$kc kustomize deploy/k8s renders" render "$kc" "$k8s" "$tmp/base.$i.yaml"
  check "$kc kustomize deploy/k8s/storage renders" render "$kc" "$k8s/storage" "$tmp/storage.$i.yaml"
  check "$kc kustomize (test overlay) renders" render "$kc" "$tmp/overlay" "$tmp/overlay.$i.yaml"
done

# 3. Schemas.
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  skip "no npm/node: the schema check and the dry runs need them"
fi
validate="$build/k8s_test/validate"
mkdir -p "$validate"
if ! cmp -s "$k8s/validate/package-lock.json" "$validate/installed-lock.json"; then
  cp "$k8s/validate/package.json" "$k8s/validate/package-lock.json" "$validate/"
  (cd "$validate" && timeout 120 npm ci --no-audit --no-fund --loglevel=error > "$tmp/npm.log" 2>&1) ||
    { cat "$tmp/npm.log"; skip "npm ci of deploy/k8s/validate failed (no npm registry?)"; }
  cp "$k8s/validate/package-lock.json" "$validate/installed-lock.json"
fi
cp "$k8s"/validate/*.mjs "$validate/"
for i in "${!kubectls[@]}"; do
  check "the objects rendered by ${kubectls[$i]} pass the schema check" \
    node "$validate/validate.mjs" "$tmp/base.$i.yaml" "$tmp/storage.$i.yaml" "$tmp/overlay.$i.yaml"
  [ "$i" -gt 0 ] && check "${kubectls[$i]} renders the same objects as ${kubectls[0]}" \
    node "$validate/same.mjs" "$tmp/overlay.0.yaml" "$tmp/overlay.$i.yaml"
done
cat > "$tmp/broken.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  replicas: "1"
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec:
      containers:
      - name: c
        image: towerps
        livenessProbe: {tcpSocket: {port: 7070}, periodSecond: 10}
EOF
node "$validate/validate.mjs" "$tmp/broken.yaml" > "$tmp/broken.out" 2>&1
check "a broken object is refused" test $? -eq 1
check "... naming its unknown field" grep -q "periodSecond" "$tmp/broken.out"
check "... and its wrong type" grep -q "replicas must be integer" "$tmp/broken.out"

# 4. The rendered command lines, dry-run.
mkdir -p "$tmp/bin"
ln -s "$(readlink -f "$bin")" "$tmp/bin/towerps"
check "every rendered container passes --dry_run" \
  timeout 120 node "$validate/pods.mjs" --bin_dir "$tmp/bin" --work "$tmp/pods" \
  --claim towerps-dataset="$tmp/dataset" --claim towerps-run="$tmp/run" "$tmp/overlay.0.yaml"
check "the dry runs wrote nothing to the run directory" test -z "$(ls -A "$tmp/run")"
pod="$tmp/pods/towerps-ps-0/volumes"
"$bin" ps --flagfile="$pod/job/job.flags" --curve_dir="$pod/keys-secret" --rank=0 \
  --scheduler=tcp://127.0.0.1:1 --dry_run > /dev/null 2> "$tmp/secret.err"
check "keys straight from the Secret's volume (0440) are refused" \
  grep -q "accessible by group or others" "$tmp/secret.err"

[ "$fail" -eq 0 ] && echo "k8s_test: PASS ($data data, ${#kubectls[@]} kubectl versions)"
exit "$fail"
