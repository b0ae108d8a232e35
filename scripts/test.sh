#!/usr/bin/env bash
# The whole test suite (`npm test`, and CI's .ci/run after `npm ci`), in order: the system
# packages the sandbox tests need, the brokers, the static checks (scripts/check.sh: Biome, tsc on
# src, test and bench), the build, the aws-lambda-ric fixture (built in the background from the start), then vitest. Any failing step fails
# the run. Arguments go to vitest (`npm test -- test/invoke.test.ts` runs every step, then one file).
set -euo pipefail
cd "$(dirname "$0")/.."

phase() { # phase <what> <command…>: runs it, says how long it took, fails the run if it fails
  local what=$1 start=$SECONDS
  shift
  echo "test: $what…" >&2
  if ! "$@"; then
    echo "test: FAILED: $what ($*)" >&2
    exit 1
  fi
  echo "test: $what done ($((SECONDS - start)) s)" >&2
}

phase "system packages (bubblewrap, slirp4netns, … and the ric fixture's build tools)" \
  bash scripts/install-system.sh --test
# The ric fixture (a native build, ~2 min once) builds alongside the next phases; waited for below.
mkdir -p .cache
bash scripts/ric-fixture.sh >.cache/ric-fixture.log 2>&1 &
ric=$!
phase "brokers (PostgreSQL, Redis, RabbitMQ, Mosquitto, NATS)" bash scripts/services.sh
phase "static checks" bash scripts/check.sh
phase "build (tsc -p tsconfig.build.json; incremental: quick after npm ci built it)" node node_modules/typescript/bin/tsc -p tsconfig.build.json
phase "console bundle (scripts/build-console.mjs)" node scripts/build-console.mjs
export LAMBENT_DIST_BUILT=1 # tests that start child servers use this dist/ instead of rebuilding it
phase "default runtimes (nodejs22.x, nodejs24.x, python3.13; quick once installed)" node bin/lambent.js runtimes install
ric_fixture() { # the background build's result, with its output when it failed
  wait "$ric" && return 0
  cat .cache/ric-fixture.log >&2
  return 1
}
phase "aws-lambda-ric fixture (built in the background since the start)" ric_fixture
echo "test: vitest…" >&2
exec node node_modules/vitest/vitest.mjs run "$@"
