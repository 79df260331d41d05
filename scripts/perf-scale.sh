#!/usr/bin/env bash
# perf-scale.sh — airship scaled out, side by side in one run, on one
# PostgreSQL and one Redis: 1, 2 and 3 replicas of `airship serve`, and the
# modules split in three processes (gateway, products, orders) calling each
# other over Connect, twice: each module's Go runtime sized to its share of
# the machine's CPUs ("split": GOMAXPROCS = CPUs / 3, at least 1, as
# docs/scaling.md recommends for modules sharing cores), and at the
# runtime's default ("split-default": every process sized to all CPUs).
# For each setup, in turn, round after round:
#
#   1. a 32-connection mixed load (GET product, GET order, POST order,
#      GET /orders, in turn) for DURATION seconds: wrk, its connections
#      spread evenly over the replicas (one wrk per replica, run at once);
#   2. the contract's load scenario at 3 users (airship loadtest), the
#      users spread over the replicas.
#
# Every setup runs all the time; only the one measured gets load. The
# best result of each setup over ROUNDS counts (other work on a shared
# machine only ever adds latency and takes throughput away). It prints
# each round and a summary, and checks that the split setup's average
# latency at 3 users is within 2x that of one replica (the split-default
# setup's ratio is printed beside it, not checked): the median of the
# rounds' ratios, each between two measurements taken one after the other
# (so under about the same load from the rest of the machine), and that no
# request of any setup failed: either failing, it exits 1.
#
# Needs: go, psql, redis-cli, wrk (apt-get install wrk), curl, jq.
# Environment (defaults in brackets):
#   PG_ADMIN_URL  [postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable]
#   REDIS_HOST    [127.0.0.1]   REDIS_PORT [6379]   REDIS_DB [4]
#   PORT          [18180]       first of nine listen ports (PORT..PORT+8)
#   SPLIT_GOMAXPROCS [CPUs / 3, at least 1]  GOMAXPROCS of each split module
#   DURATION      [10]          seconds of each 32-connection load
#   HOLD          [20s]         hold of each load scenario
#   ROUNDS        [3]           rounds
#   KEEP_OUT      [unset]       directory to keep raw outputs in
set -euo pipefail

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
REDIS_DB=${REDIS_DB:-4}
PORT=${PORT:-18180}
DURATION=${DURATION:-10}
HOLD=${HOLD:-20s}
ROUNDS=${ROUNDS:-3}
SPLIT_GOMAXPROCS=${SPLIT_GOMAXPROCS:-$(($(nproc) / 3 > 1 ? $(nproc) / 3 : 1))}
DB=airship_scale
PREFIX=airship-scale:
PG_URL=${PG_ADMIN_URL/\/postgres\?//$DB?}

for tool in go psql redis-cli wrk curl jq; do
	command -v "$tool" >/dev/null || { echo "perf-scale: $tool is required (wrk: apt-get install -y wrk)" >&2; exit 2; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/airship-scale.XXXXXX)
OUT=${KEEP_OUT:-$WORK/out}
mkdir -p "$OUT"
PIDS=()

pg() { psql "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 -qtAc "$1"; }
# clean_redis deletes every key under the prefix (scripts/clean-redis.sh).
clean_redis() { "$ROOT/scripts/clean-redis.sh" "$PREFIX" -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$REDIS_DB"; }
cleanup() {
	set +e
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	pg "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	clean_redis
	[[ -n ${KEEP_OUT:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== perf-scale: $(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "-- building airship with -tags remote (it also runs every module in one process)"
(cd "$ROOT" && CGO_ENABLED=0 go build -tags remote -trimpath -o "$WORK/airship" .)
AIRSHIP=$WORK/airship
pg "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
pg "CREATE DATABASE $DB" >/dev/null
clean_redis

REDIS_URL=redis://$REDIS_HOST:$REDIS_PORT/$REDIS_DB
# serve NAME PORT ENV...: starts airship with the environment, waits until
# it is ready.
serve() {
	local name=$1 port=$2
	shift 2
	# Metrics stay on, as in production, each process on a port of its own.
	env AIRSHIP_ADDR=127.0.0.1:$port AIRSHIP_METRICS_ADDR=127.0.0.1:0 \
		AIRSHIP_REDIS_PREFIX=$PREFIX AIRSHIP_LOG_LEVEL=warn "$@" \
		"$AIRSHIP" serve >"$OUT/server_$name.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 150); do
		curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "airship ($name) did not start:" >&2
	tail -5 "$OUT/server_$name.log" >&2
	exit 1
}
for i in 0 1 2; do
	serve "replica$i" $((PORT + i)) AIRSHIP_POSTGRES_URL="$PG_URL" AIRSHIP_REDIS_URL="$REDIS_URL"
done
# The module token the split modules call each other with.
MODULE_TOKEN=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
# start_split NAME FIRST ENV...: the three modules on ports FIRST..FIRST+2, the
# gateway last.
start_split() {
	local name=$1 first=$2
	shift 2
	serve "${name}_products" "$first" "$@" AIRSHIP_MODULES=products AIRSHIP_REDIS_URL="$REDIS_URL" \
		AIRSHIP_MODULE_TOKEN="$MODULE_TOKEN"
	serve "${name}_orders" $((first + 1)) "$@" AIRSHIP_MODULES=orders AIRSHIP_POSTGRES_URL="$PG_URL" \
		AIRSHIP_PRODUCTS_URL=http://127.0.0.1:$first AIRSHIP_MODULE_TOKEN="$MODULE_TOKEN"
	serve "${name}_gateway" $((first + 2)) "$@" AIRSHIP_MODULES=gateway AIRSHIP_PRODUCTS_URL=http://127.0.0.1:$first \
		AIRSHIP_ORDERS_URL=http://127.0.0.1:$((first + 1)) AIRSHIP_MODULE_TOKEN="$MODULE_TOKEN"
}
start_split split $((PORT + 3)) GOMAXPROCS="$SPLIT_GOMAXPROCS"
start_split split-default $((PORT + 6))

url() { echo "http://127.0.0.1:$(($PORT + $1))"; }
declare -A URLS=(
	[1]="$(url 0)"
	[2]="$(url 0),$(url 1)"
	[3]="$(url 0),$(url 1),$(url 2)"
	[split]="$(url 5)"
	[split-default]="$(url 8)"
)
SETUPS=(1 2 3 split split-default)
# Measured in this order, so that the split setup's run follows one
# replica's at once.
ORDER=(1 split split-default 2 3)

curl -fs -XPOST "$(url 0)/products" -H 'Content-Type: application/json' \
	-d '{"id": "perf-product", "title": "Perf", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 2000000000}' >/dev/null
ORDER_ID=$(curl -fs -XPOST "$(url 0)/orders" -H 'Content-Type: application/json' \
	-d '{"order_details": [{"product_id": "perf-product", "price": "100000.99", "quantity": 1}]}' | tr -dc 0-9)
ms() { awk -v v="$1" 'BEGIN {u = v; sub(/^[0-9.]+/, "", u); sub(/[a-z]+$/, "", v); print (u == "us" ? v / 1000 : u == "s" ? v * 1000 : v)}'; }

# mixed SETUP ROUND: 32 connections over the setup's URLs; prints
# "requests/s average-ms errors".
mixed() {
	local setup=$1 round=$2 urls n i conns pids=()
	IFS=, read -r -a urls <<<"${URLS[$setup]}"
	n=${#urls[@]}
	for i in $(seq 0 $((n - 1))); do
		conns=$((32 / n + (i < 32 % n ? 1 : 0)))
		timeout $((DURATION + 30)) wrk -t 1 -c "$conns" -d "${DURATION}s" -s "$ROOT/scripts/mixed.lua" "${urls[$i]}" -- "$ORDER_ID" \
			>"$OUT/mixed_${setup}_${round}_$i.wrk" 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
	local rps=0 weighted=0 errors=0 r lat e
	for i in $(seq 0 $((n - 1))); do
		f=$OUT/mixed_${setup}_${round}_$i.wrk
		r=$(awk '/^Requests\/sec:/ {print $2}' "$f")
		lat=$(ms "$(awk '$1 == "Latency" {print $2; exit}' "$f")")
		e=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {n += 1} END {print n + 0}' "$f")
		rps=$(awk -v a="$rps" -v b="$r" 'BEGIN {print a + b}')
		weighted=$(awk -v a="$weighted" -v b="$r" -v l="$lat" 'BEGIN {print a + b * l}')
		errors=$((errors + e))
	done
	awk -v r="$rps" -v w="$weighted" -v e="$errors" 'BEGIN {printf "%.0f %.2f %d\n", r, (r > 0 ? w / r : 0), e}'
}

# scenario SETUP ROUND: the load scenario at 3 users; prints
# "requests errors average-ms p90-ms".
scenario() {
	local setup=$1 round=$2 dir=$OUT/scenario_${1}_$2
	"$AIRSHIP" loadtest --url "${URLS[$setup]}" --users 3 --ramp-up 1s --hold "$HOLD" --out "$dir" \
		>"$dir.txt" 2>&1 || { echo "loadtest failed:" >&2; tail -5 "$dir.txt" >&2; exit 1; }
	jq -r '.total | "\(.requests) \(.errors) \(.avg_ms * 100 | round / 100) \(.p90_ms * 100 | round / 100)"' "$dir/summary.json"
}

# ratio_of A B: A / B to two decimals.
ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

declare -A BEST_RPS BEST_AVG BEST_P90 ALL_RPS ALL_AVG
RATIOS=()
DEFAULT_RATIOS=()
ERRORS=()
for round in $(seq "$ROUNDS"); do
	echo "-- round $round of $ROUNDS (load average $(cut -d' ' -f1 /proc/loadavg))"
	for setup in "${ORDER[@]}"; do
		read -r rps mlat merr < <(mixed "$setup" "$round")
		read -r reqs errs avg p90 < <(scenario "$setup" "$round")
		printf '   %-13s 32 connections: %6s req/s, avg %6s ms, %s errors | 3 users: %7s requests, %s errors, avg %5.2f ms, p90 %5.2f ms\n' \
			"$setup" "$rps" "$mlat" "$merr" "$reqs" "$errs" "$avg" "$p90"
		if [[ $merr != 0 || $errs != 0 ]]; then
			echo "   ($setup: errors, see $OUT)"
			ERRORS+=("round $round, $setup: $merr errors at 32 connections, $errs in the load scenario")
		fi
		ALL_RPS[$setup]+=" $rps"
		ALL_AVG[$setup]+=" $avg"
		BEST_RPS[$setup]=$(printf '%s\n' "${BEST_RPS[$setup]:-0}" "$rps" | sort -g | tail -1)
		if [[ -z ${BEST_AVG[$setup]:-} ]] || awk -v a="$avg" -v b="${BEST_AVG[$setup]}" 'BEGIN {exit !(a < b)}'; then
			BEST_AVG[$setup]=$avg BEST_P90[$setup]=$p90
		fi
		[[ $setup == 1 ]] && one=$avg
		[[ $setup == split ]] && RATIOS+=("$(ratio_of "$avg" "$one")")
		[[ $setup == split-default ]] && DEFAULT_RATIOS+=("$(ratio_of "$avg" "$one")")
	done
done

echo
echo "== best of $ROUNDS rounds (load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf '   %-13s %18s %16s %16s\n' setup "32 conns req/s" "3 users avg ms" "3 users p90 ms"
for setup in "${SETUPS[@]}"; do
	printf '   %-13s %18s %16.2f %16.2f   (rounds: req/s%s; avg ms%s)\n' "$setup" "${BEST_RPS[$setup]}" \
		"${BEST_AVG[$setup]}" "${BEST_P90[$setup]}" "${ALL_RPS[$setup]}" "${ALL_AVG[$setup]}"
done
best_ratio=$(ratio_of "${BEST_AVG[split]}" "${BEST_AVG[1]}")
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
ratio=$(median "${RATIOS[@]}")
echo "   split (GOMAXPROCS=$SPLIT_GOMAXPROCS) / one replica, average latency at 3 users: rounds ${RATIOS[*]}; median ${ratio}x; best / best ${best_ratio}x"
echo "   split-default / one replica, the same: rounds ${DEFAULT_RATIOS[*]}; median $(median "${DEFAULT_RATIOS[@]}")x; best / best $(ratio_of "${BEST_AVG[split-default]}" "${BEST_AVG[1]}")x (not checked)"
FAILED=0
if awk -v r="$ratio" 'BEGIN {exit !(r <= 2)}'; then
	echo "   PASS split average latency at 3 users is ${ratio}x one replica's (median of the rounds; limit 2x)"
else
	echo "   FAIL split average latency at 3 users is ${ratio}x one replica's (median of the rounds; limit 2x)"
	FAILED=1
fi
if [[ ${#ERRORS[@]} == 0 ]]; then
	echo "   PASS no errors"
else
	echo "   FAIL errors in ${#ERRORS[@]} of the measurements:"
	printf '     %s\n' "${ERRORS[@]}"
	FAILED=1
fi
exit $FAILED
