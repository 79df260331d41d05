#!/usr/bin/env bash
# make test-container: builds airship's image with `make image` on scratch
# (no pull) and runs it for real, as uid 65532 on a read-only root
# filesystem with host networking, twice:
#   1. on the local PostgreSQL and Redis (a fresh database and Redis key
#      prefix, removed afterwards), then test/smoketest.sh against it;
#   2. on the embedded store with a Docker volume on /data: orders are
#      written while `docker stop` runs, the container must exit 0 within the
#      shutdown timeout, and after `docker start` every acknowledged order is
#      there and the stock matches.
# Without a Docker engine it installs Debian's docker.io and starts dockerd
# (as root), and stops that dockerd at the end. Containers, volume, image,
# database and Redis keys are removed on exit, whatever happens, and so is
# its work directory (dockerd's log, the image build's output): it leaves
# nothing in $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_ADMIN_URL=${AIRSHIP_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
REDIS_URL=${AIRSHIP_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
work=$(mktemp -d "${TMPDIR:-/tmp}/airship-test-container.XXXXXX")
DOCKERD_LOG=${DOCKERD_LOG:-$work/dockerd.log}
SHUTDOWN_TIMEOUT=15 # seconds, airship's default shutdown_timeout

run_id=$(date +%s)-$$
image=airship-test:ct-$run_id
pg_container=airship-ct-$run_id-pg
embedded_container=airship-ct-$run_id-embedded
volume=airship-ct-$run_id-data
database=airship_ct_${run_id//-/_}
prefix=airship-ct-$run_id:
dockerd_pid=
started=()   # containers to remove
made_db=
made_volume=
built_image=

say() { echo "test-container: $*"; }

# fail MESSAGE: print it with what helps to understand it, then exit 1
# (the trap cleans up).
fail() {
  echo "test-container: FAIL: $*" >&2
  for c in "${started[@]}"; do
    echo "---- docker logs $c (last 40 lines)" >&2
    docker logs --tail 40 "$c" >&2 2>&1 || true
    docker inspect -f 'state: {{json .State}}' "$c" >&2 2>/dev/null || true
  done
  exit 1
}

cleanup() {
  local rc=$?
  set +e
  for c in "${started[@]}"; do docker rm -f -v "$c" >/dev/null 2>&1; done
  [ -n "$made_volume" ] && docker volume rm -f "$volume" >/dev/null
  if [ -n "$built_image" ]; then
    docker rmi -f "$image" >/dev/null 2>&1
    # A failed build leaves its intermediate images behind, untagged.
    comm -13 <(sort "$dangling_before") <(docker images -aq --filter dangling=true | sort) | xargs -r docker rmi -f >/dev/null 2>&1
  fi
  if [ -n "$made_db" ]; then
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null
  fi
  redis-cli -u "$REDIS_URL" --scan --pattern "$prefix*" | xargs -r redis-cli -u "$REDIS_URL" unlink >/dev/null
  if [ -n "$dockerd_pid" ]; then
    say "stopping the dockerd it started (pid $dockerd_pid)"
    kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null
  fi
  rm -rf "$work"
  if [ "$rc" = 0 ]; then say "passed"; else say "failed (exit $rc)" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in curl jq perl psql redis-cli; do
  command -v "$tool" >/dev/null || fail "$tool is required (apt-get install -y curl jq postgresql-client redis-tools)"
done
pg_isready -d "$PG_ADMIN_URL" -q || fail "PostgreSQL is not reachable at $PG_ADMIN_URL: start it with \`pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start\`"
redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 || fail "Redis is not reachable at $REDIS_URL: start it with \`redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no\`"

# --- a Docker engine -----------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  if ! command -v docker >/dev/null || ! command -v dockerd >/dev/null; then
    say "no Docker engine: installing Debian's docker.io"
    [ "$(id -u)" = 0 ] || fail "installing docker.io needs root"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io; } >/dev/null ||
      fail "apt-get install docker.io failed"
  fi
  say "starting dockerd --iptables=false --bridge=none (log: $DOCKERD_LOG)"
  dockerd --iptables=false --bridge=none >"$DOCKERD_LOG" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || { tail -20 "$DOCKERD_LOG" >&2; dockerd_pid=; fail "dockerd exited at start (log above)"; }
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -20 "$DOCKERD_LOG" >&2; fail "dockerd did not answer within 60s (log above)"; }
fi

# wait_healthy CONTAINER: until Docker's HEALTHCHECK (airship healthcheck)
# reports healthy. Returns 1 when the container exited because another
# listener had taken its port; fails on anything else.
wait_healthy() {
  local status
  for _ in $(seq 120); do
    status=$(docker inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$1")
    case $status in
      "running healthy") return 0 ;;
      running*) sleep 0.5 ;;
      *)
        # (grep -c reads all of the logs; see run 1.)
        docker logs "$1" 2>&1 | grep -c 'bind: address already in use' >/dev/null && return 1
        fail "$1 is $status, not running" ;;
    esac
  done
  fail "$1 did not become healthy within 60s: $(docker inspect -f '{{json .State.Health}}' "$1")"
}

