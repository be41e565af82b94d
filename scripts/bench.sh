#!/usr/bin/env bash
# Benchmark: driftless vs `rclone sync` vs `aws s3 sync` on the same SeaweedFS server, in
# one run, the tools interleaved round by round (so a slow minute of the machine hurts
# every tool alike). Three scenarios per tool and round, each on a fresh bucket: initial
# upload, no-op re-run, one file changed. Each size runs direct and through a latency proxy
# (scripts/latency-proxy.py, LATENCY_MS per request, as a real region is from CI).
#
# Prints, per size and network: the median wall seconds, driftless/rclone ratios and the
# peak RSS (/usr/bin/time) of each tool.
#
# Usage: scripts/bench.sh
#   SIZES="2000 20000"   site sizes (files of 1-20 KB, in 40 directories)
#   ROUNDS=3             rounds (medians are taken over them)
#   TOOLS="rclone aws driftless"
#   NETS="direct latency"
#   LATENCY_MS=25
#   PROFILE=release      driftless build profile
#   BIN=path             a driftless binary to measure instead of building one
#   BEFORE=path          another driftless binary (e.g. built from the previous commit),
#                        measured as the tool "before" in the same interleaved rounds
#   LAYOUT=atomic        deploy with `layout = "atomic"` (slots + pointer; default: the
#                        store's default, in place on S3)
# Needs: the project's test servers (installed and started by scripts/s3-test-servers.sh),
# python3, GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-2000 20000}
ROUNDS=${ROUNDS:-3}
BEFORE=${BEFORE:-}
LAYOUT=${LAYOUT:-}
TOOLS=${TOOLS:-rclone aws ${BEFORE:+before }driftless}
NETS=${NETS:-direct latency}
LATENCY_MS=${LATENCY_MS:-25}
PROFILE=${PROFILE:-release}
PROXY_PORT=${PROXY_PORT:-19199}

eval "$(scripts/s3-test-servers.sh start --watch $$ | grep '=' | sed 's/^/export /')"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null \
  AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
VENV_BIN=$(dirname "$AWS_CLI")
RCLONE=$VENV_BIN/rclone
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (/usr/bin/time; Debian package 'time')" >&2; exit 1; }

if [ -z "${BIN:-}" ]; then
  if [ "$PROFILE" = release ]; then cargo build -q --release; BIN=target/release/driftless
  else cargo build -q; BIN=target/debug/driftless; fi
fi
BIN=$(readlink -f "$BIN")
[ -z "$BEFORE" ] || BEFORE=$(readlink -f "$BEFORE")

WORK=$(mktemp -d)
PROXY_PID=
cleanup() { [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

python3 scripts/latency-proxy.py "$PROXY_PORT" "${SEAWEEDFS_ENDPOINT#http://}" "$LATENCY_MS" > "$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
for _ in $(seq 50); do grep -q ready "$WORK/proxy.log" 2>/dev/null && break; sleep 0.1; done

make_site() { # dir n
  python3 - "$1" "$2" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
for i in range(n):
    d = os.path.join(root, f"section{i % 40}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"page{i}.html"), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(1024, 20 * 1024)))
EOF
}

# measure LABEL CMD...: appends "seconds rss_kb" to $WORK/LABEL
measure() {
  local label=$1; shift
  /usr/bin/time -o "$WORK/time.out" -f "%e %M" bash -c '"$@"' _ "$@" > "$WORK/out.log" 2>&1 || {
    echo "bench: $label failed:" >&2; tail -20 "$WORK/out.log" >&2; exit 1; }
  tail -1 "$WORK/time.out" >> "$WORK/$label"
}

run_tool() { # tool endpoint bucket site project
  local tool=$1 ep=$2 bucket=$3 site=$4 proj=$5
  case $tool in
    aws) "$AWS_CLI" --endpoint-url "$ep" s3 sync --delete --quiet "$site" "s3://$bucket" ;;
    rclone) RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other \
        RCLONE_CONFIG_BENCH_ENDPOINT=$ep RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID \
        RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY RCLONE_CONFIG_BENCH_REGION=us-east-1 \
        "$RCLONE" sync --transfers 16 --checkers 16 "$site" "bench:$bucket" ;;
    driftless) (cd "$proj" && DRIFTLESS_AUTHOR=bench "$BIN" deploy bench --yes) ;;
    before) (cd "$proj" && DRIFTLESS_AUTHOR=bench "$BEFORE" deploy bench --yes) ;;
  esac
}
export -f run_tool
export AWS_CLI RCLONE BIN BEFORE

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk -v c="$1" '{print $c}' "$2"; }

