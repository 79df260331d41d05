#!/usr/bin/env bash
# perf-floor.sh — airship against the floor: the least a Go server does for
# the same requests on the same backends (scripts/perffloor: net/http,
# go-redis and lib/pq running airship's own statements and Lua scripts, in
# the same round trips, writing the same bodies byte for byte). The gap
# between the two is airship's own per-request work: routing, middleware,
# request ids, logging, metrics, timeouts, validation, the stores' layers.
#
# Both serve one PostgreSQL database migrated by airship and one Redis
# keyspace of products created through airship, over each transport of
# TRANSPORTS:
#
#   tcp   PostgreSQL and Redis over loopback TCP;
#   unix  both over their Unix sockets: PostgreSQL's in PG_SOCKET_DIR,
#         Redis's at REDIS_SOCKET. When the Redis server has no socket,
#         the script starts its own redis-server on a socket in its
#         temporary directory (no TCP port, no persistence), and airship
#         creates the product there too.
#
# All servers run all the time, each on its own free port; only the one
# measured gets load. First a check: the floor's answers to GET
# /products/{id}, GET /orders/{id} and POST /orders (its order read back
# through airship) must equal airship's, or the script stops. Then, round
# after round, for each transport and each route (GET /products/{id}, GET
# /orders/{id}, POST /orders), airship and the floor one after the other
# (airship first in odd rounds, the floor first in even ones):
#
#   1. wrk with CONNS connections for DURATION s: requests per second, and
#      the server's CPU time per request (from /proc/PID/stat);
#   2. wrk with LAT_CONNS connections (3 users without think time; the
#      floor serves only these three routes, so this stands for the load
#      scenario at 3 users) for DURATION s: average and p90 latency.
#
# Each round prints its figures with the load average. The summary gives,
# for each transport and route, the median of the rounds' ratios airship /
# floor (each ratio between two runs taken one after the other, under
# about the same load from the rest of the machine), the best run of
# each and the median CPU time per request; it checks the throughput
# ratios against TARGET_GET (both GET routes) and TARGET_POST, and exits 1
# if one is missed or a request failed.
#
# Everything runs on loopback, against its own database (airship_floor_PID,
# created and dropped) and its own Redis prefix (airship-floor-PID:, deleted
# afterwards); the temporary directory is removed at the end.
#
# Needs: go, psql, redis-cli, redis-server (for the unix runs when Redis
# has no socket), wrk (apt-get install -y wrk), curl. Environment
# (defaults in brackets):
#   PG_ADMIN_URL   [postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable]
#   PG_SOCKET_DIR  [/var/run/postgresql]  PG_USER [postgres]  PG_PORT [5432]
#                  PostgreSQL over its socket (the unix runs)
#   REDIS_HOST     [127.0.0.1]  REDIS_PORT [6379]  REDIS_DB [5]
#   REDIS_SOCKET   [the server's unixsocket setting; empty: a redis-server of the script's own]
#   TRANSPORTS     [tcp unix]   which transports to measure
#   ROUTES         [get_product get_order post_order]  which routes to measure
#   CONNS          [32]         connections of the throughput runs
#   LAT_CONNS      [3]          connections of the latency runs
#   DURATION       [5]          seconds of each run
#   ROUNDS         [5]          rounds
#   WARMUP         [2]          seconds of warm-up per server and route
#   PORT           [unset]      first of the listen ports (PORT..PORT+7);
#                               unset: each from scripts/free-port.sh
#   TARGET_GET     [0.92]       least airship / floor throughput of the GETs
#   TARGET_POST    [0.95]       the same for POST /orders
#   PROFILE_DIR    [unset]      when set, a CPU profile of airship and of the
#                               floor during each throughput run of round 1
#                               (go tool pprof -top FILE)
#   KEEP_OUT       [unset]      directory to keep raw outputs in
#   AIRSHIP_LOG_LEVEL etc.      passed to airship as usual; events, API keys
#                               and tracing are off (the floor has none)
set -euo pipefail

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
PG_SOCKET_DIR=${PG_SOCKET_DIR:-/var/run/postgresql}
PG_USER=${PG_USER:-postgres}
PG_PORT=${PG_PORT:-5432}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
REDIS_DB=${REDIS_DB:-5}
TRANSPORTS=${TRANSPORTS:-tcp unix}
ROUTES=${ROUTES:-get_product get_order post_order}
CONNS=${CONNS:-32}
LAT_CONNS=${LAT_CONNS:-3}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-2}
TARGET_GET=${TARGET_GET:-0.92}
TARGET_POST=${TARGET_POST:-0.95}
DB=airship_floor_$$
PREFIX=airship-floor-$$:
PG_URL=${PG_ADMIN_URL/\/postgres\?//$DB?}

for tool in go psql redis-cli wrk curl; do
	command -v "$tool" >/dev/null || { echo "perf-floor: $tool is required (wrk: apt-get install -y wrk)" >&2; exit 2; }
done
for t in $TRANSPORTS; do
	[[ $t == tcp || $t == unix ]] || { echo "perf-floor: TRANSPORTS: $t is neither tcp nor unix" >&2; exit 2; }
done
for route in $ROUTES; do
	[[ $route == get_product || $route == get_order || $route == post_order ]] ||
		{ echo "perf-floor: ROUTES: $route is not get_product, get_order or post_order" >&2; exit 2; }
done
# The floor writes no events and checks no API key; airship must not either.
unset AIRSHIP_AMQP_URL AIRSHIP_API_KEYS OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/airship-floor.XXXXXX)
OUT=${KEEP_OUT:-$WORK/out}
mkdir -p "$OUT"
[[ -z ${PROFILE_DIR:-} ]] || mkdir -p "$PROFILE_DIR"
PIDS=()
OWN_REDIS_PID=

