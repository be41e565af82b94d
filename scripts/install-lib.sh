# Shared by the scripts that install what the tests need (sourced, not run):
#   log MSG...          a line on stderr, tagged with $LOG_TAG
#   as_root CMD...      run as root (directly, or with passwordless sudo)
#   apt_install PKG...  install the Debian packages that are missing (first run only)
# Set LOG_TAG before sourcing.

log() { echo "[${LOG_TAG:-driftless}] $*" >&2; }

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
