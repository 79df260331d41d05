#!/usr/bin/env bash
# perf-compare.sh — measure airship (PostgreSQL + Redis mode) against the
# performance targets of issue 6 and against the backends themselves:
#
#   1. flat in size: p50 of GET /orders/{id} and POST /orders, and server
#      RSS, at 1,000 products and again at 1,000,000 products;
#   2. close to the backends, in the same run at 32 connections:
#      GET /products/{id} vs redis-benchmark HMGET on the same hash,
#      POST /orders vs pgbench running airship's order-insert transaction,
#      GET /orders/{id} vs pgbench selecting that order's lines;
#   3. server RSS under a 32-connection mixed load;
#   4. the contract's load scenario at 3 users (airship loadtest).
#
# Everything runs on loopback, against its own database (airship_perf,
# created and dropped) and its own Redis prefix (airship-perf:, deleted
# afterwards). Each load step is bounded by DURATION seconds; the whole run
# takes a few minutes, most of it seeding 1,000,000 products.
#
# Needs: go, psql, pgbench, redis-cli, redis-benchmark, wrk (apt-get install
# wrk), curl. Environment (defaults in brackets):
#   PG_ADMIN_URL   [postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable]
#   REDIS_HOST     [127.0.0.1]   REDIS_PORT [6379]
#   PORT           [18080]       airship's listen port (loopback)
#   DURATION       [10]          seconds per load step
#   BIG            [1000000]     products in the large run
#   LOADTEST_HOLD  [30s]         hold of the 3-user load scenario (0 skips it)
#   AIRSHIP_LOG_LEVEL etc.       passed to airship as usual (default: info)
#   KEEP_OUT       [unset]       directory to keep raw outputs in
set -euo pipefail

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
PORT=${PORT:-18080}
DURATION=${DURATION:-10}
BIG=${BIG:-1000000}
SMALL=1000
LOADTEST_HOLD=${LOADTEST_HOLD:-30s}
DB=airship_perf
PREFIX=airship-perf:
BASE=http://127.0.0.1:$PORT
PG_URL=${PG_ADMIN_URL/\/postgres\?//$DB?}

for tool in go psql pgbench redis-cli redis-benchmark wrk curl; do
	command -v "$tool" >/dev/null || { echo "perf-compare: $tool is required (wrk: apt-get install -y wrk)" >&2; exit 2; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/airship-perf.XXXXXX)
OUT=${KEEP_OUT:-$WORK/out}
mkdir -p "$OUT"
PID=

redis() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" "$@"; }
# clean_redis deletes every key under the prefix, 5,000 keys a call.
clean_redis() {
	local cursor=0
	while :; do
		cursor=$(redis --raw EVAL "local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', 5000)
if #r[2] > 0 then redis.call('UNLINK', unpack(r[2])) end
return r[1]" 0 "$cursor" "${PREFIX}*") || return 1
		[[ $cursor != 0 ]] || return 0
	done
}
# count_redis counts the keys matching a pattern.
count_redis() {
	local cursor=0 n=0 out
	while :; do
		out=$(redis --raw EVAL "local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', 5000)
return {r[1], #r[2]}" 0 "$cursor" "$1") || return 1
		cursor=${out%%$'\n'*}
		n=$((n + ${out##*$'\n'}))
		[[ $cursor != 0 ]] || { echo "$n"; return 0; }
	done
}
pg() { psql "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 -qtAc "$1"; }

cleanup() {
	set +e
	if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
		kill "$PID"
		wait "$PID" 2>/dev/null
	fi
	pg "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	clean_redis
	[[ -n ${KEEP_OUT:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export AIRSHIP_POSTGRES_URL=$PG_URL
export AIRSHIP_REDIS_URL=redis://$REDIS_HOST:$REDIS_PORT/0
export AIRSHIP_REDIS_PREFIX=$PREFIX
export AIRSHIP_ADDR=127.0.0.1:$PORT

echo "== perf-compare: $(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "-- building airship"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/airship" .)
AIRSHIP=$WORK/airship

pg "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
pg "CREATE DATABASE $DB" >/dev/null
clean_redis

"$AIRSHIP" serve >"$OUT/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
	curl -fs "$BASE/readyz" >/dev/null 2>&1 && break
	kill -0 "$PID" 2>/dev/null || { echo "airship did not start:" >&2; tail -5 "$OUT/server.log" >&2; exit 1; }
	sleep 0.2
done
curl -fs "$BASE/readyz" >/dev/null

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$PID/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# The product and order every measurement uses.
curl -fs -XPOST "$BASE/products" -H 'Content-Type: application/json' \
	-d '{"id": "perf-product", "title": "Perf", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 2000000000}' >/dev/null
ORDER_ID=$(curl -fs -XPOST "$BASE/orders" -H 'Content-Type: application/json' \
	-d '{"order_details": [{"product_id": "perf-product", "price": "100000.99", "quantity": 1}]}' | tr -dc 0-9)
KEY="${PREFIX}product:{perf-product}"

cat >"$WORK/post_order.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"order_details": [{"product_id": "perf-product", "price": "100000.99", "quantity": 1}]}'
EOF
cat >"$WORK/mixed.lua" <<EOF
-- GET product, GET order, POST order, GET /orders, in turn.
local reqs, i = {}, 0
function init(args)
	local body = '{"order_details": [{"product_id": "perf-product", "price": "100000.99", "quantity": 1}]}'
	reqs[1] = wrk.format("GET", "/products/perf-product")
	reqs[2] = wrk.format("GET", "/orders/$ORDER_ID")
	reqs[3] = wrk.format("POST", "/orders", {["Content-Type"] = "application/json"}, body)
	reqs[4] = wrk.format("GET", "/orders")
end
function request()
	i = i % #reqs + 1
	return reqs[i]
end
EOF
# pgbench runs exactly the statements airship runs (orders/pgstore.go).
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
# flat NAME: p50 of GET /orders/{id} and POST /orders at 3 connections, then RSS.
flat() {
	wrkrun "get_order_$1" 3 "$BASE/orders/$ORDER_ID"
	wrkrun "post_order_$1" 3 -s "$WORK/post_order.lua" "$BASE/orders"
	eval "GET_P50_$1=$(wrk_p50 "get_order_$1")"
	eval "POST_P50_$1=$(wrk_p50 "post_order_$1")"
	eval "RSS_$1=$(rss_kib)"
}

echo "-- seeding $SMALL products"
"$AIRSHIP" seed --products $SMALL >"$OUT/seed_small.log" 2>&1
echo "-- flat in size: $SMALL products (load average $(cut -d' ' -f1 /proc/loadavg))"
flat small

echo "-- seeding $BIG products"
"$AIRSHIP" seed --products "$BIG" --workers 2 >"$OUT/seed_big.log" 2>&1
echo "   redis keys under the prefix: $(count_redis "${PREFIX}product:*")"
echo "-- flat in size: $BIG products (load average $(cut -d' ' -f1 /proc/loadavg))"
flat big

echo "-- 32 connections: backends and airship (load average $(cut -d' ' -f1 /proc/loadavg))"
redis_n=$((DURATION * 60000))
timeout $((DURATION * 4 + 30)) redis-benchmark -h "$REDIS_HOST" -p "$REDIS_PORT" -c 32 -n "$redis_n" -q \
	HMGET "$KEY" title passenger_capacity maximum_speed in_stock >"$OUT/redis.txt" 2>&1
REDIS_RPS=$(tr '\r' '\n' <"$OUT/redis.txt" | awk '/requests per second/ {for (i = 1; i <= NF; i++) if ($i == "requests") v = $(i - 1)} END {print v}')
wrkrun get_product_32 32 "$BASE/products/perf-product"
timeout $((DURATION + 30)) pgbench "$PG_URL" -n -c 32 -j 2 -T "$DURATION" -M prepared -f "$WORK/pg_create.sql" >"$OUT/create.pgbench" 2>&1
wrkrun post_order_32 32 -s "$WORK/post_order.lua" "$BASE/orders"
timeout $((DURATION + 30)) pgbench "$PG_URL" -n -c 32 -j 2 -T "$DURATION" -M prepared -f "$WORK/pg_get.sql" >"$OUT/get.pgbench" 2>&1
wrkrun get_order_32 32 "$BASE/orders/$ORDER_ID"

echo "-- RSS under a 32-connection mixed load"
wrkrun mixed_32 32 -s "$WORK/mixed.lua" "$BASE"
RSS_MIXED=$(hwm_kib)

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
check "GET /products/{id} / redis-benchmark HMGET" "$(ratio "$(wrk_rps get_product_32)" "$REDIS_RPS")" ">=" 25 "%" "$(wrk_rps get_product_32) / $REDIS_RPS"
check "POST /orders / pgbench insert transaction" "$(ratio "$(wrk_rps post_order_32)" "$(pgb_tps create)")" ">=" 35 "%" "$(wrk_rps post_order_32) / $(pgb_tps create)"
check "GET /orders/{id} / pgbench select lines" "$(ratio "$(wrk_rps get_order_32)" "$(pgb_tps get)")" ">=" 25 "%" "$(wrk_rps get_order_32) / $(pgb_tps get)"
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
