#!/usr/bin/env bash
# perf-embedded.sh — the embedded store against PostgreSQL + Redis at 3
# users: two airship servers side by side, one on the embedded SQLite
# store (a data directory of its own), one on the local PostgreSQL and
# Redis, each seeded with PRODUCTS products, and the contract's load
# scenario (airship loadtest, 3 users) run against each in turn, round
# after round, so that each round compares them under about the same load
# from the rest of the machine. It prints each run's total and its steps'
# averages, and checks that the embedded store's average latency is no
# higher than PostgreSQL + Redis's (the median of the rounds' ratios): if
# not, or if any request failed, it exits 1.
#
# Needs: go, psql, redis-cli, curl, jq.
# Environment (defaults in brackets):
#   PG_ADMIN_URL  [postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable]
#   REDIS_HOST    [127.0.0.1]   REDIS_PORT [6379]   REDIS_DB [5]
#   PORT          [18190]       the embedded server's port; PostgreSQL + Redis on PORT+1
#   PRODUCTS      [1000000]     products seeded into each store
#   HOLD          [20s]         hold of each load scenario
#   ROUNDS        [3]           rounds
#   KEEP_OUT      [unset]       directory to keep raw outputs in
set -euo pipefail

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
REDIS_DB=${REDIS_DB:-5}
PORT=${PORT:-18190}
PRODUCTS=${PRODUCTS:-1000000}
HOLD=${HOLD:-20s}
ROUNDS=${ROUNDS:-3}
DB=airship_embedded_cmp
PREFIX=airship-embedded-cmp:
PG_URL=${PG_ADMIN_URL/\/postgres\?//$DB?}
REDIS_URL=redis://$REDIS_HOST:$REDIS_PORT/$REDIS_DB

for tool in go psql redis-cli curl jq; do
	command -v "$tool" >/dev/null || { echo "perf-embedded: $tool is required" >&2; exit 2; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/airship-embedded.XXXXXX")
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
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== perf-embedded: $(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/airship" .)
AIRSHIP=$WORK/airship
pg "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
pg "CREATE DATABASE $DB" >/dev/null
clean_redis

# The two setups: name, then the environment of its stores.
declare -A STORES=(
	[embedded]="AIRSHIP_DATA_DIR=$WORK/data"
	[postgres+redis]="AIRSHIP_POSTGRES_URL=$PG_URL AIRSHIP_REDIS_URL=$REDIS_URL AIRSHIP_REDIS_PREFIX=$PREFIX"
)
declare -A URLS=([embedded]=http://127.0.0.1:$PORT [postgres+redis]=http://127.0.0.1:$((PORT + 1)))
SETUPS=(embedded postgres+redis)
for s in "${SETUPS[@]}"; do
	# shellcheck disable=SC2086 # the environment is split into its words
	env ${STORES[$s]} AIRSHIP_LOG_LEVEL=warn "$AIRSHIP" seed --products "$PRODUCTS" >"$OUT/seed_$s.log" 2>&1
	port=${URLS[$s]##*:}
	# shellcheck disable=SC2086
	env ${STORES[$s]} AIRSHIP_ADDR=127.0.0.1:$port AIRSHIP_METRICS_ADDR=127.0.0.1:0 AIRSHIP_LOG_LEVEL=warn \
		"$AIRSHIP" serve >"$OUT/server_$s.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 150); do
		curl -fs "${URLS[$s]}/readyz" >/dev/null 2>&1 && break
		sleep 0.2
	done
	curl -fs "${URLS[$s]}/readyz" >/dev/null || { echo "airship ($s) did not start:" >&2; tail -5 "$OUT/server_$s.log" >&2; exit 1; }
	echo "-- $s: $PRODUCTS products seeded, serving on ${URLS[$s]}"
done

declare -A AVG ERRORS
for s in "${SETUPS[@]}"; do ERRORS[$s]=0; done
for r in $(seq "$ROUNDS"); do
	echo "-- round $r of $ROUNDS (load average $(cut -d' ' -f1 /proc/loadavg))"
	for s in "${SETUPS[@]}"; do
		out=$OUT/round${r}_$s
		"$AIRSHIP" loadtest --url "${URLS[$s]}" --users 3 --ramp-up 2s --hold "$HOLD" --out "$out" \
			>"$out.txt" 2>&1 || true
		summary=$out/summary.json
		[[ -s $summary ]] || { echo "loadtest against $s wrote no summary:" >&2; tail -5 "$out.txt" >&2; exit 1; }
		AVG[$s,$r]=$(jq -r '.total.avg_ms' "$summary")
		ERRORS[$s]=$((ERRORS[$s] + $(jq -r '.total.errors' "$summary")))
		printf '   %-15s %s\n' "$s" "$(jq -r '"avg \(.total.avg_ms * 100 | round / 100) ms, p90 \(.total.p90_ms) ms, \(.total.requests) requests, \(.total.errors) errors | " +
			([.steps[] | "\(.name) \(.avg_ms * 100 | round / 100)"] | join(", "))' "$summary")"
	done
done

ratios=()
for r in $(seq "$ROUNDS"); do
	ratios+=("$(jq -n "${AVG[embedded,$r]} / ${AVG[postgres+redis,$r]} * 100 | round / 100")")
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
echo
echo "== embedded / postgres+redis, average latency at 3 users: rounds ${ratios[*]}; median ${median}x (load average $(cut -d' ' -f1-3 /proc/loadavg))"
status=0
if awk -v m="$median" 'BEGIN {exit !(m <= 1)}'; then
	echo "   PASS the embedded store is no slower than PostgreSQL + Redis"
else
	echo "   FAIL the embedded store is ${median}x PostgreSQL + Redis's average latency (limit 1x)"
	status=1
fi
for s in "${SETUPS[@]}"; do
	if ((ERRORS[$s] > 0)); then
		echo "   FAIL $s: ${ERRORS[$s]} requests failed"
		status=1
	fi
done
exit $status
