#!/usr/bin/env bash
# Integration events: what they cost and how fast they arrive.
#
#   1. POST /orders throughput at 32 connections (wrk, DURATION s), events
#      off vs on, in interleaved rounds (off, on, off, on, ...) on one
#      PostgreSQL + Redis, so that other work on the machine falls on both
#      alike. With events on, a consumer drains the events as they come.
#   2. Event latency from commit to consumer under the contract's load
#      scenario (airship loadtest, USERS users, HOLD), events on:
#      scripts/eventlatency prints p50/p90/p99/max.
#
# Needs: go, psql, redis-cli, wrk, curl, rabbitmqctl, and the local
# PostgreSQL, Redis and RabbitMQ. Environment (defaults in brackets):
# ROUNDS [4], DURATION [20], USERS [3], HOLD [60s], PG_ADMIN_URL, REDIS_URL,
# OUT [perf-events-out].
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-20}
USERS=${USERS:-3}
HOLD=${HOLD:-60s}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
OUT=${OUT:-perf-events-out}
ADDR=127.0.0.1:8097
BASE=http://$ADDR

for tool in go psql redis-cli wrk curl rabbitmqctl; do
	command -v "$tool" >/dev/null || { echo "perf-events: $tool is required" >&2; exit 2; }
done
mkdir -p "$OUT"
WORK=$(mktemp -d)
DB=airship_perf_events_$$
VHOST=airship-perf-events-$$
PREFIX=perf-events-$$:
PG_URL=${PG_ADMIN_URL/\/postgres\?//$DB?}
AMQP_URL=amqp://guest:guest@127.0.0.1:5672/$VHOST
SERVER=
CONSUMER=
cleanup() {
	[ -n "$CONSUMER" ] && kill "$CONSUMER" 2>/dev/null && wait "$CONSUMER" 2>/dev/null
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
	psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
	rabbitmqctl -q delete_vhost "$VHOST" >/dev/null 2>&1 || true
	redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX*" 2>/dev/null | xargs -r -n 500 redis-cli -u "$REDIS_URL" unlink >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -o "$WORK/airship" .
go build -o "$WORK/eventlatency" ./scripts/eventlatency
psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $DB" >/dev/null
rabbitmqctl -q add_vhost "$VHOST" >/dev/null
rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null

# serve [env...]: starts airship on the shared database, waits until ready.
# Its metrics listener takes any free port, never the default :9464.
serve() {
	env AIRSHIP_ADDR=$ADDR AIRSHIP_POSTGRES_URL="$PG_URL" AIRSHIP_REDIS_URL="$REDIS_URL" \
		AIRSHIP_REDIS_PREFIX="$PREFIX" AIRSHIP_METRICS_ADDR=127.0.0.1:0 AIRSHIP_LOG_LEVEL=warn "$@" "$WORK/airship" serve >>"$OUT/server.log" 2>&1 &
	SERVER=$!
	for _ in $(seq 100); do curl -fs "$BASE/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
	echo "perf-events: airship did not start" >&2
	exit 1
}
stop() { kill "$SERVER"; wait "$SERVER" || true; SERVER=; }
# consume [args...]: starts the consumer, waits until its queue is bound.
consume() {
	rm -f "$WORK/ready"
	"$WORK/eventlatency" -amqp "$AMQP_URL" -ready "$WORK/ready" "$@" >"$WORK/consumer.out" 2>&1 &
	CONSUMER=$!
	for _ in $(seq 100); do [ -e "$WORK/ready" ] && return; sleep 0.1; done
	echo "perf-events: the consumer did not start" >&2
	exit 1
}
# unconsume: stops the consumer; its report is then in $WORK/consumer.out.
unconsume() { kill -INT "$CONSUMER"; wait "$CONSUMER" || true; CONSUMER=; }

cat >"$WORK/post_order.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"order_details": [{"product_id": "perf-events", "price": "100000.99", "quantity": 1}]}'
LUA

serve
curl -fs -XPOST "$BASE/products" -H 'Content-Type: application/json' \
	-d '{"id": "perf-events", "title": "Perf", "passenger_capacity": 1, "maximum_speed": 1, "in_stock": 2000000000}' >/dev/null
# Warm-up: the first requests prepare statements and fill the pools.
wrk -t 2 -c 32 -d 3s -s "$WORK/post_order.lua" "$BASE/orders" >/dev/null
stop

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -a OFF ON
for r in $(seq "$ROUNDS"); do
	for mode in off on; do
		if [ $mode = on ]; then
			consume
			serve AIRSHIP_AMQP_URL="$AMQP_URL"
		else
			serve
		fi
		wrk -t 2 -c 32 -d "${DURATION}s" -s "$WORK/post_order.lua" "$BASE/orders" >"$OUT/post_${mode}_$r.wrk" 2>&1
		rps=$(awk '/^Requests\/sec:/ {print $2}' "$OUT/post_${mode}_$r.wrk")
		if grep -q 'Non-2xx\|Socket errors' "$OUT/post_${mode}_$r.wrk"; then
			echo "round $r events $mode: errors: $(grep 'Non-2xx\|Socket errors' "$OUT/post_${mode}_$r.wrk" | tr -s ' ')" >&2
		fi
		stop
		if [ $mode = on ]; then
			# The relay has stopped: wait for the consumer to drain, then stop it.
			sleep 2
			unconsume
			echo "round $r events on:  $rps req/s; consumer: $(cat "$WORK/consumer.out")"
			ON+=("$rps")
		else
			echo "round $r events off: $rps req/s"
			OFF+=("$rps")
		fi
	done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
summary() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1; s += $1} END {printf "median %.0f, mean %.0f, best %.0f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), s / NR, v[NR]}'; }
echo "events off: $(summary "${OFF[@]}") req/s"
echo "events on:  $(summary "${ON[@]}") req/s"
med() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
awk -v off="$(med "${OFF[@]}")" -v on="$(med "${ON[@]}")" 'BEGIN {printf "throughput with events on: %.1f%% of off (medians; a drop of %.1f%%)\n", 100 * on / off, 100 - 100 * on / off}'

echo "event latency under the load scenario ($USERS users, hold $HOLD):"
consume -postgres "$PG_URL"
serve AIRSHIP_AMQP_URL="$AMQP_URL"
go run . loadtest --url "$BASE" --users "$USERS" --ramp-up 2s --hold "$HOLD" --out "$OUT/loadtest" >"$OUT/loadtest.log" 2>&1
stop
sleep 2
unconsume
echo "  commit to consumer: $(cat "$WORK/consumer.out")"
echo "  load test: $(grep -E '^(step|total)' "$OUT/loadtest.log" | tr -s ' ' | paste -sd ';')"
