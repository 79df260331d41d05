#!/usr/bin/env bash
# The cost of airship's metrics, measured side by side: two servers built
# from this tree, on the same PostgreSQL database and Redis, one with
# metrics off (AIRSHIP_METRICS_ADDR empty) and one with metrics on
# (scraped every second, more often than any production Prometheus), both
# with tracing off (no OTEL_* variable). Each round starts both anew, the
# roles swapped between the two slots (ports, Redis prefixes) every round,
# so that neither mode keeps a slot's luck, and runs against each, in
# alternating order (off then on, then on then off):
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
# short rounds, interleaved, spread it over both servers alike, and each
# round compares the two within a minute. The script reports each round;
# then, for each measure, the median of the rounds' on/off ratios (the
# verdict: a burst of other work that hits one side of one round moves a
# median little and a total much), the totals over all rounds (the load
# scenario's average over all its requests, wrk's requests over its
# seconds) and the server's CPU time per request. It exits 1 if the
# medians show metrics costing more than MAX_PCT percent.
#
# Needs: go, psql, redis-cli, curl, wrk (apt-get install wrk). Environment (defaults
# in brackets): ROUNDS [16], HOLD [8s], DURATION [5], MAX_PCT [5],
# PG_ADMIN_URL [postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable],
# REDIS_URL [redis://127.0.0.1:6379/4], PORT [18300: uses PORT..PORT+2].
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-16}
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
	redis-cli -u "$REDIS_URL" --scan --pattern "airship-overhead-?-$$:*" 2>/dev/null | xargs -r -n 500 redis-cli -u "$REDIS_URL" unlink >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "overhead: building airship; database $DB; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
CGO_ENABLED=0 go build -trimpath -o "$WORK/airship" .
psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $DB" >/dev/null
PG_URL=${PG_ADMIN_URL/\/postgres\?//$DB?}

# Two slots, A on PORT and B on PORT+1; the server that has metrics on
# serves them on PORT+2.
slot_of() { # slot_of MODE ROUND: A or B
	if [ $(($2 % 2)) -eq 1 ]; then [ "$1" = off ] && echo A || echo B; else [ "$1" = off ] && echo B || echo A; fi
}
port_of() { [ "$1" = A ] && echo "$PORT" || echo $((PORT + 1)); }

# stop: stops both servers, if running.
stop() {
	local mode pid
	for mode in off on; do
		[ -f "$WORK/$mode.pid" ] || continue
		pid=$(cat "$WORK/$mode.pid")
		kill "$pid" 2>/dev/null || true
		while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	done
}

# serve MODE ROUND: starts the server of MODE in its slot of ROUND.
serve() {
	local mode=$1 slot port metrics=""
	slot=$(slot_of "$1" "$2")
	port=$(port_of "$slot")
	[ "$mode" = on ] && metrics=127.0.0.1:$((PORT + 2))
	(cd "$WORK" && AIRSHIP_ADDR=127.0.0.1:$port AIRSHIP_METRICS_ADDR=$metrics \
		AIRSHIP_POSTGRES_URL="$PG_URL" AIRSHIP_REDIS_URL="$REDIS_URL" AIRSHIP_REDIS_PREFIX="airship-overhead-$slot-$$:" \
		exec ./airship serve >"$WORK/$mode.log" 2>&1) &
	PIDS+=($!)
	echo $! >"$WORK/$mode.pid"
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
	curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "overhead: the $mode server did not start:" >&2; cat "$WORK/$mode.log" >&2; exit 1; }
	local base=http://127.0.0.1:$port id
	curl -s -o /dev/null -XPOST "$base/products" -H 'Content-Type: application/json' \
		-d '{"id": "perf-product", "title": "Perf", "passenger_capacity": 1, "maximum_speed": 1, "in_stock": 2000000000}'
	id=$(curl -fs -XPOST "$base/orders" -H 'Content-Type: application/json' \
		-d '{"order_details": [{"product_id": "perf-product", "price": "100000.99", "quantity": 1}]}' | tr -dc 0-9)
	echo "$id" >"$WORK/order-$mode"
	echo "$base" >"$WORK/url-$mode"
	# Warm-up: fill the pools.
	timeout 30 wrk -t 2 -c 32 -d 2s -s scripts/mixed.lua "$base" -- "$id" >/dev/null 2>&1 || true
}
# Prometheus's part: a scrape every second, of whichever server is on.
(while sleep 1; do curl -fs -o /dev/null "http://127.0.0.1:$((PORT + 2))/metrics" || true; done) &
PIDS+=($!)

url() { cat "$WORK/url-$1"; }
# cputicks MODE: the server's user + system CPU time, in clock ticks.
cputicks() { awk '{print $14 + $15}' "/proc/$(cat "$WORK/$1.pid")/stat"; }
TICK=$(getconf CLK_TCK)
printf '%-5s %-4s %12s %10s %12s %12s   %s\n' round mode "scenario avg" "scen. rps" "wrk-32 rps" "CPU µs/req" "load average"
for r in $(seq "$ROUNDS"); do
	stop
	serve off "$r"
	serve on "$r"
	if [ "$r" = 1 ]; then
		metrics=$(curl -fs "http://127.0.0.1:$((PORT + 2))/metrics")
		grep -q '^airship_build_info' <<<"$metrics" || { echo "overhead: no metrics on the on server" >&2; exit 1; }
	fi
	order="off on"
	[ $((r % 2)) -eq 0 ] && order="on off"
	for mode in $order; do
		"$WORK/airship" loadtest --url "$(url $mode)" --users 3 --ramp-up 1s --hold "$HOLD" \
			--out "$WORK/lt-$mode-$r" --max-error-rate 0 >/dev/null 2>"$WORK/lt-$mode-$r.err" ||
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
med_lat, med_tp = statistics.median(lat_r), statistics.median(tp_r)
ok = med_lat <= limit and med_tp >= -limit
print(f"metrics on vs off, medians of the rounds: latency {med_lat:+.1f}% (limit +{limit:g}%), "
      f"throughput {med_tp:+.1f}% (limit -{limit:g}%): {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
