#!/bin/sh
# The notes of one version from CHANGELOG.md (its "## [X.Y.Z]" section, heading excluded),
# for the GitHub Release of tag vX.Y.Z. Exit 1 when the changelog has no such section: a
# release is not published without its notes.
#
# Usage: scripts/release-notes.sh v0.2.0 [CHANGELOG.md]
set -eu
[ $# -ge 1 ] || { echo "usage: $0 vX.Y.Z [CHANGELOG.md]" >&2; exit 2; }
version=${1#v}
file=${2:-$(dirname "$0")/../CHANGELOG.md}
notes=$(awk -v v="$version" '
  index($0, "## [" v "]") == 1 { found = 1; next }
  found && /^## \[/ { exit }
  found && /^\[[^]]+\]: / { exit }
  found { print }
' "$file")
# Trim leading and trailing blank lines.
notes=$(printf '%s\n' "$notes" | sed '/./,$!d')
if [ -z "$notes" ]; then
  echo "release-notes: CHANGELOG.md has no section \"## [$version]\"; add one before tagging v$version" >&2
  exit 1
fi
printf '%s\n' "$notes"
