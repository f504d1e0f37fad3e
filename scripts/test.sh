#!/usr/bin/env bash
# Everything CI checks, in order: system packages and npm deps, build, lint, types, all tests.
# Tests that need network namespaces run when this is run as root (and must, under CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run build
npm run lint
npm run typecheck
npm test
