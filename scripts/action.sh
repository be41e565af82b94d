#!/usr/bin/env bash
# The driftless GitHub Action (action.yml at the repository root runs this).
#
#   action.sh install   put driftless $DRIFTLESS_VERSION on the PATH (the one already there
#                       if it is that version; "installed" takes whatever is there)
#   action.sh run       run the command the inputs name, write the outputs `url` and
#                       `release`, and keep one comment on the pull request up to date
#
# Inputs come as INPUT_* variables (set by action.yml):
#   INPUT_COMMAND        preview | delete-preview | deploy | promote | verify (default deploy)
#   INPUT_ENVIRONMENT    the driftless environment (required)
#   INPUT_PREVIEW        the preview name (default: pr-<number> on a pull_request event)
#   INPUT_FROM           promote: the environment to promote from
#   INPUT_ARGS           more arguments for driftless (split on spaces)
#   INPUT_COMMENT        "true": create or update the pull request's comment (default)
#   INPUT_GITHUB_TOKEN   the token the comment is written with
# and the runner's GITHUB_* variables (GITHUB_EVENT_PATH, GITHUB_REPOSITORY,
# GITHUB_API_URL, GITHUB_OUTPUT, GITHUB_ACTION_PATH).
#
# Exit status: driftless's (3: a guard refused; nothing was changed), 2 for bad inputs,
# 1 when the comment could not be written.
set -euo pipefail

say() { printf 'driftless action: %s\n' "$*" >&2; }
die() { code=$1; shift; say "$*"; exit "$code"; }

install() {
  local want=${DRIFTLESS_VERSION:-latest}
  if command -v driftless >/dev/null 2>&1; then
    local have
    have=$(driftless --version | awk '{print $2}')
    if [ "$want" = installed ] || [ "v$have" = "$want" ] || [ "$have" = "$want" ]; then
      say "using driftless $have from $(command -v driftless)"
      return
    fi
  fi
  [ "$want" = installed ] && die 2 "version: installed, but no driftless is on the PATH"
  local dir="${RUNNER_TEMP:-/tmp}/driftless-bin"
  sh "${GITHUB_ACTION_PATH:?}/install.sh" --version "$want" --to "$dir"
  echo "$dir" >> "${GITHUB_PATH:?}"
}

# The pull request this run is about, if any.
pr_number() {
  [ -n "${GITHUB_EVENT_PATH:-}" ] && [ -f "$GITHUB_EVENT_PATH" ] || return 0
  jq -r '.pull_request.number // .number // empty' "$GITHUB_EVENT_PATH"
}

output() { # name value
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    printf '%s=%s\n' "$1" "$2" >> "$GITHUB_OUTPUT"
  fi
}