# stop_cleanly CONTAINER: docker stop must end with exit code 0 within the
# shutdown timeout.
stop_cleanly() {
  local t0 t1 code
  t0=$(date +%s%N)
  docker stop -t $((SHUTDOWN_TIMEOUT + 5)) "$1" >/dev/null
  t1=$(date +%s%N)
  code=$(docker inspect -f '{{.State.ExitCode}}' "$1")
  [ "$code" = 0 ] || fail "$1 exited with code $code after docker stop; want 0"
  (( (t1 - t0) / 1000000 < SHUTDOWN_TIMEOUT * 1000 )) ||
    fail "docker stop $1 took $(( (t1 - t0) / 1000000 )) ms; want less than the ${SHUTDOWN_TIMEOUT}s shutdown timeout"
  say "docker stop $1: exit code 0 in $(( (t1 - t0) / 1000000 )) ms"
}

# http METHOD URL [BODY]: prints the status, then the body on the next line.
http() {
  local args=(-sS -X "$1" -w '\n%{http_code}' --max-time 10)
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' -d "$3")
  local out
  out=$(curl "${args[@]}" "$2") || fail "$1 $2: no answer"
  echo "${out##*$'\n'}"
  echo "${out%$'\n'*}"
}

# must STATUS METHOD URL [BODY]: the request answers STATUS; prints the body.
must() {
  local want=$1 out status
  shift
  out=$(http "$@")
  status=${out%%$'\n'*}
  [ "$status" = "$want" ] || fail "$1 $2: status $status, want $want; body: ${out#*$'\n'}"
  echo "${out#*$'\n'}"
}

# --- the image -----------------------------------------------------------
say "make image IMAGE=$image BASE_IMAGE=scratch"
t0=$(date +%s)
dangling_before=$work/dangling-before
docker images -aq --filter dangling=true >"$dangling_before"
built_image=1
make --no-print-directory image IMAGE="$image" BASE_IMAGE=scratch >"$work/image.log" 2>&1 ||
  { tail -30 "$work/image.log" >&2; fail "make image failed (output above)"; }
say "built $image in $(( $(date +%s) - t0 ))s, $(docker image inspect -f '{{.Size}}' "$image" | numfmt --to=iec) "

check() { [ "$2" = "$3" ] || fail "image $1: $2, want $3"; }
inspect() { docker image inspect -f "$1" "$image"; }
check "user" "$(inspect '{{.Config.User}}')" "65532:65532"
check "exposed ports" "$(inspect '{{json .Config.ExposedPorts}}')" '{"8000/tcp":{},"9464/tcp":{}}'
check "volumes" "$(inspect '{{json .Config.Volumes}}')" '{"/data":{}}'
check "healthcheck" "$(inspect '{{json .Config.Healthcheck.Test}}')" '["CMD","/usr/local/bin/airship","healthcheck"]'
check "entrypoint" "$(inspect '{{json .Config.Entrypoint}}')" '["/usr/local/bin/airship"]'
check "title label" "$(inspect '{{index .Config.Labels "org.opencontainers.image.title"}}')" "airship"
check "revision label" "$(inspect '{{index .Config.Labels "org.opencontainers.image.revision"}}')" "$(git rev-parse HEAD)"
version=$(cat VERSION)
check "version label" "$(inspect '{{index .Config.Labels "org.opencontainers.image.version"}}')" "$version"
created=$(inspect '{{index .Config.Labels "org.opencontainers.image.created"}}')
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' <<<"$created" || fail "image created label '$created' is not a date"
out=$(docker run --rm --network none --read-only "$image" version) || fail "airship version in the image: $out"
check "airship version" "$(head -1 <<<"$out")" "airship $version"
check "airship version's commit" "$(sed -n 's/^  commit: //p' <<<"$out")" "$(git rev-parse HEAD)"
check "airship version's build date" "$(sed -n 's/^  built:  //p' <<<"$out")" "$created"

# start_airship NAME ENV...: docker run with what both runs share, on a
# free port (set in $port), until the container is healthy. On the host's
# network the metrics listener takes any free port, so that it never fights
# another airship over the default :9464 (nothing here scrapes it). Another
# process can still bind the port between free-port.sh's pick and airship's
# listen; then the container is removed and started on another port.
start_airship() {
  local name=$1 attempt
  shift
  started+=("$name")
  for attempt in 1 2 3; do
    port=$(scripts/free-port.sh) || fail "scripts/free-port.sh found no free loopback port"
    docker run -d --name "$name" --network host --read-only --user 65532 \
      --stop-timeout $((SHUTDOWN_TIMEOUT + 5)) --health-interval 1s \
      -e AIRSHIP_ADDR="127.0.0.1:$port" -e AIRSHIP_LOG_LEVEL=info -e AIRSHIP_METRICS_ADDR=127.0.0.1:0 \
      "$@" "$image" >/dev/null || fail "docker run $name failed"
    wait_healthy "$name" && return
    say "$name lost port $port to another listener (attempt $attempt); starting it again on another port"
    docker rm -f -v "$name" >/dev/null
  done
  fail "$name lost its port to another listener 3 times"
}

