#!/usr/bin/env bash
# Builds the official AWS runtime interface client (npm aws-lambda-ric, native
# client included) once per machine into ~/.cache/lambent/test-fixtures/ric-<version>/
# (beside the runtime cache; $LAMBENT_TEST_FIXTURES_DIR elsewhere) for the provided-runtime
# test: a clean clone on a machine that built it once does not compile it again.
# Needs Debian's autoconf, automake, libtool, cmake, make and g++ (installed by
# scripts/install-system.sh when root).
set -euo pipefail
VERSION=3.3.0
cd "$(dirname "$0")/.."
FIXTURES=${LAMBENT_TEST_FIXTURES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lambent/test-fixtures}
DEST="$FIXTURES/ric-$VERSION"
# One build at a time: `npm test` starts one in the background, and the ric test starts one itself
# when the fixture is missing (a file run on its own); the second waits for the first, then finds it.
mkdir -p "$FIXTURES"
exec 9>"$FIXTURES/ric-fixture.lock"
flock 9
[ -f "$DEST/node_modules/aws-lambda-ric/dist/rapid-client.node" ] && exit 0
rm -rf "$DEST.tmp" && mkdir -p "$DEST.tmp"
cat > "$DEST.tmp/package.json" <<JSON
{ "name": "ric-fixture", "version": "1.0.0", "private": true,
  "allowScripts": { "aws-lambda-ric": true, "node-gyp": true } }
JSON
echo "ric-fixture: building aws-lambda-ric@$VERSION (about 2 minutes, once)" >&2
(cd "$DEST.tmp" && npm install --no-audit --no-fund --loglevel=error "aws-lambda-ric@$VERSION" >&2)
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
