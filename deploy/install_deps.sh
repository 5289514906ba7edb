#!/usr/bin/env bash
# Installs what towerps's build, tests and demo need, from Debian packages only
# (clang-14 with libFuzzer and its sanitizer runtimes, libclang-rt-14-dev, and LLVM's
# OpenMP for Faiss under clang, for the fuzz build: fuzz/README.md).
# slurm-wlm for the Slurm launcher's test (the test starts its daemons, not systemd).
# kubernetes-client (kubectl) for the Kubernetes manifests' test when no kubectl is there.
# libcpp-httplib-dev serves /metrics (http/); prometheus (with promtool) and curl are for
# tests/integration/prometheus_test.sh, which runs its own instance on a free port (on a
# systemd host the package also enables prometheus.service on :9090: disable it if unwanted).
# nlohmann-json3-dev reads JSON; libjs-chart.js is inlined into `towerps dashboard` pages;
# chromium (headless) and a font render them in the dashboard test.
# Idempotent: a no-op (no apt-get update) when everything is already installed.
# Needs root (or sudo) on Debian 12.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libzmq3-dev cppzmq-dev
  capnproto libcapnp-dev
  libopenblas-dev libeigen3-dev libfaiss-dev libhnswlib-dev
  libgflags-dev libgoogle-glog-dev libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev libomp-14-dev
  slurm-wlm  # slurmctld, slurmd and the client commands for tests/integration/slurm_test.sh
  libcpp-httplib-dev  # the /metrics endpoint (http/)
  prometheus curl jq  # a real Prometheus (and promtool) for tests/integration/prometheus_test.sh;
  # jq reads deploy/grafana/towerps.json there
  nlohmann-json3-dev  # reading JSON: metrics.jsonl and events for the dashboard, ctl status
  libjs-chart.js  # Chart.js, inlined into the dashboard page at build time (dashboard/)
  chromium fonts-dejavu-core  # headless Chromium loads the dashboard in tests/integration/dashboard_test.sh
)
# kubectl renders deploy/k8s in tests/integration/k8s_test.sh: Debian's (1.20) only
# when none is on PATH (a newer one from elsewhere conflicts with the package).
if ! command -v kubectl >/dev/null; then
  packages+=(kubernetes-client)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install_deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "install_deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
