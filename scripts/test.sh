#!/usr/bin/env bash
# Everything CI checks, in order: system packages and npm deps, build, lint, types, all tests.
# Tests that need network namespaces run when this is run as root (and must, under CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run build
npm run lint
npm run typecheck

results=$(mktemp -t weft-test-results.XXXXXX.json)
trap 'rm -f "$results"' EXIT
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" || status=$?
# A plain closing line that any CI log reader understands.
# shellcheck disable=SC2016 # the ${…} are the script's own JavaScript template literals
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$results" || true
exit "$status"