# --- 1. PostgreSQL + Redis, and the smoke test ----------------------------
say "run 1: on PostgreSQL database $database and Redis prefix $prefix"
psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $database" >/dev/null || fail "cannot create database $database"
made_db=1
pg_url="${PG_ADMIN_URL%%\?*}"
pg_url="${pg_url%/*}/$database?${PG_ADMIN_URL#*\?}"
start_airship "$pg_container" \
  -e AIRSHIP_POSTGRES_URL="$pg_url" -e AIRSHIP_REDIS_URL="$REDIS_URL" -e AIRSHIP_REDIS_PREFIX="$prefix"
# (grep reads all of the logs: with -q it would stop at the first match and,
# under pipefail, docker logs' broken pipe would fail the check.)
docker logs "$pg_container" 2>&1 | grep -c '"backend":"postgres+redis"' >/dev/null || fail "$pg_container is not on PostgreSQL + Redis"
test/smoketest.sh "http://127.0.0.1:$port" | sed 's/^/  /' || fail "test/smoketest.sh failed against $pg_container"
[ "$(psql "$pg_url" -tAc 'SELECT count(*) FROM orders')" -ge 1 ] || fail "no order reached database $database"
must 200 POST "http://127.0.0.1:$port/products" \
  '{"id": "zeppelin", "title": "Zeppelin", "passenger_capacity": 20, "maximum_speed": 130, "in_stock": 1}' >/dev/null
[ -n "$(redis-cli -u "$REDIS_URL" --scan --pattern "$prefix*" | head -1)" ] || fail "no key under $prefix in Redis"
stop_cleanly "$pg_container"

# --- 2. the embedded store on a volume, across docker stop / start --------
say "run 2: on the embedded store in volume $volume"
docker volume create "$volume" >/dev/null
made_volume=1
start_airship "$embedded_container" -v "$volume:/data"
base=http://127.0.0.1:$port
docker logs "$embedded_container" 2>&1 | grep -c '"backend":"embedded"' >/dev/null || fail "$embedded_container is not on the embedded store"

stock=100000
must 200 POST "$base/products" \
  "{\"id\": \"the_odyssey\", \"title\": \"The Odyssey\", \"passenger_capacity\": 101, \"maximum_speed\": 5, \"in_stock\": $stock}" >/dev/null
order='{"order_details": [{"product_id": "the_odyssey", "price": "100000.99", "quantity": 1}]}'
acked=$work/acked
# Orders from 4 clients until the server goes away; each 200 is recorded.
writers=()
for _ in 1 2 3 4; do
  (
    for _ in $(seq 3000); do
      out=$(curl -sS --max-time 10 -X POST -H 'Content-Type: application/json' -d "$order" -w '\n%{http_code}' "$base/orders" 2>/dev/null) || break
      [ "${out##*$'\n'}" = 200 ] && echo "${out%$'\n'*}" | jq -r .id >>"$acked"
    done
    true
  ) &
  writers+=($!)
done
sleep 2
stop_cleanly "$embedded_container"
wait "${writers[@]}"
n_acked=$(wc -l <"$acked")
[ "$n_acked" -gt 0 ] || fail "no order was acknowledged before docker stop; the test exercised nothing"
say "$n_acked orders acknowledged before and during docker stop"

docker start "$embedded_container" >/dev/null
wait_healthy "$embedded_container" || fail "$embedded_container lost port $port to another listener across docker stop/start"
missing=0
while read -r id; do
  [ "$(http GET "$base/orders/$id" | head -1)" = 200 ] || { echo "order $id is missing" >&2; missing=$((missing + 1)); }
done <"$acked"
[ "$missing" = 0 ] || fail "$missing of $n_acked acknowledged orders are gone after docker stop/start"
n_orders=0 after=0
while :; do
  page=$(must 200 GET "$base/orders?limit=1000&after=$after")
  n=$(echo "$page" | jq length)
  n_orders=$((n_orders + n))
  [ "$n" -lt 1000 ] && break
  after=$(echo "$page" | jq '.[-1].id')
done
in_stock=$(must 200 GET "$base/products/the_odyssey" | jq .in_stock)
[ $((in_stock + n_orders)) = "$stock" ] ||
  fail "after restart: in_stock $in_stock + $n_orders orders != $stock"
say "after docker start: all $n_acked acknowledged orders there, in_stock $in_stock + $n_orders orders = $stock"
stop_cleanly "$embedded_container"
