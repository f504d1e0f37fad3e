#!/usr/bin/env bash
# The main job: install, build, and run the lab (two nodes in network namespaces, real agents) as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run build
exec node dist/deploy/lab/demo.js "$@"