redis() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$REDIS_DB" "$@"; }
# clean_redis ARGS...: deletes every key under the prefix on the Redis
# that redis-cli ARGS reaches (scripts/clean-redis.sh).
clean_redis() { "$ROOT/scripts/clean-redis.sh" "$PREFIX" "$@"; }
pg() { psql "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 -qtAc "$1"; }
cleanup() {
	set +e
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	pg "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	clean_redis -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$REDIS_DB"
	if [[ -n $OWN_REDIS_PID ]]; then
		kill "$OWN_REDIS_PID" 2>/dev/null
		wait "$OWN_REDIS_PID" 2>/dev/null
	elif [[ -n ${REDIS_SOCKET:-} ]]; then
		clean_redis -s "$REDIS_SOCKET" -n "$REDIS_DB"
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "== perf-floor: $(date -u +%FT%TZ), $(nproc) CPUs, load average $(load)"
echo "-- building airship and the floor (scripts/perffloor)"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/airship" . && CGO_ENABLED=0 go build -trimpath -o "$WORK/perffloor" ./scripts/perffloor)

pg "CREATE DATABASE $DB" >/dev/null

# The backends of each transport: PostgreSQL and Redis URLs, the same for
# airship and the floor.
declare -A PGURL REDISURL
PGURL[tcp]=$PG_URL
REDISURL[tcp]=redis://$REDIS_HOST:$REDIS_PORT/$REDIS_DB
if [[ " $TRANSPORTS " == *" unix "* ]]; then
	[[ -S $PG_SOCKET_DIR/.s.PGSQL.$PG_PORT ]] || { echo "perf-floor: no PostgreSQL socket $PG_SOCKET_DIR/.s.PGSQL.$PG_PORT (PG_SOCKET_DIR, PG_PORT)" >&2; exit 2; }
	PGURL[unix]="host=$PG_SOCKET_DIR port=$PG_PORT user=$PG_USER dbname=$DB sslmode=disable"
	if [[ -z ${REDIS_SOCKET:-} ]]; then
		REDIS_SOCKET=$(redis --raw CONFIG GET unixsocket 2>/dev/null | sed -n 2p) || REDIS_SOCKET=
	fi
	if [[ -n $REDIS_SOCKET ]]; then
		echo "-- unix: PostgreSQL at $PG_SOCKET_DIR, Redis at $REDIS_SOCKET (the same servers as tcp)"
	else
		command -v redis-server >/dev/null || { echo "perf-floor: Redis at $REDIS_HOST:$REDIS_PORT has no Unix socket and redis-server is not installed: set REDIS_SOCKET or TRANSPORTS=tcp" >&2; exit 2; }
		REDIS_SOCKET=$WORK/redis.sock
		redis-server --port 0 --unixsocket "$REDIS_SOCKET" --unixsocketperm 700 --save "" --appendonly no \
			--dir "$WORK" >"$OUT/redis-server.log" 2>&1 &
		OWN_REDIS_PID=$!
		for _ in $(seq 50); do redis-cli -s "$REDIS_SOCKET" ping >/dev/null 2>&1 && break; sleep 0.1; done
		redis-cli -s "$REDIS_SOCKET" ping >/dev/null || { echo "perf-floor: redis-server did not start:" >&2; cat "$OUT/redis-server.log" >&2; exit 1; }
		echo "-- unix: PostgreSQL at $PG_SOCKET_DIR; Redis at $REDIS_HOST:$REDIS_PORT has no Unix socket, so a redis-server $(redis-server --version | grep -o 'v=[0-9.]*' | cut -c3-) of this run's own serves $REDIS_SOCKET (no persistence)"
	fi
	REDISURL[unix]=unix://$REDIS_SOCKET?db=$REDIS_DB
fi

NEXT_PORT=${PORT:-}
USED_PORTS=" "
# pick_port: sets PICKED to the next listen port: PORT, PORT+1, ... or a
# free one that this run has not picked yet.
pick_port() {
	if [[ -n $NEXT_PORT ]]; then
		PICKED=$NEXT_PORT
		NEXT_PORT=$((NEXT_PORT + 1))
		return
	fi
	PICKED=$("$ROOT/scripts/free-port.sh")
	while [[ $USED_PORTS == *" $PICKED "* ]]; do PICKED=$("$ROOT/scripts/free-port.sh"); done
	USED_PORTS+="$PICKED "
}
# started NAME PID LINE URL: waits until the server's log has LINE (it
# listens on its own port, not another process on the same one) and URL
# answers HTTP.
started() {
	for _ in $(seq 150); do
		if grep -qF "$3" "$OUT/server_$1.log" && [[ $(curl -s -o /dev/null -w '%{http_code}' "$4" 2>/dev/null) != 000 ]]; then
			return 0
		fi
		kill -0 "$2" 2>/dev/null || break
		sleep 0.2
	done
	echo "perf-floor: $1 did not start:" >&2
	tail -5 "$OUT/server_$1.log" >&2
	exit 1
}
declare -A URL DEBUG PID
# serve_airship T: airship on transport T's backends, metrics on as in
# production, pprof on a port of its own.
serve_airship() {
	local t=$1 name=airship_$1 p d
	pick_port
	p=$PICKED
	pick_port
	d=$PICKED
	env AIRSHIP_ADDR="127.0.0.1:$p" AIRSHIP_METRICS_ADDR=127.0.0.1:0 AIRSHIP_DEBUG_ADDR="127.0.0.1:$d" \
		AIRSHIP_POSTGRES_URL="${PGURL[$t]}" AIRSHIP_REDIS_URL="${REDISURL[$t]}" AIRSHIP_REDIS_PREFIX="$PREFIX" \
		"$WORK/airship" serve >"$OUT/server_$name.log" 2>&1 &
	PIDS+=($!)
	PID[$name]=$! URL[$name]=http://127.0.0.1:$p DEBUG[$name]=http://127.0.0.1:$d
	started "$name" "${PID[$name]}" "\"airship listening\",\"addr\":\"127.0.0.1:$p\"" "${URL[$name]}/readyz"
}
# serve_floor T: the floor on the same backends, with airship's settings.
serve_floor() {
	local t=$1 name=floor_$1 p d
	pick_port
	p=$PICKED
	pick_port
	d=$PICKED
	"$WORK/perffloor" -addr "127.0.0.1:$p" -debug-addr "127.0.0.1:$d" \
		-postgres "${PGURL[$t]}" -redis "${REDISURL[$t]}" -redis-prefix "$PREFIX" \
		-postgres-max-conns "${AIRSHIP_POSTGRES_MAX_CONNS:-16}" -redis-pool-size "${AIRSHIP_REDIS_POOL_SIZE:-32}" \
		-hold "${AIRSHIP_RESERVATION_TIMEOUT:-1m}" \
		-image-root "${AIRSHIP_PRODUCT_IMAGE_ROOT:-http://www.example.com/airship/images}" >"$OUT/server_$name.log" 2>&1 &
	PIDS+=($!)
	PID[$name]=$! URL[$name]=http://127.0.0.1:$p DEBUG[$name]=http://127.0.0.1:$d
	started "$name" "${PID[$name]}" "perffloor: serving on 127.0.0.1:$p" "${URL[$name]}/"
}

ORDER_BODY='{"order_details": [{"product_id": "perf-product", "price": "100000.99", "quantity": 1}]}'
cat >"$WORK/post_order.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$ORDER_BODY'
EOF
# post BASE: places an order; prints its id.
post() { curl -fsS -XPOST "$1/orders" -H 'Content-Type: application/json' -d "$ORDER_BODY" | tr -dc 0-9; }
# get URL FILE: the body of a GET into FILE, status and Content-Type first.
get() { curl -sS -o "$2.body" -w '%{http_code} %{content_type}\n' "$1" >"$2" && cat "$2.body" >>"$2" && rm "$2.body"; }

declare -A ORDER
FAILED=0
for t in $TRANSPORTS; do
	serve_airship "$t"
	a=${URL[airship_$t]}
	# The product every request uses: created through airship (on a Redis
	# another transport shares it is there already: 409), then read.
	curl -s -o /dev/null -XPOST "$a/products" -H 'Content-Type: application/json' \
		-d '{"id": "perf-product", "title": "Perf", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 2000000000}'
	curl -fs -o /dev/null "$a/products/perf-product" || { echo "perf-floor: airship ($t) has no perf-product" >&2; exit 1; }
	ORDER[$t]=$(post "$a")
	serve_floor "$t"
	f=${URL[floor_$t]}

	# The check: the same answers, byte for byte, and an order placed
	# through the floor reads back through airship as airship's own does
	# (but for its ids).
	by_floor=$(post "$f")
	[[ -n $by_floor ]] || { echo "perf-floor: POST /orders through the floor ($t) failed" >&2; exit 1; }
	mismatch=0
	for path in /products/perf-product "/orders/${ORDER[$t]}" "/orders/$by_floor" /products/no-such-product /orders/999999999; do
		get "$a$path" "$OUT/check_${t}_airship"
		get "$f$path" "$OUT/check_${t}_floor"
		if ! cmp -s "$OUT/check_${t}_airship" "$OUT/check_${t}_floor"; then
			echo "   $t: GET $path differs (airship <, floor >):"
			diff "$OUT/check_${t}_airship" "$OUT/check_${t}_floor" | sed 's/^/     /'
			mismatch=1
		fi
	done
	get "$a/orders/${ORDER[$t]}" "$OUT/check_${t}_by_airship"
	get "$a/orders/$by_floor" "$OUT/check_${t}_by_floor"
	if ! diff <(sed 's/"id":[0-9]*/"id":N/g' "$OUT/check_${t}_by_airship") <(sed 's/"id":[0-9]*/"id":N/g' "$OUT/check_${t}_by_floor") >/dev/null; then
		echo "   $t: an order placed through the floor reads back through airship unlike airship's own:"
		cat "$OUT/check_${t}_by_airship" "$OUT/check_${t}_by_floor" | sed 's/^/     /'
		mismatch=1
	fi
	[[ $mismatch == 0 ]] || { echo "perf-floor: the floor does not answer as airship does over $t; fix scripts/perffloor first" >&2; exit 1; }
	echo "-- $t: airship ${URL[airship_$t]}, floor ${URL[floor_$t]}: the same answers to GET /products/{id}, GET /orders/{id} (order ${ORDER[$t]}), POST /orders"
done

read -r -a ROUTES <<<"$ROUTES"
declare -A ROUTE_NAME=([get_product]="GET /products/{id}" [get_order]="GET /orders/{id}" [post_order]="POST /orders")
# route_args SERVER T ROUTE: wrk's arguments for a route of server SERVER
# (airship or floor) on transport T.
route_args() {
	local base=${URL[${1}_$2]}
	case $3 in
	get_product) echo "$base/products/perf-product" ;;
	get_order) echo "$base/orders/${ORDER[$2]}" ;;
	post_order) echo "-s $WORK/post_order.lua $base/orders" ;;
	esac
}
# wrkrun FILE THREADS CONNS SECONDS ARGS...: runs wrk, keeps its output,
# counts its errors.
ERRORS=()
wrkrun() {
	local file=$1 threads=$2 conns=$3 secs=$4
	shift 4
	# shellcheck disable=SC2068 # route_args splits into wrk's arguments
	timeout $((secs + 30)) wrk -t "$threads" -c "$conns" -d "${secs}s" --latency $@ >"$file" 2>&1 || true
	if grep -q 'Non-2xx\|Socket errors' "$file" || ! grep -q '^Requests/sec:' "$file"; then
		ERRORS+=("$(basename "$file"): $(grep 'Non-2xx\|Socket errors' "$file" | tr -s ' ' | tr '\n' ' ')")
	fi
}
ms() { awk -v v="$1" 'BEGIN {u = v; sub(/^[0-9.]+/, "", u); sub(/[a-z]+$/, "", v); print (u == "us" ? v / 1000 : u == "s" ? v * 1000 : v)}'; }
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
wrk_n() { awk '/requests in/ {print $1}' "$1"; }
wrk_avg() { ms "$(awk '$1 == "Latency" {print $2; exit}' "$1")"; }
wrk_p90() { ms "$(awk '/Latency Distribution/ {f = 1} f && $1 == "90%" {print $2; exit}' "$1")"; }
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

