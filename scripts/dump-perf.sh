#!/usr/bin/env bash
# Measures `airship export` and `airship import` on a large shop (by
# default 1,000,000 products and 100,000 orders) in both directions
# between PostgreSQL + Redis and the embedded store, each command under
# /usr/bin/time -v (elapsed time and peak RSS), and checks that every
# round trip gives back the very same dump:
#
#   seed PostgreSQL + Redis (A); export A; import that into the embedded
#   store (E); export E (the same bytes as A's); import that into
#   PostgreSQL + Redis (B); export B (the same bytes as A's).
#
# Settings (environment): PRODUCTS, ORDERS, PG_ADMIN_URL (a server where
# the user may CREATE DATABASE), REDIS_URL, WORK (a directory for the
# binary, dumps and the embedded store; when unset, a new temporary one;
# at the end, unless KEEP=1, the temporary directory is removed, or only
# what the script put in a WORK you gave).
# It creates the databases airship_dumpperf_a and airship_dumpperf_b and
# the Redis prefixes airship-dumpperf-a: and airship-dumpperf-b:, and
# removes them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

PRODUCTS=${PRODUCTS:-1000000}
ORDERS=${ORDERS:-100000}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
MADE_WORK=
if [ -z "${WORK:-}" ]; then
  WORK=$(mktemp -d /tmp/airship-dump-perf.XXXXXX)
  MADE_WORK=1
fi
mkdir -p "$WORK"

pg_url() { echo "${PG_ADMIN_URL/\/postgres\?//$1?}"; }
redis_cli() { redis-cli -u "$REDIS_URL" "$@"; }

cleanup() {
  for db in airship_dumpperf_a airship_dumpperf_b; do
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
  done
  for prefix in airship-dumpperf-a: airship-dumpperf-b:; do
    redis_cli --scan --pattern "$prefix*" | xargs -r -n 1000 redis-cli -u "$REDIS_URL" unlink >/dev/null || true
  done
  if [ "${KEEP:-}" != 1 ]; then
    if [ -n "$MADE_WORK" ]; then
      rm -rf "$WORK"
    else
      rm -rf "$WORK/airship" "$WORK/embedded" "$WORK/time.txt" "$WORK/a.jsonl" "$WORK/e.jsonl" "$WORK/b.jsonl"
    fi
  fi
}
trap cleanup EXIT

for db in airship_dumpperf_a airship_dumpperf_b; do
  psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
done

echo "building airship"
CGO_ENABLED=0 go build -o "$WORK/airship" .
export AIRSHIP_LOG_LEVEL=warn
A=(--postgres-url "$(pg_url airship_dumpperf_a)" --redis-url "$REDIS_URL" --redis-prefix airship-dumpperf-a:)
B=(--postgres-url "$(pg_url airship_dumpperf_b)" --redis-url "$REDIS_URL" --redis-prefix airship-dumpperf-b:)
E=(--data-dir "$WORK/embedded")

# timed NAME CMD...: runs CMD under /usr/bin/time -v and records its
# elapsed time and peak RSS.
results=()
timed() {
  local name=$1
  shift
  /usr/bin/time -v -o "$WORK/time.txt" "$@"
  local elapsed rss
  elapsed=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$WORK/time.txt")
  results+=("$(printf '| %-46s | %9s | %6s MiB |' "$name" "$elapsed" "$rss")")
  echo "$name: $elapsed, peak RSS $rss MiB"
}

echo "seeding $PRODUCTS products and $ORDERS orders into PostgreSQL + Redis (A)"
"$WORK/airship" seed --products "$PRODUCTS" --orders "$ORDERS" "${A[@]}" 2>&1 | tail -2

timed "export PostgreSQL + Redis to file" "$WORK/airship" export --out "$WORK/a.jsonl" "${A[@]}"
timed "import file to embedded" "$WORK/airship" import --in "$WORK/a.jsonl" "${E[@]}"
timed "export embedded to file" "$WORK/airship" export --out "$WORK/e.jsonl" "${E[@]}"
cmp "$WORK/a.jsonl" "$WORK/e.jsonl"
timed "import file to PostgreSQL + Redis" "$WORK/airship" import --in "$WORK/e.jsonl" "${B[@]}"
timed "export PostgreSQL + Redis (the copy) to file" "$WORK/airship" export --out "$WORK/b.jsonl" "${B[@]}"
cmp "$WORK/a.jsonl" "$WORK/b.jsonl"

echo
echo "dump: $(du -m "$WORK/a.jsonl" | cut -f1) MiB, $(wc -l < "$WORK/a.jsonl") lines; $(tail -1 "$WORK/a.jsonl" | cut -c1-120)"
echo "every export gave the same bytes; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '| %-46s | %9s | %10s |\n' step elapsed "peak RSS"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..48})" "$(printf -- '-%.0s' {1..11})" "$(printf -- '-%.0s' {1..12})"
printf '%s\n' "${results[@]}"
