#!/bin/sh
# Install driftless from its prebuilt release archives, checksum verified, without root.
#
#   curl -fsSL https://github.com/driftless-dev/driftless/releases/latest/download/install.sh | sh
#   curl -fsSL …/install.sh | sh -s -- --version v0.2.0 --to /usr/local/bin
#
# Options:
#   --version VERSION   a release tag (v0.2.0) or "latest" (the default)
#   --to DIR            where to put the binary (default: ~/.local/bin)
#   --target TRIPLE     override the detected platform (x86_64-unknown-linux-musl, ...)
#   --attestation       also check the archive's build-provenance attestation with the
#                       GitHub CLI (`gh attestation verify`); refuse to install without it
# Environment:
#   DRIFTLESS_DOWNLOAD_URL   where releases are downloaded from (default: the GitHub
#                            releases of driftless-dev/driftless); a mirror must keep the
#                            layout <url>/download/<tag>/<file> and <url>/latest/download/<file>
#
# Downloads are HTTPS only, redirects included; a mirror given explicitly as http://
# is the one exception (a warning says so). Exit status: 0 installed; 1 download,
# checksum, attestation or install failed; 2 bad usage or an unsupported platform.
# Nothing is installed unless the archive's SHA-256 matches its line in the release's
# SHA256SUMS.
set -eu

REPO_URL=${DRIFTLESS_DOWNLOAD_URL:-https://github.com/driftless-dev/driftless/releases}
VERSION=latest
DEST=${HOME:-}/.local/bin
TARGET=
ATTEST=

usage() {
  cat <<'EOF'
Install driftless from its prebuilt release archives, checksum verified, without root.

usage: install.sh [--version VERSION] [--to DIR] [--target TRIPLE]
  --version VERSION   a release tag (v0.2.0) or "latest" (the default)
  --to DIR            where to put the binary (default: ~/.local/bin)
  --target TRIPLE     override the detected platform (x86_64-unknown-linux-musl, ...)
  --attestation       also verify the build provenance with `gh attestation verify`
  DRIFTLESS_DOWNLOAD_URL=URL   download from a mirror instead of GitHub releases

example: curl -fsSL https://github.com/driftless-dev/driftless/releases/latest/download/install.sh | sh -s -- --to ~/bin
EOF
}
say() { printf 'driftless install: %s\n' "$*" >&2; }
die() { code=$1; shift; say "$*"; exit "$code"; }

while [ $# -gt 0 ]; do
  case $1 in
    --version) [ $# -ge 2 ] || die 2 "--version needs a value (v0.2.0 or latest)"; VERSION=$2; shift 2 ;;
    --version=*) VERSION=${1#*=}; shift ;;
    --to) [ $# -ge 2 ] || die 2 "--to needs a directory"; DEST=$2; shift 2 ;;
    --to=*) DEST=${1#*=}; shift ;;
    --target) [ $# -ge 2 ] || die 2 "--target needs a target triple"; TARGET=$2; shift 2 ;;
    --target=*) TARGET=${1#*=}; shift ;;
    --attestation) ATTEST=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die 2 "unknown option $1 (see --help)" ;;
  esac
done
[ -n "$DEST" ] || die 2 "no destination: set HOME or pass --to DIR"

detect_target() {
  os=$(uname -s)
  arch=$(uname -m)
  case $arch in
    x86_64|amd64) arch=x86_64 ;;
    aarch64|arm64) arch=aarch64 ;;
    *) die 2 "no prebuilt binary for the $arch architecture; build from source: cargo install --locked driftless" ;;
  esac
  case $os in
    Linux) echo "$arch-unknown-linux-musl" ;;
    Darwin) echo "$arch-apple-darwin" ;;
    MINGW*|MSYS*|CYGWIN*) [ "$arch" = x86_64 ] || die 2 "Windows builds are x86_64 only"; echo "x86_64-pc-windows-msvc" ;;
    *) die 2 "no prebuilt binary for $os; build from source: cargo install --locked driftless" ;;
  esac
}
[ -n "$TARGET" ] || TARGET=$(detect_target)

case $TARGET in
  *windows*) ARCHIVE="driftless-$TARGET.zip"; EXE=driftless.exe ;;
  *) ARCHIVE="driftless-$TARGET.tar.gz"; EXE=driftless ;;
esac
if [ "$VERSION" = latest ]; then
  BASE="$REPO_URL/latest/download"
else
  case $VERSION in v*) ;; *) VERSION="v$VERSION" ;; esac
  BASE="$REPO_URL/download/$VERSION"
