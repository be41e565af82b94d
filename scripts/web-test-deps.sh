#!/usr/bin/env bash
# Install what the HTTP-edge tests need beyond Rust, on first use:
#   nginx           : a real caching proxy (proxy_cache) in front of `driftless serve`
#   chromium        : Debian's headless browser, driven by...
#   playwright-core : ...from npm, into a private directory (no browser download)
#   cose-js         : a COSE library from npm, standing in for CloudFront's `cf.cwt` module
#                     in the function harness (tests/edge/harness.cjs)
# Debian packages need root (or sudo); npm needs Node.js (installed with apt if missing).
#
# Usage:  web-test-deps.sh        prints NODE_DIR=<dir holding node_modules/{playwright-core,cose-js}>
# Env:    PREFIX (default ${TMPDIR:-/tmp}/driftless-web-test)
set -euo pipefail
PREFIX=${PREFIX:-${TMPDIR:-/tmp}/driftless-web-test}
PLAYWRIGHT_VERSION=${PLAYWRIGHT_VERSION:-1.65.1}
COSE_JS_VERSION=${COSE_JS_VERSION:-0.9.0}

LOG_TAG=web-test-deps
# shellcheck source=install-lib.sh
. "$(dirname "$0")/install-lib.sh"

mkdir -p "$PREFIX"
# One installer at a time: tests run in parallel and may all ask at once.
exec 9>"$PREFIX/.lock"
flock 9

apt_install nginx-light chromium
command -v npm >/dev/null || apt_install nodejs npm
if [ ! -f "$PREFIX/node_modules/playwright-core/package.json" ] || [ ! -f "$PREFIX/node_modules/cose-js/package.json" ]; then
  log "installing playwright-core@$PLAYWRIGHT_VERSION and cose-js@$COSE_JS_VERSION from npm into $PREFIX (first run only)"
  # Both in one install: npm prunes what an install does not name.
  (cd "$PREFIX" && npm install --silent --no-audit --no-fund --no-save "playwright-core@$PLAYWRIGHT_VERSION" "cose-js@$COSE_JS_VERSION" >/dev/null)
fi
echo "NODE_DIR=$PREFIX"
