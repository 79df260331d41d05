#!/usr/bin/env bash
# perf-compare.sh — measure airship (PostgreSQL + Redis mode) against the
# performance targets (docs/performance.md) and against the backends themselves:
#
#   1. flat in size: p50 of GET /orders/{id} and POST /orders, and server
#      RSS, at 1,000 products and at 1,000,000 products: two servers on the
#      same database, one on a Redis keyspace (logical database) of 1,000
#      products, one on a keyspace of 1,000,000, measured in alternation so
#      that the machine's other work hits both alike;
#   2. close to the backends, in the same run at 32 connections:
#      GET /products/{id} vs redis-benchmark HMGET on the same hash,
#      POST /orders vs pgbench running airship's order-insert transaction,
#      GET /orders/{id} vs pgbench selecting that order's lines;
#   3. server RSS under a 32-connection mixed load;
#   4. the contract's load scenario at 3 users (airship loadtest).
#
# Everything runs on loopback, against its own database (airship_perf,
# created and dropped) and its own Redis prefix (airship-perf:, in Redis
# databases REDIS_DB_SMALL and REDIS_DB_BIG, deleted afterwards). Each load step is bounded by DURATION seconds; the whole run
# takes a few minutes, most of it seeding 1,000,000 products.
#
# Needs: go, psql, pgbench, redis-cli, redis-benchmark, wrk (apt-get install
# wrk), curl. Environment (defaults in brackets):
#   PG_ADMIN_URL   [postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable]
#   REDIS_HOST     [127.0.0.1]   REDIS_PORT [6379]
#   REDIS_DB_SMALL [2]           REDIS_DB_BIG [3]   Redis logical databases used
#   PORT           [18080]       listen port of the large server (PORT+1: small)
#   DURATION       [5]           seconds per load step
#   BIG            [1000000]     products in the large run
#   LOADTEST_HOLD  [30s]         hold of the 3-user load scenario (0 skips it)
#   ROUNDS         [3]           rounds of each 3-connection measurement (best p50 counts)
#   AIRSHIP_LOG_LEVEL etc.       passed to airship as usual (default: info)
#   KEEP_OUT       [unset]       directory to keep raw outputs in
set -euo pipefail

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
REDIS_DB_SMALL=${REDIS_DB_SMALL:-2}
REDIS_DB_BIG=${REDIS_DB_BIG:-3}
PORT=${PORT:-18080}
DURATION=${DURATION:-5}
BIG=${BIG:-1000000}
SMALL=1000
LOADTEST_HOLD=${LOADTEST_HOLD:-30s}
DB=airship_perf
PREFIX=airship-perf:
BASE=http://127.0.0.1:$PORT
BASE_SMALL=http://127.0.0.1:$((PORT + 1))
PG_URL=${PG_ADMIN_URL/\/postgres\?//$DB?}

for tool in go psql pgbench redis-cli redis-benchmark wrk curl; do
	command -v "$tool" >/dev/null || { echo "perf-compare: $tool is required (wrk: apt-get install -y wrk)" >&2; exit 2; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/airship-perf.XXXXXX)
OUT=${KEEP_OUT:-$WORK/out}
mkdir -p "$OUT"
PID= PID_SMALL=

redis() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" "$@"; }
# clean_redis DB deletes every key under the prefix (scripts/clean-redis.sh).
clean_redis() { "$ROOT/scripts/clean-redis.sh" "$PREFIX" -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$1"; }
# count_redis DB PATTERN counts the keys matching a pattern.
count_redis() {
	local cursor=0 n=0 out
	while :; do
		out=$(redis -n "$1" --raw EVAL "local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', 5000)
return {r[1], #r[2]}" 0 "$cursor" "$2") || return 1
		cursor=${out%%$'\n'*}
		n=$((n + ${out##*$'\n'}))
		[[ $cursor != 0 ]] || { echo "$n"; return 0; }
	done
}
pg() { psql "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 -qtAc "$1"; }

# stop PID: SIGTERM, then SIGKILL after 20 s.
stop() {
	[[ -n $1 ]] && kill -0 "$1" 2>/dev/null || return 0
	kill "$1"
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
	kill -0 "$1" 2>/dev/null && kill -9 "$1"
	wait "$1" 2>/dev/null
}
cleanup() {
	set +e
	stop "$PID"
	stop "$PID_SMALL"
	pg "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	clean_redis "$REDIS_DB_SMALL"
	clean_redis "$REDIS_DB_BIG"
	[[ -n ${KEEP_OUT:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export AIRSHIP_POSTGRES_URL=$PG_URL
export AIRSHIP_REDIS_PREFIX=$PREFIX
REDIS_SMALL=redis://$REDIS_HOST:$REDIS_PORT/$REDIS_DB_SMALL
REDIS_BIG=redis://$REDIS_HOST:$REDIS_PORT/$REDIS_DB_BIG

echo "== perf-compare: $(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "-- building airship"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/airship" .)
AIRSHIP=$WORK/airship

pg "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
pg "CREATE DATABASE $DB" >/dev/null
clean_redis "$REDIS_DB_SMALL"
clean_redis "$REDIS_DB_BIG"

# start NAME PORT REDIS_URL: starts airship, waits until it is ready, and
# leaves its process id in LAST_PID.
start() {
	# Metrics stay on, as in production, each server on a port of its own.
	AIRSHIP_REDIS_URL=$3 AIRSHIP_ADDR=127.0.0.1:$2 AIRSHIP_METRICS_ADDR=${AIRSHIP_METRICS_ADDR:-127.0.0.1:0} \
		"$AIRSHIP" serve >"$OUT/server_$1.log" 2>&1 &
	LAST_PID=$!
	for _ in $(seq 150); do
		curl -fs "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0
		kill -0 "$LAST_PID" 2>/dev/null || break
		sleep 0.2
	done
	echo "airship ($1) did not start:" >&2
	tail -5 "$OUT/server_$1.log" >&2
	exit 1
}
start big "$PORT" "$REDIS_BIG"
PID=$LAST_PID
start small "$((PORT + 1))" "$REDIS_SMALL"
PID_SMALL=$LAST_PID

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# The product and order every measurement uses (the order is in the one
# database, its product in both keyspaces).
for base in "$BASE" "$BASE_SMALL"; do
	curl -fs -XPOST "$base/products" -H 'Content-Type: application/json' \
		-d '{"id": "perf-product", "title": "Perf", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 2000000000}' >/dev/null
done
ORDER_ID=$(curl -fs -XPOST "$BASE/orders" -H 'Content-Type: application/json' \
	-d '{"order_details": [{"product_id": "perf-product", "price": "100000.99", "quantity": 1}]}' | tr -dc 0-9)
KEY="${PREFIX}product:{perf-product}"

cat >"$WORK/post_order.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"order_details": [{"product_id": "perf-product", "price": "100000.99", "quantity": 1}]}'
EOF
# pgbench runs exactly the statements airship runs (orders/sqlstore/postgres.go).
cat >"$WORK/pg_create.sql" <<'EOF'
WITH o AS (
    INSERT INTO orders DEFAULT VALUES RETURNING id
), claim AS (
    INSERT INTO stock_reservations (id, order_id) SELECT gen_random_uuid()::text, id FROM o
), d AS (
    INSERT INTO order_details (order_id, product_id, price, quantity)
    SELECT o.id, l.product_id, l.price, l.quantity
    FROM o, unnest('{perf-product}'::text[], '{100000.99}'::numeric[], '{1}'::int[]) WITH ORDINALITY AS l(product_id, price, quantity, n)
    ORDER BY l.n
    RETURNING id
)
SELECT (SELECT id FROM o), array_agg(d.id ORDER BY d.id) FROM d;
EOF
cat >"$WORK/pg_get.sql" <<EOF
SELECT o.id AS order_id, d.id, d.product_id, d.price, d.quantity
FROM orders o JOIN order_details d ON d.order_id = o.id
WHERE o.id = $ORDER_ID
ORDER BY d.id;
EOF

# wrkrun NAME CONNS [wrk args...]: runs wrk for DURATION s, keeps its output.
wrkrun() {
	local name=$1 conns=$2
	shift 2
	timeout $((DURATION + 30)) wrk -t 2 -c "$conns" -d "${DURATION}s" --latency "$@" >"$OUT/$name.wrk" 2>&1
	if grep -q 'Non-2xx\|Socket errors' "$OUT/$name.wrk"; then
		echo "   $name: errors: $(grep 'Non-2xx\|Socket errors' "$OUT/$name.wrk" | tr -s ' ')" >&2
		ERRORS=1
	fi
}
# wrk's p50 in milliseconds, and requests per second.
wrk_p50() { awk '/Latency Distribution/ {f = 1} f && $1 == "50%" {v = $2; u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u); print (u == "us" ? v / 1000 : u == "s" ? v * 1000 : v); exit}' "$OUT/$1.wrk"; }
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' "$OUT/$1.wrk"; }
pgb_tps() { awk '/^tps = / {print $3}' "$OUT/$1.pgbench"; }

ERRORS=0
ROUNDS=${ROUNDS:-3}
best_low() { printf '%s\n' "$@" | sort -g | head -1; }
best() { printf '%s\n' "$@" | sort -g | tail -1; }

echo "-- seeding $SMALL products (Redis db $REDIS_DB_SMALL) and $BIG products (Redis db $REDIS_DB_BIG)"
AIRSHIP_REDIS_URL=$REDIS_SMALL "$AIRSHIP" seed --products "$SMALL" >"$OUT/seed_small.log" 2>&1
AIRSHIP_REDIS_URL=$REDIS_BIG "$AIRSHIP" seed --products "$BIG" --workers 2 >"$OUT/seed_big.log" 2>&1
echo "   products: $(count_redis "$REDIS_DB_SMALL" "${PREFIX}product:*") and $(count_redis "$REDIS_DB_BIG" "${PREFIX}product:*")"

# Flat in size: p50 of GET /orders/{id} and POST /orders at 3 connections
# on each server in turn, ROUNDS rounds; the best p50 of each counts (the
# machine's other work only ever adds latency). Then each server's RSS.
echo "-- flat in size: $SMALL vs $BIG products, $ROUNDS rounds, alternating (load average $(cut -d' ' -f1 /proc/loadavg))"
declare -A P50
for r in $(seq "$ROUNDS"); do
	for size in small big; do
		base=$BASE
		[[ $size == small ]] && base=$BASE_SMALL
		wrkrun "get_order_${size}_$r" 3 "$base/orders/$ORDER_ID"
		P50[get_$size]+=" $(wrk_p50 "get_order_${size}_$r")"
		wrkrun "post_order_${size}_$r" 3 -s "$WORK/post_order.lua" "$base/orders"
		P50[post_$size]+=" $(wrk_p50 "post_order_${size}_$r")"
	done
done
for k in get_small get_big post_small post_big; do
	echo "   p50 $k:${P50[$k]} ms"
done
# shellcheck disable=SC2086 # word splitting intended
{
	GET_P50_small=$(best_low ${P50[get_small]})
	GET_P50_big=$(best_low ${P50[get_big]})
	POST_P50_small=$(best_low ${P50[post_small]})
	POST_P50_big=$(best_low ${P50[post_big]})
}
RSS_small=$(rss_kib "$PID_SMALL")
RSS_big=$(rss_kib "$PID")
stop "$PID_SMALL"
PID_SMALL=

echo "-- 32 connections: backends and airship, $ROUNDS rounds each, interleaved (load average $(cut -d' ' -f1 /proc/loadavg))"
# Each round runs the backend's own benchmark, then airship on the same
# operation; the best rate of each counts (other work on the machine only
# ever takes throughput away).
# A 3 s mixed warm-up first fills the server's pools (pgbench's rate, too,
# leaves out connecting).
timeout 30 wrk -t 2 -c 32 -d 3s -s "$ROOT/scripts/mixed.lua" "$BASE" -- "$ORDER_ID" >/dev/null 2>&1 || true
redis_rps=() pg_create_tps=() pg_get_tps=() get_product_rps=() post_order_rps=() get_order_rps=()
for r in $(seq "$ROUNDS"); do
	# redis-benchmark has no time limit: it runs for DURATION seconds and
	# its last progress line gives the overall rate.
	timeout -s INT "$DURATION" redis-benchmark -h "$REDIS_HOST" -p "$REDIS_PORT" --dbnum "$REDIS_DB_BIG" -c 32 -n 1000000000 -q \
		HMGET "$KEY" title passenger_capacity maximum_speed in_stock >"$OUT/redis_$r.txt" 2>&1 || true
	redis_rps+=("$(tr '\r' '\n' <"$OUT/redis_$r.txt" | sed -n 's/.*rps=[0-9.]* (overall: \([0-9.]*\)).*/\1/p' | tail -1)")
	wrkrun "get_product_32_$r" 32 "$BASE/products/perf-product"
	get_product_rps+=("$(wrk_rps "get_product_32_$r")")

	timeout $((DURATION + 30)) pgbench "$PG_URL" -n -c 32 -j 2 -T "$DURATION" -M prepared -f "$WORK/pg_create.sql" >"$OUT/create_$r.pgbench" 2>&1
	pg_create_tps+=("$(pgb_tps "create_$r")")
	wrkrun "post_order_32_$r" 32 -s "$WORK/post_order.lua" "$BASE/orders"
	post_order_rps+=("$(wrk_rps "post_order_32_$r")")

	timeout $((DURATION + 30)) pgbench "$PG_URL" -n -c 32 -j 2 -T "$DURATION" -M prepared -f "$WORK/pg_get.sql" >"$OUT/get_$r.pgbench" 2>&1
	pg_get_tps+=("$(pgb_tps "get_$r")")
	wrkrun "get_order_32_$r" 32 "$BASE/orders/$ORDER_ID"
	get_order_rps+=("$(wrk_rps "get_order_32_$r")")
done
printf '   %-34s %s\n' "redis-benchmark HMGET:" "${redis_rps[*]}" "GET /products/{id}:" "${get_product_rps[*]}" \
	"pgbench insert transaction:" "${pg_create_tps[*]}" "POST /orders:" "${post_order_rps[*]}" \
	"pgbench select lines:" "${pg_get_tps[*]}" "GET /orders/{id}:" "${get_order_rps[*]}"
REDIS_RPS=$(best "${redis_rps[@]}")
GET_PRODUCT_RPS=$(best "${get_product_rps[@]}")
PG_CREATE_TPS=$(best "${pg_create_tps[@]}")
POST_ORDER_RPS=$(best "${post_order_rps[@]}")
PG_GET_TPS=$(best "${pg_get_tps[@]}")
GET_ORDER_RPS=$(best "${get_order_rps[@]}")

echo "-- RSS under a 32-connection mixed load"
wrkrun mixed_32 32 -s "$ROOT/scripts/mixed.lua" "$BASE" -- "$ORDER_ID"
RSS_MIXED=$(hwm_kib "$PID")

LT_LINE=
if [[ $LOADTEST_HOLD != 0 ]]; then
	echo "-- the contract's load scenario, 3 users, hold $LOADTEST_HOLD (load average $(cut -d' ' -f1 /proc/loadavg))"
	"$AIRSHIP" loadtest --url "$BASE" --users 3 --ramp-up 2s --hold "$LOADTEST_HOLD" --out "$OUT/loadtest" \
		>"$OUT/loadtest.txt" 2>"$OUT/loadtest.err" || true
	LT_LINE=$(awk '$1 == "total"' "$OUT/loadtest.txt")
fi

# check NAME VALUE OP LIMIT UNIT DETAIL
FAILED=0
check() {
	local ok
	ok=$(awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN {print (op == "<=" ? v <= l : v >= l) ? "PASS" : "FAIL"}')
	[[ $ok == PASS ]] || FAILED=1
	printf '  %-46s %12s %-4s %2s %-8s %s  %s\n' "$1" "$2" "$5" "$3" "$4" "$ok" "$6"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", 100 * a / b}'; }
growth() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.1f", 100 * (b - a) / a}'; }

echo
echo "== results (load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "  flat in size, 3 connections, p50 ($SMALL -> $BIG products):"
check "GET /orders/{id} p50 growth" "$(growth "$GET_P50_small" "$GET_P50_big")" "<=" 15 "%" "${GET_P50_small} ms -> ${GET_P50_big} ms"
check "POST /orders p50 growth" "$(growth "$POST_P50_small" "$POST_P50_big")" "<=" 15 "%" "${POST_P50_small} ms -> ${POST_P50_big} ms"
check "server RSS growth" "$(growth "$RSS_small" "$RSS_big")" "<=" 20 "%" "$(mib "$RSS_small") MiB -> $(mib "$RSS_big") MiB"
echo "  close to the backends, 32 connections, requests/s:"
check "GET /products/{id} / redis-benchmark HMGET" "$(ratio "$GET_PRODUCT_RPS" "$REDIS_RPS")" ">=" 25 "%" "$GET_PRODUCT_RPS / $REDIS_RPS"
check "POST /orders / pgbench insert transaction" "$(ratio "$POST_ORDER_RPS" "$PG_CREATE_TPS")" ">=" 35 "%" "$POST_ORDER_RPS / $PG_CREATE_TPS"
check "GET /orders/{id} / pgbench select lines" "$(ratio "$GET_ORDER_RPS" "$PG_GET_TPS")" ">=" 25 "%" "$GET_ORDER_RPS / $PG_GET_TPS"
echo "  memory:"
check "server peak RSS, 32-connection mixed load" "$(mib "$RSS_MIXED")" "<=" 100 "MiB" "$(wrk_rps mixed_32) req/s mixed"
if [[ -n $LT_LINE ]]; then
	echo "  load scenario, 3 users, $BIG products (loadtest total: requests errors rps avg p50 p90 p95 p99 max):"
	echo "    $LT_LINE"
	read -r _ reqs errs _ avg _ p90 _ <<<"$LT_LINE"
	check "average" "$avg" "<=" 2 "ms" "$reqs requests"
	check "p90" "$p90" "<=" 4 "ms" ""
	check "errors" "$errs" "<=" 0 "" ""
fi
if [[ $ERRORS != 0 ]]; then
	echo "  some wrk runs saw errors (see above)"
	FAILED=1
fi
[[ -z ${KEEP_OUT:-} ]] || echo "raw outputs kept in $OUT"
exit $FAILED
