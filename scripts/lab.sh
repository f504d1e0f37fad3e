#!/usr/bin/env bash
# The main job, on a fresh Debian 12 as root: install what weft needs, build it, and start the lab
# (3 node namespaces with real agents, podman with busybox pods on each), then check it: pod
# table, ping and wget between pods on different nodes, `agent status peers`. The lab stays up;
# the last lines say how to use it and how to remove it (`node dist/deploy/lab/main.js down`).
# Arguments go to `lab up`, e.g. `bash scripts/lab.sh --nodes 5` or `--cni reference`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "lab.sh: run as root (the lab creates network namespaces and containers)" >&2
  exit 1
fi
bash scripts/setup.sh
npm run build
exec node dist/deploy/lab/main.js up "$@"
