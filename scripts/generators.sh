#!/usr/bin/env bash
# Install the real static-site generators the tests build sites with, pinned, on first use:
#   Hugo   : Debian's package (apt-get, as root or with passwordless sudo)
#   MkDocs : from PyPI, into a private virtualenv
#   Vite   : an app scaffolded with create-vite from npm, its node_modules installed once
#
# Usage:  generators.sh      prints HUGO=, MKDOCS=, VITE_APP= lines
# Env:    PREFIX (default ${TMPDIR:-/tmp}/driftless-generators)
set -euo pipefail
PREFIX=${PREFIX:-${TMPDIR:-/tmp}/driftless-generators}
MKDOCS_VERSION=1.6.1
CREATE_VITE_VERSION=9.3.0
VITE_VERSION=8.3.8
PYTHON=${PYTHON:-python3}

LOG_TAG=generators
# shellcheck source=install-lib.sh
. "$(dirname "$0")/install-lib.sh"

mkdir -p "$PREFIX"
exec 9>"$PREFIX/.lock"
flock 9

apt_install hugo
command -v npm >/dev/null || apt_install nodejs npm

if [ ! -x "$PREFIX/venv/bin/mkdocs" ]; then
  log "installing mkdocs==$MKDOCS_VERSION from PyPI into $PREFIX/venv (first run only)"
  if ! "$PYTHON" -m venv "$PREFIX/venv" 2>/dev/null; then
    apt_install python3-venv
    rm -rf "$PREFIX/venv"; "$PYTHON" -m venv "$PREFIX/venv"
  fi
  "$PREFIX/venv/bin/pip" install -q --no-cache-dir "mkdocs==$MKDOCS_VERSION"
fi

APP=$PREFIX/vite-app
if [ ! -x "$APP/node_modules/.bin/vite" ]; then
  log "scaffolding a Vite app with create-vite@$CREATE_VITE_VERSION, vite@$VITE_VERSION (first run only)"
  rm -rf "$APP"
  (cd "$PREFIX" && npm create --yes "vite@$CREATE_VITE_VERSION" vite-app -- --template vanilla --no-interactive >/dev/null)
  (cd "$APP" && npm install --silent --no-audit --no-fund --save-exact "vite@$VITE_VERSION" >/dev/null)
fi

echo "HUGO=$(command -v hugo)"
echo "MKDOCS=$PREFIX/venv/bin/mkdocs"
echo "VITE_APP=$APP"
