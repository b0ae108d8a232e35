#!/usr/bin/env bash
# Static checks, in order (`npm run check`; `npm test` runs them before the tests).
# Each step is one `step "<what>" <command…>` line: add new checks (e.g. import cycles) to the list.
set -euo pipefail
cd "$(dirname "$0")/.."

step() {
  local what=$1 start=$SECONDS
  shift
  echo "check: $what…" >&2
  if ! "$@"; then
    echo "check: FAILED: $what ($*)" >&2
    exit 1
  fi
  echo "check: $what ok ($((SECONDS - start)) s)" >&2
}

step "lint and format (Biome)" node node_modules/@biomejs/biome/bin/biome check .
step "types of src, test and bench (tsc --noEmit)" node node_modules/typescript/bin/tsc -p tsconfig.json --noEmit
step "types of the web console (tsc -p console/tsconfig.json)" node node_modules/typescript/bin/tsc -p console/tsconfig.json
step "import cycles (scripts/check-cycles.mjs)" node scripts/check-cycles.mjs
step "component boundaries (scripts/check-boundaries.mjs)" node scripts/check-boundaries.mjs
step "generated API model matches ../shared/aws-models (scripts/generate-api.mjs --check)" node scripts/generate-api.mjs --check
