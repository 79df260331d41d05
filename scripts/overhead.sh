#!/usr/bin/env bash
# The cost of airship's metrics, measured side by side: two servers built
# from this tree, on the same PostgreSQL database and Redis, one with
# metrics off (AIRSHIP_METRICS_ADDR empty) and one with metrics on
# (scraped every second, more often than any production Prometheus), both
# with tracing off (no OTEL_* variable). In each of ROUNDS rounds, in
# alternating order (off then on, then on then off), it runs against each:
#
#   1. the contract's load scenario (airship loadtest, 3 users, HOLD):
#      the average latency of all its requests;
#   2. wrk with 32 connections for DURATION s on the mixed load of
#      scripts/mixed.lua (GET product, GET order, POST order, GET /orders
#      in turn, as in scripts/perf-compare.sh): requests per second, and the server's CPU
#      time per request (from /proc/PID/stat), which other work on the
#      machine disturbs less than rates do.
#
# Other work on the machine can only add latency and remove throughput;
# short rounds, interleaved, spread it over both servers alike. The
# script reports each round, then for each server the load scenario's
# average over all its requests of all rounds and wrk's throughput over
# all its rounds (total requests / total time), the on/off ratios, and the
# median of the rounds' ratios; it exits 1 if metrics cost more than
# MAX_PCT percent on the totals.
#
# Needs: go, psql, redis-cli, curl, wrk (apt-get install wrk). Environment (defaults
# in brackets): ROUNDS [12], HOLD [8s], DURATION [5], MAX_PCT [5],
# PG_ADMIN_URL [postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable],
# REDIS_URL [redis://127.0.0.1:6379/4], PORT [18300: uses PORT..PORT+2].
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-12}
HOLD=${HOLD:-8s}
DURATION=${DURATION:-5}
MAX_PCT=${MAX_PCT:-5}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/4}
PORT=${PORT:-18300}
for tool in go psql redis-cli curl wrk python3; do
	command -v "$tool" >/dev/null || { echo "overhead: $tool is required (wrk: apt-get install -y wrk)" >&2; exit 2; }
done
unset OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT

WORK=$(mktemp -d)
DB=airship_overhead_$$
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
	redis-cli -u "$REDIS_URL" --scan --pattern "airship-overhead-*-$$:*" 2>/dev/null | xargs -r -n 500 redis-cli -u "$REDIS_URL" unlink >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "overhead: building airship; database $DB; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