echo "-- warm-up: ${WARMUP} s per server and route at $CONNS connections"
for t in $TRANSPORTS; do
	for server in airship floor; do
		for route in "${ROUTES[@]}"; do
			# shellcheck disable=SC2046
			timeout $((WARMUP + 30)) wrk -t 2 -c "$CONNS" -d "${WARMUP}s" $(route_args "$server" "$t" "$route") >/dev/null 2>&1 || true
		done
	done
done

# RESULTS: one line per run: round transport route server kind value...
RESULTS=$OUT/results
: >"$RESULTS"
for r in $(seq "$ROUNDS"); do
	servers=(airship floor)
	[[ $((r % 2)) == 0 ]] && servers=(floor airship)
	echo "-- round $r of $ROUNDS (${servers[0]} first; load average $(load))"
	for t in $TRANSPORTS; do
		for route in "${ROUTES[@]}"; do
			declare -A rps=() cpu=() avg=() p90=()
			for server in "${servers[@]}"; do
				name=${server}_$t file=$OUT/${r}_${t}_${route}_${server}
				prof=
				if [[ -n ${PROFILE_DIR:-} && $r == 1 ]]; then
					curl -s -o "$PROFILE_DIR/${server}-${t}-${route}.pprof" \
						"${DEBUG[$name]}/debug/pprof/profile?seconds=$((DURATION > 2 ? DURATION - 1 : 1))" &
					prof=$!
				fi
				c0=$(cputicks "${PID[$name]}")
				# shellcheck disable=SC2046
				wrkrun "$file.conns" 2 "$CONNS" "$DURATION" $(route_args "$server" "$t" "$route")
				c1=$(cputicks "${PID[$name]}")
				[[ -z $prof ]] || wait "$prof" || true
				rps[$server]=$(wrk_rps "$file.conns")
				cpu[$server]=$(awk -v t=$((c1 - c0)) -v n="$(wrk_n "$file.conns")" -v tick="$TICK" 'BEGIN {printf "%.0f", (n > 0 ? t / tick * 1e6 / n : 0)}')
			done
			for server in "${servers[@]}"; do
				file=$OUT/${r}_${t}_${route}_${server}
				# shellcheck disable=SC2046
				wrkrun "$file.lat" 1 "$LAT_CONNS" "$DURATION" $(route_args "$server" "$t" "$route")
				avg[$server]=$(wrk_avg "$file.lat") p90[$server]=$(wrk_p90 "$file.lat")
			done
			for server in airship floor; do
				echo "$r $t $route $server ${rps[$server]:-0} ${cpu[$server]:-0} ${avg[$server]:-0} ${p90[$server]:-0}" >>"$RESULTS"
			done
			awk -v t="$t" -v route="${ROUTE_NAME[$route]}" -v ar="${rps[airship]:-0}" -v fr="${rps[floor]:-0}" \
				-v ac="${cpu[airship]}" -v fc="${cpu[floor]}" -v aa="${avg[airship]:-0}" -v fa="${avg[floor]:-0}" \
				-v ap="${p90[airship]:-0}" -v fp="${p90[floor]:-0}" -v c="$CONNS" -v lc="$LAT_CONNS" -v l="$(load)" \
				'function q(a, b) {return b > 0 ? sprintf("%.2f", a / b) : "-"}
				BEGIN {printf "   %-4s %-18s %2d conns: airship %7.0f req/s %4d µs CPU/req, floor %7.0f req/s %4d µs: %s | %d conns: avg %.3f / %.3f ms: %s, p90 %.3f / %.3f ms: %s | load %s\n",
					t, route, c, ar, ac, fr, fc, q(ar, fr), lc, aa, fa, q(aa, fa), ap, fp, q(ap, fp), l}'
		done
	done