fi

# HTTPS only, and only HTTPS on redirects; plain HTTP only for a mirror named so.
PROTO='=https'
case $REPO_URL in
  https://*) ;;
  http://*) PROTO='=https,http'; say "warning: downloading over plain HTTP from DRIFTLESS_DOWNLOAD_URL=$REPO_URL (no redirect may leave HTTPS)" ;;
  *) die 2 "DRIFTLESS_DOWNLOAD_URL=$REPO_URL: give an https:// URL" ;;
esac
fetch() { # url file
  if command -v curl >/dev/null 2>&1; then
    curl --proto "$PROTO" --proto-redir '=https' --tlsv1.2 -fsSL --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    case $PROTO in
      *http,*|*,http) wget -q --max-redirect=0 -O "$2" "$1" ;;
      *) wget -q --https-only --secure-protocol=TLSv1_2 -O "$2" "$1" ;;
    esac
  else
    die 1 "needs curl or wget to download"
  fi
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d ' ' -f 1
  elif command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 "$1" | sed 's/.*= *//'
  else die 1 "needs sha256sum, shasum or openssl to verify the download"
  fi
}

TMP=$(mktemp -d 2>/dev/null || mktemp -d -t driftless)
trap 'rm -rf "$TMP"' EXIT INT TERM

say "downloading $ARCHIVE ($VERSION) from $BASE"
fetch "$BASE/$ARCHIVE" "$TMP/$ARCHIVE" || die 1 "could not download $BASE/$ARCHIVE (no such version or platform?)"
fetch "$BASE/SHA256SUMS" "$TMP/SHA256SUMS" || die 1 "could not download the checksums $BASE/SHA256SUMS; refusing to install an unverified binary"

# The line `<sha256>  <archive>` (or `<sha256> *<archive>`) of SHA256SUMS.
expected=$(awk -v f="$ARCHIVE" '$2 == f || $2 == "*" f { print $1; exit }' "$TMP/SHA256SUMS" | tr 'A-F' 'a-f')
actual=$(sha256_of "$TMP/$ARCHIVE")
case $expected in
  '') die 1 "SHA256SUMS has no line for $ARCHIVE; refusing to install" ;;
  *[!0-9a-f]*) die 1 "SHA256SUMS's line for $ARCHIVE is not a SHA-256; refusing to install" ;;
esac
[ ${#expected} -eq 64 ] || die 1 "SHA256SUMS's line for $ARCHIVE is not a SHA-256; refusing to install"
[ "$expected" = "$actual" ] || die 1 "checksum mismatch for $ARCHIVE: expected $expected, got $actual; nothing was installed (retry, or report it if it persists)"

# The build-provenance attestation the release workflow makes, checked by the GitHub CLI.
if [ -n "$ATTEST" ]; then
  command -v gh >/dev/null 2>&1 || die 1 "--attestation needs the GitHub CLI (gh); nothing was installed"
  gh attestation verify "$TMP/$ARCHIVE" --repo driftless-dev/driftless >&2 ||
    die 1 "the build-provenance attestation of $ARCHIVE did not verify; nothing was installed"
  say "the build-provenance attestation of $ARCHIVE verified"
elif command -v gh >/dev/null 2>&1; then
  say "gh is installed: add --attestation to also verify the build provenance of $ARCHIVE"
fi

mkdir -p "$TMP/x"
case $ARCHIVE in
  *.zip) command -v unzip >/dev/null 2>&1 || die 1 "needs unzip"; unzip -q "$TMP/$ARCHIVE" -d "$TMP/x" ;;
  *) tar -xzf "$TMP/$ARCHIVE" -C "$TMP/x" ;;
esac
BIN=$(find "$TMP/x" -type f -name "$EXE" | head -n 1)
[ -n "$BIN" ] || die 1 "$ARCHIVE holds no $EXE"

mkdir -p "$DEST" || die 1 "cannot create $DEST"
# Copy next to the destination, then rename: a running driftless is never half-replaced.
cp "$BIN" "$DEST/.$EXE.new" || die 1 "cannot write to $DEST"
chmod 755 "$DEST/.$EXE.new"
mv -f "$DEST/.$EXE.new" "$DEST/$EXE" || die 1 "cannot write $DEST/$EXE"

say "installed $("$DEST/$EXE" --version 2>/dev/null || echo "$EXE") to $DEST/$EXE"
case ":${PATH:-}:" in
  *":$DEST:"*) ;;
  *) say "$DEST is not on your PATH; add it: export PATH=\"$DEST:\$PATH\"" ;;
esac