CGO_ENABLED=0 go build -trimpath -o "$WORK/airship" .
psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $DB" >/dev/null
PG_URL=${PG_ADMIN_URL/\/postgres\?//$DB?}

# serve MODE PORT METRICS_ADDR: starts one server.
serve() {
	local mode=$1 port=$2 metrics=$3
	(cd "$WORK" && AIRSHIP_ADDR=127.0.0.1:$port AIRSHIP_METRICS_ADDR=$metrics \
		AIRSHIP_POSTGRES_URL="$PG_URL" AIRSHIP_REDIS_URL="$REDIS_URL" AIRSHIP_REDIS_PREFIX="airship-overhead-$mode-$$:" \
		exec ./airship serve >"$WORK/$mode.log" 2>&1) &
	PIDS+=($!)
	echo $! >"$WORK/$mode.pid"
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && return; sleep 0.2; done
	echo "overhead: the $mode server did not start:" >&2; cat "$WORK/$mode.log" >&2; exit 1
}
serve off "$PORT" ""
serve on "$((PORT + 1))" "127.0.0.1:$((PORT + 2))"
metrics=$(curl -fs "http://127.0.0.1:$((PORT + 2))/metrics")
grep -q '^airship_build_info' <<<"$metrics" || { echo "overhead: no metrics on the on server" >&2; exit 1; }
# Prometheus's part: a scrape every second.
(while sleep 1; do curl -fs -o /dev/null "http://127.0.0.1:$((PORT + 2))/metrics" || true; done) &
PIDS+=($!)

for mode in off on; do
	base=http://127.0.0.1:$([ $mode = off ] && echo "$PORT" || echo $((PORT + 1)))
	curl -fs -XPOST "$base/products" -H 'Content-Type: application/json' \
		-d '{"id": "perf-product", "title": "Perf", "passenger_capacity": 1, "maximum_speed": 1, "in_stock": 2000000000}' >/dev/null
	id=$(curl -fs -XPOST "$base/orders" -H 'Content-Type: application/json' \
		-d '{"order_details": [{"product_id": "perf-product", "price": "100000.99", "quantity": 1}]}' | tr -dc 0-9)
	echo "$id" >"$WORK/order-$mode"
	# Warm-up: fill the pools.
	timeout 30 wrk -t 2 -c 32 -d 3s -s scripts/mixed.lua "$base" -- "$id" >/dev/null 2>&1 || true
done

url() { [ "$1" = off ] && echo "http://127.0.0.1:$PORT" || echo "http://127.0.0.1:$((PORT + 1))"; }
# cputicks MODE: the server's user + system CPU time, in clock ticks.
cputicks() { awk '{print $14 + $15}' "/proc/$(cat "$WORK/$1.pid")/stat"; }
TICK=$(getconf CLK_TCK)
printf '%-5s %-4s %12s %10s %12s %12s   %s\n' round mode "scenario avg" "scen. rps" "wrk-32 rps" "CPU µs/req" "load average"
for r in $(seq "$ROUNDS"); do
	order="off on"
	[ $((r % 2)) -eq 0 ] && order="on off"
	for mode in $order; do
		"$WORK/airship" loadtest --url "$(url $mode)" --users 3 --ramp-up 1s --hold "$HOLD" \
			--out "$WORK/lt-$mode-$r" --fail-on-error >/dev/null 2>"$WORK/lt-$mode-$r.err" ||
			{ echo "overhead: load scenario failed against $mode:" >&2; tail "$WORK/lt-$mode-$r.err" >&2; exit 1; }
	done
	for mode in $order; do
		c0=$(cputicks "$mode")
		timeout $((DURATION + 30)) wrk -t 2 -c 32 -d "${DURATION}s" -s scripts/mixed.lua "$(url $mode)" -- "$(cat "$WORK/order-$mode")" >"$WORK/wrk-$mode-$r" 2>&1
		echo $(($(cputicks "$mode") - c0)) >"$WORK/cpu-$mode-$r"
		if grep -q 'Non-2xx\|Socket errors' "$WORK/wrk-$mode-$r"; then
			echo "overhead: wrk saw errors against $mode:" >&2; cat "$WORK/wrk-$mode-$r" >&2; exit 1
		fi
	done
	for mode in off on; do
		read -r avg rps n < <(python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['total']; print(t['avg_ms'], t['rps'], t['requests'])" "$WORK/lt-$mode-$r/summary.json")
		wrps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk-$mode-$r")
		wn=$(awk '/requests in/ {print $1}' "$WORK/wrk-$mode-$r")
		wsec=$(awk '/requests in/ {v = $4; sub(/,$/, "", v); u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v); print (u == "m" ? v * 60 : u == "ms" ? v / 1000 : v)}' "$WORK/wrk-$mode-$r")
		ticks=$(cat "$WORK/cpu-$mode-$r")
		printf '%-5s %-4s %9.3f ms %10.1f %12.1f %12.0f   %s\n' "$r" "$mode" "$avg" "$rps" "$wrps" \
			"$(python3 -c "print($ticks / $TICK * 1e6 / $wn)")" "$(cut -d' ' -f1-3 /proc/loadavg)"
		echo "$r $mode $avg $rps $wrps $n $wn $wsec $ticks" >>"$WORK/results"
	done
done

python3 - "$WORK/results" "$MAX_PCT" "$TICK" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
limit = float(sys.argv[2])
tick = float(sys.argv[3])
tot = {m: {"lat_ms": 0.0, "n": 0, "wn": 0, "wsec": 0.0, "ticks": 0} for m in ("off", "on")}
per = {}
for r, mode, avg, rps, wrps, n, wn, wsec, ticks in rows:
    t = tot[mode]
    t["lat_ms"] += float(avg) * int(n); t["n"] += int(n); t["wn"] += int(wn); t["wsec"] += float(wsec)
    t["ticks"] += int(ticks)
    per.setdefault(r, {})[mode] = (float(avg), float(wrps))
avg = {m: t["lat_ms"] / t["n"] for m, t in tot.items()}
thr = {m: t["wn"] / t["wsec"] for m, t in tot.items()}
lat = (avg["on"] / avg["off"] - 1) * 100
tp = (thr["on"] / thr["off"] - 1) * 100
lat_r = [(p["on"][0] / p["off"][0] - 1) * 100 for p in per.values()]
tp_r = [(p["on"][1] / p["off"][1] - 1) * 100 for p in per.values()]
print()
print(f"load scenario, average of all requests: off {avg['off']:.3f} ms ({tot['off']['n']} requests), "
      f"on {avg['on']:.3f} ms ({tot['on']['n']}): {lat:+.1f}%; median of the rounds' ratios {statistics.median(lat_r):+.1f}%")
print(f"32 connections, throughput over all rounds: off {thr['off']:.0f} req/s, on {thr['on']:.0f} req/s: {tp:+.1f}%; "
      f"median of the rounds' ratios {statistics.median(tp_r):+.1f}%")
cpu = {m: t["ticks"] / tick * 1e6 / t["wn"] for m, t in tot.items()}
print(f"32 connections, server CPU per request: off {cpu['off']:.0f} µs, on {cpu['on']:.0f} µs: {(cpu['on'] / cpu['off'] - 1) * 100:+.1f}%")
ok = lat <= limit and tp >= -limit
print(f"metrics on vs off: latency {lat:+.1f}% (limit +{limit:g}%), throughput {tp:+.1f}% (limit -{limit:g}%): {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
