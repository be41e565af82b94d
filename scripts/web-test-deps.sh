#!/usr/bin/env bash
# Install what the HTTP-edge tests need beyond Rust, on first use:
#   nginx           : a real caching proxy (proxy_cache) in front of `driftless serve`
#   chromium        : Debian's headless browser, driven by...
#   playwright-core : ...from npm, into a private directory (no browser download)
# Debian packages need root (or sudo); npm needs Node.js (installed with apt if missing).
#
# Usage:  web-test-deps.sh        prints NODE_DIR=<dir holding node_modules/playwright-core>
# Env:    PREFIX (default ${TMPDIR:-/tmp}/driftless-web-test)
set -euo pipefail
PREFIX=${PREFIX:-${TMPDIR:-/tmp}/driftless-web-test}
PLAYWRIGHT_VERSION=${PLAYWRIGHT_VERSION:-1.65.1}

log() { echo "[web-test-deps] $*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
  else log "need root to run: $*"; return 1
  fi
}

apt_install() {
  local missing=() pkg
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} = 0 ] && return 0
  command -v apt-get >/dev/null || { log "no apt-get: install ${missing[*]} yourself"; exit 1; }
  log "installing ${missing[*]} with apt-get (first run only)"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

mkdir -p "$PREFIX"
# One installer at a time: tests run in parallel and may all ask at once.
exec 9>"$PREFIX/.lock"
flock 9

apt_install nginx-light chromium
command -v npm >/dev/null || apt_install nodejs npm
if [ ! -f "$PREFIX/node_modules/playwright-core/package.json" ]; then
  log "installing playwright-core@$PLAYWRIGHT_VERSION from npm into $PREFIX (first run only)"
  (cd "$PREFIX" && npm install --silent --no-audit --no-fund --no-save "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null)
fi
echo "NODE_DIR=$PREFIX"
