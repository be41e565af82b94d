#!/usr/bin/env bash
# Benchmark: driftless vs `aws s3 sync` vs `rclone sync` on the same SeaweedFS server, in
# one run. Three scenarios per tool: initial upload, no-op re-run, one file changed.
#
# Usage: scripts/bench.sh            (N=2000 files of 1–20 KB by default; RUNS=3 medians)
# Needs: the project's test servers (installed and started by scripts/s3-test-servers.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
RUNS=${RUNS:-3}
PROFILE=${PROFILE:-release}

eval "$(scripts/s3-test-servers.sh start --watch $$ | grep '=' | sed 's/^/export /')"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null \
  AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
EP=$SEAWEEDFS_ENDPOINT
VENV_BIN=$(dirname "$AWS_CLI")
RCLONE=$VENV_BIN/rclone
export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other \
  RCLONE_CONFIG_BENCH_ENDPOINT=$EP RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID \
  RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY RCLONE_CONFIG_BENCH_REGION=us-east-1

if [ "$PROFILE" = release ]; then cargo build -q --release; BIN=target/release/driftless
else cargo build -q; BIN=target/debug/driftless; fi
BIN=$(readlink -f "$BIN")

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$WORK/site" "$N" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
for i in range(n):
    d = os.path.join(root, f"section{i % 40}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"page{i}.html"), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(1024, 20 * 1024)))
EOF

seconds() { # prints the wall time of "$@" in seconds
  local s e; s=$(date +%s%N)
  "$@" > "$WORK/out.log" 2>&1 || { cat "$WORK/out.log" >&2; exit 1; }
  e=$(date +%s%N); awk -v ns=$((e - s)) 'BEGIN { printf "%.3f", ns / 1e9 }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A RESULT
bench_tool() { # name: runs the three scenarios RUNS times on fresh buckets
  local tool=$1 r init noop one
  local -a I=() O=() C=()
  for r in $(seq 1 "$RUNS"); do
    local bucket="bench-$tool-$r-$RANDOM"
    "$AWS_CLI" --endpoint-url "$EP" s3api create-bucket --bucket "$bucket" >/dev/null
    cp -r "$WORK/site" "$WORK/site-$tool-$r"
    local site="$WORK/site-$tool-$r"
    case $tool in
      aws) run() { "$AWS_CLI" --endpoint-url "$EP" s3 sync --delete --quiet "$site" "s3://$bucket"; } ;;
      rclone) run() { "$RCLONE" sync --transfers 16 --checkers 16 "$site" "bench:$bucket"; } ;;
      driftless)
        mkdir -p "$WORK/proj-$r"
        printf 'site = "%s"\n[env.bench]\nstore = "s3://%s"\nendpoint = "%s"\nregion = "us-east-1"\n' "$site" "$bucket" "$EP" > "$WORK/proj-$r/driftless.toml"
        run() { (cd "$WORK/proj-$r" && DRIFTLESS_AUTHOR=bench "$BIN" deploy bench --yes); } ;;
    esac
    I+=("$(seconds run)")
    O+=("$(seconds run)")
    python3 -c "import sys; open(sys.argv[1], 'ab').write(b'changed')" "$site/section7/page7.html"
    C+=("$(seconds run)")
  done
  RESULT[$tool]="$(median "${I[@]}") $(median "${O[@]}") $(median "${C[@]}")"
}

for tool in aws rclone driftless; do bench_tool "$tool"; done

echo
echo "$N files of 1-20 KB on SeaweedFS ($EP), median wall seconds of $RUNS runs, driftless $PROFILE build"
printf '%-26s %10s %10s %12s\n' tool "initial" "no-op" "one change"
for tool in aws rclone driftless; do
  read -r i o c <<< "${RESULT[$tool]}"
  case $tool in aws) label="aws s3 sync";; rclone) label="rclone sync --transfers 16";; driftless) label="driftless deploy";; esac
  printf '%-26s %10.2f %10.2f %12.2f\n' "$label" "$i" "$o" "$c"
done