done

echo
echo "== airship / floor, $ROUNDS round(s) of $DURATION s (load average $(load)); each ratio: median of the rounds' ratios (the rounds)"
REPORT=$(awk -v tg="$TARGET_GET" -v tp="$TARGET_POST" -v transports="$TRANSPORTS" -v conns="$CONNS" -v lconns="$LAT_CONNS" '
function median(list,    v, n, i, j, x) {
	n = split(list, v, " ")
	for (i = 2; i <= n; i++) { x = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function q(a, b) { return b > 0 ? a / b : 0 }
{
	r = $1; k = $2 " " $3; s = $4
	rps[k, r, s] = $5; cpu[k, s] = cpu[k, s] " " $6; avg[k, r, s] = $7; p90[k, r, s] = $8
	if ($5 > best[k, s]) best[k, s] = $5
	if (!((k, s) in lbest) || $7 < lbest[k, s]) lbest[k, s] = $7
	if (r > maxr) maxr = r
	keys[k] = 1
}
END {
	nt = split(transports, T, " ")
	split("get_product get_order post_order", R, " ")
	name["get_product"] = "GET /products/{id}"; name["get_order"] = "GET /orders/{id}"; name["post_order"] = "POST /orders"
	printf "   %d connections, throughput:\n", conns
	printf "   %-4s %-18s %-28s %-24s %-13s %s\n", "", "", "airship / floor req/s", "best of each", "CPU µs/req", "target"
	failed = 0
	for (i = 1; i <= nt; i++) for (j = 1; j <= 3; j++) {
		k = T[i] " " R[j]
		if (!(k in keys)) continue
		tl = ""
		for (r = 1; r <= maxr; r++) tl = tl " " sprintf("%.2f", q(rps[k, r, "airship"], rps[k, r, "floor"]))
		target = R[j] == "post_order" ? tp : tg
		m = median(tl)
		ok = m >= target ? "PASS" : "FAIL"
		if (ok == "FAIL") failed = 1
		printf "   %-4s %-18s %-28s %-24s %-13s >= %s %s\n", T[i], name[R[j]], sprintf("%.2f (%s)", m, substr(tl, 2)),
			sprintf("%.0f / %.0f", best[k, "airship"], best[k, "floor"]), median(cpu[k, "airship"]) " / " median(cpu[k, "floor"]), target, ok
	}
	printf "   %d connections, latency (higher: airship slower):\n", lconns
	printf "   %-4s %-18s %-28s %-28s %s\n", "", "", "airship / floor average", "p90", "best average, ms"
	for (i = 1; i <= nt; i++) for (j = 1; j <= 3; j++) {
		k = T[i] " " R[j]
		if (!(k in keys)) continue
		al = ""; pl = ""
		for (r = 1; r <= maxr; r++) {
			al = al " " sprintf("%.2f", q(avg[k, r, "airship"], avg[k, r, "floor"]))
			pl = pl " " sprintf("%.2f", q(p90[k, r, "airship"], p90[k, r, "floor"]))
		}
		printf "   %-4s %-18s %-28s %-28s %.3f / %.3f\n", T[i], name[R[j]], sprintf("%.2f (%s)", median(al), substr(al, 2)),
			sprintf("%.2f (%s)", median(pl), substr(pl, 2)), lbest[k, "airship"], lbest[k, "floor"]
	}
	exit failed
}' "$RESULTS") || FAILED=1
echo "$REPORT"
if [[ ${#ERRORS[@]} != 0 ]]; then
	echo "   FAIL errors in ${#ERRORS[@]} runs:"
	printf '     %s\n' "${ERRORS[@]}"
	FAILED=1
fi
[[ -z ${PROFILE_DIR:-} ]] || echo "CPU profiles of round 1 in $PROFILE_DIR (go tool pprof -top FILE)"
[[ -z ${KEEP_OUT:-} ]] || echo "raw outputs kept in $OUT"
exit $FAILED