api() { # method path [body]
  local method=$1 path=$2 body=()
  if [ $# -ge 3 ]; then body=(-H "Content-Type: application/json" --data "$3"); fi
  curl -fsS -X "$method" \
    -H "Authorization: Bearer ${INPUT_GITHUB_TOKEN:?the github-token input is empty}" \
    -H "Accept: application/vnd.github+json" \
    -H "X-GitHub-Api-Version: 2022-11-28" \
    "${body[@]}" \
    "${GITHUB_API_URL:-https://api.github.com}$path"
}

# Who the token writes as: the user `GET /user` names, else (the workflow's GITHUB_TOKEN,
# which may not read /user) the Actions bot.
author() {
  local login
  login=$(api GET /user 2>/dev/null | jq -r '.login // empty' 2>/dev/null) || login=
  echo "${login:-github-actions[bot]}"
}

# Create the comment carrying $marker on pull request $1, or update the one there: never
# a second one. Only a comment this token's user wrote is edited: anyone can post the
# marker, and nobody else's comment is ours to change.
comment() { # number marker body
  local number=$1 marker=$2 body=$3 repo=${GITHUB_REPOSITORY:?} page=1 id= me
  me=$(author)
  while [ -z "$id" ]; do
    local comments
    comments=$(api GET "/repos/$repo/issues/$number/comments?per_page=100&page=$page") ||
      die 1 "could not list the comments of #$number"
    id=$(jq -r --arg m "$marker" --arg me "$me" \
      '[.[] | select((.body | contains($m)) and .user.login == $me)][0].id // empty' <<<"$comments")
    [ "$(jq length <<<"$comments")" -lt 100 ] && break
    page=$((page + 1))
  done
  local payload
  payload=$(jq -n --arg b "$body" '{body: $b}')
  if [ -n "$id" ]; then
    api PATCH "/repos/$repo/issues/comments/$id" "$payload" >/dev/null ||
      die 1 "could not update comment $id on #$number"
    say "updated the comment on #$number"
  else
    api POST "/repos/$repo/issues/$number/comments" "$payload" >/dev/null ||
      die 1 "could not comment on #$number"
    say "commented on #$number"
  fi
}

run() {
  local command=${INPUT_COMMAND:-deploy} env=${INPUT_ENVIRONMENT:-}
  [ -n "$env" ] || die 2 "the environment input is required"
  local number name
  number=$(pr_number)
  name=${INPUT_PREVIEW:-}
  if [ -z "$name" ] && [ -n "$number" ]; then name="pr-$number"; fi
  # Split on spaces, as documented; never expanded as file names (`--force *`).
  local extra=()
  read -r -a extra <<<"${INPUT_ARGS:-}"
  local args
  case "$command" in
    preview)
      [ -n "$name" ] || die 2 "preview: no preview input and no pull request to name it after"
      args=(deploy "$env" --preview "$name" --yes --json) ;;
    delete-preview)
      [ -n "$name" ] || die 2 "delete-preview: no preview input and no pull request to name it after"
      args=(previews "$env" --delete "$name" --yes --json) ;;
    deploy | verify)
      args=("$command" "$env" --yes --json) ;;
    promote)
      [ -n "${INPUT_FROM:-}" ] || die 2 "promote: the from input is required"
      args=(promote "$INPUT_FROM" "$env" --yes --json) ;;
    *) die 2 "command $command: use preview, delete-preview, deploy, promote or verify" ;;
  esac
  local doc status=0
  doc=$(driftless "${args[@]}" "${extra[@]}") || status=$?
  jq -e . >/dev/null 2>&1 <<<"$doc" || doc='{}'
  local release url
  release=$(jq -r '.release | if type == "object" then .id else . end // empty' <<<"$doc")
  url=$(jq -r '.url // empty' <<<"$doc")
  output release "$release"
  output url "$url"
  if [ "${INPUT_COMMENT:-true}" = true ] && [ -n "$number" ] && [ -n "$name" ] &&
    { [ "$command" = preview ] || [ "$command" = delete-preview ]; }; then
    local marker="<!-- driftless-preview:$env:$name -->" body
    if [ "$command" = delete-preview ] && [ "$status" -eq 0 ]; then
      body="$marker
**Preview \`$name\` of $env** was deleted (the pull request was closed)."
    elif [ "$status" -ne 0 ]; then
      body="$marker
**Preview \`$name\` of $env** could not be deployed (driftless exited $status): see the run's log."
    else
      local summary
      summary=$(jq -r '.plan.totals | "\(.create) created, \(.update) updated, \(.delete) deleted, \(.unchanged) unchanged against live"' <<<"$doc")
      body="$marker
**Preview \`$name\` of $env** is ready: ${url:-"(no preview_url in driftless.toml)"}

| | |
|---|---|
| release | \`$release\` |
| commit | \`${GITHUB_SHA:-unknown}\` |
| changes | $summary |

Ship exactly these bytes: \`driftless deploy $env --from-preview $name\`"
    fi
    comment "$number" "$marker" "$body"
  fi
  return "$status"
}

case "${1:-}" in
  install) install ;;
  run) run ;;
  *) die 2 "usage: action.sh install|run" ;;
esac
