#!/usr/bin/env bash
# Installs weft's system packages (Debian 12) and npm dependencies. Idempotent; needs root for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  iproute2 iputils-ping busybox-static iperf3 iptables nftables tcpdump ethtool procps psmisc
  python3 make g++ gcc libc6-dev # gcc + libc6-dev (libc.a): the static CNI plugin
  # container runtimes that call CNI plugins as kubelet does, and the reference plugins
  podman runc containernetworking-plugins containerd
  # image build without Docker, e2e script checks
  debootstrap shellcheck
)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# `npm install` rather than `npm ci`: the registry reachable here serves only this platform's
# optional binaries (e.g. @biomejs/cli-*), so the lockfile cannot list the others and `npm ci`
# refuses it. `npm install` still installs the locked versions. raw-socket builds against the
# installed Node's headers.
if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm install --no-fund --no-audit
fi
