#!/usr/bin/env bash
# The whole test suite: system packages and brokers first, then the build, then vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system.sh --test || true
bash scripts/services.sh
npm run -s check
node node_modules/typescript/bin/tsc -p tsconfig.build.json
bash scripts/ric-fixture.sh
exec node node_modules/vitest/vitest.mjs run "$@"