for n in $SIZES; do
  make_site "$WORK/site-$n" "$n"
  for net in $NETS; do
    ep=$SEAWEEDFS_ENDPOINT
    [ "$net" = latency ] && ep=http://127.0.0.1:$PROXY_PORT
    for r in $(seq 1 "$ROUNDS"); do
      # Rotate the order each round.
      read -r -a order <<< "$TOOLS"
      shift_by=$(( (r - 1) % ${#order[@]} ))
      order=("${order[@]:$shift_by}" "${order[@]:0:$shift_by}")
      for tool in "${order[@]}"; do
        bucket="bench-$tool-$n-$net-$r-$RANDOM"
        "$AWS_CLI" --endpoint-url "$SEAWEEDFS_ENDPOINT" s3api create-bucket --bucket "$bucket" >/dev/null
        site="$WORK/s-$tool"; rm -rf "$site"; cp -r "$WORK/site-$n" "$site"
        proj="$WORK/p-$tool"; rm -rf "$proj"; mkdir -p "$proj"
        printf 'site = "%s"\n[env.bench]\nstore = "s3://%s"\nendpoint = "%s"\nregion = "us-east-1"\n%s' "$site" "$bucket" "$ep" "${LAYOUT:+layout = \"$LAYOUT\"
}" > "$proj/driftless.toml"
        key="$n-$net-$tool"
        measure "$key-initial" run_tool "$tool" "$ep" "$bucket" "$site" "$proj"
        measure "$key-noop" run_tool "$tool" "$ep" "$bucket" "$site" "$proj"
        python3 -c "import sys; open(sys.argv[1], 'ab').write(b'changed')" "$site/section7/page7.html"
        measure "$key-change" run_tool "$tool" "$ep" "$bucket" "$site" "$proj"
        echo "bench: $n files, $net, round $r, $tool: $(tail -1 "$WORK/$key-initial") / $(tail -1 "$WORK/$key-noop") / $(tail -1 "$WORK/$key-change") (s KB)" >&2
        "$AWS_CLI" --endpoint-url "$SEAWEEDFS_ENDPOINT" s3 rb --force "s3://$bucket" >/dev/null 2>&1 || true
      done
    done
  done
done

echo
echo "SeaweedFS on loopback; files of 1-20 KB; median wall seconds of $ROUNDS interleaved rounds;"
echo "latency: +${LATENCY_MS} ms per request through scripts/latency-proxy.py; peak RSS in MB (max of the three scenarios)."
echo "driftless: $("$BIN" --version)${BEFORE:+ (before: $BEFORE)}; rclone $("$RCLONE" version | head -1 | awk '{print $2}'); $("$AWS_CLI" --version 2>&1 | awk '{print $1}')"
echo
printf '| files | network | tool | initial | no-op | one change | peak RSS |\n|---|---|---|---|---|---|---|\n'
for n in $SIZES; do
  for net in $NETS; do
    for tool in $TOOLS; do
      key="$n-$net-$tool"
      i=$(col 1 "$WORK/$key-initial" | median); o=$(col 1 "$WORK/$key-noop" | median); c=$(col 1 "$WORK/$key-change" | median)
      rss=$(cat "$WORK/$key-initial" "$WORK/$key-noop" "$WORK/$key-change" | awk '{print $2}' | sort -n | tail -1)
      printf '| %s | %s | %s | %.2f | %.2f | %.2f | %d |\n' "$n" "$net" "$tool" "$i" "$o" "$c" $((rss / 1024))
      echo "$i $o $c" > "$WORK/median-$key"
    done
    for tool in before driftless; do
      if [ -f "$WORK/median-$n-$net-rclone" ] && [ -f "$WORK/median-$n-$net-$tool" ]; then
        read -r ri ro rc < "$WORK/median-$n-$net-rclone"
        read -r di do dc < "$WORK/median-$n-$net-$tool"
        awk -v n="$n" -v net="$net" -v t="$tool" -v ri="$ri" -v ro="$ro" -v rc="$rc" -v di="$di" -v dn="$do" -v dc="$dc" \
          'BEGIN { printf "| %s | %s | %s/rclone | %.2f | %.2f | %.2f | |\n", n, net, t, di/ri, dn/ro, dc/rc }'
      fi
    done
  done
done
