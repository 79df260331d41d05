#!/usr/bin/env bash
# Runs the API contract's example session against a running airship and
# exits non-zero on the first response that differs from the contract.
#
#   test/smoketest.sh [BASE_URL]     (default http://localhost:8000)
#
# The session uses the product id the_odyssey; if it exists it is deleted
# first. Order ids are read from the responses, so the server need not be
# empty.
set -euo pipefail

base=${1:-http://localhost:8000}
base=${base%/}
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "smoketest: $tool is required" >&2; exit 2; }
done

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok   $*"; }

# Each response body lands here; removed on exit, whatever happens.
response=$(mktemp "${TMPDIR:-/tmp}/airship-smoketest.XXXXXX")
trap 'rm -f "$response"' EXIT

# call METHOD PATH [BODY]: sets $status and $body.
call() {
  local method=$1 path=$2 data=${3:-}
  local args=(-sS -X "$method" -o "$response" -w '%{http_code}')
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' -d "$data")
  status=$(curl "${args[@]}" "$base$path") || fail "$method $path: server not reachable at $base"
  body=$(cat "$response")
}

# expect STATUS JQ_FILTER DESCRIPTION: the status matches and the filter
# is true of the body.
expect() {
  local want=$1 filter=$2 what=$3
  [ "$status" = "$want" ] || fail "$what: status $status, want $want; body: $body"
  if [ -n "$filter" ]; then
    echo "$body" | jq -e "$filter" >/dev/null 2>&1 || fail "$what: body $body does not satisfy $filter"
  fi
  pass "$what"
}

product='{"id": "the_odyssey", "title": "The Odyssey", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 10}'
doc='{"id": "the_odyssey", "title": "The Odyssey", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 10}'

call DELETE /products/the_odyssey   # a clean start; 204 or 404

call POST /products "$product"
expect 200 '. == {"id": "the_odyssey"}' 'POST /products'

call GET /products/the_odyssey
expect 200 ". == $doc" 'GET /products/the_odyssey'

call POST /orders '{"order_details": [{"product_id": "the_odyssey", "price": "100000.99", "quantity": 1}]}'
expect 200 '(.id | type) == "number" and (keys == ["id"])' 'POST /orders'
order=$(echo "$body" | jq .id)

call GET "/orders/$order"
expect 200 "
  .id == $order and (.order_details | length) == 1 and
  (.order_details[0] | .product_id == \"the_odyssey\" and .price == \"100000.99\" and .quantity == 1
    and .image == \"http://www.example.com/airship/images/the_odyssey.jpg\"
    and (.id | type) == \"number\"
    and .product == {\"id\": \"the_odyssey\", \"title\": \"The Odyssey\", \"passenger_capacity\": 101, \"maximum_speed\": 5, \"in_stock\": 9})
" "GET /orders/$order (enriched, in_stock 9)"

call DELETE /products/the_odyssey
expect 204 '' 'DELETE /products/the_odyssey'
[ -z "$body" ] || fail "DELETE returned a body: $body"

call GET /products/the_odyssey
expect 404 '.error == "PRODUCT_NOT_FOUND" and (keys == ["error", "message"])' 'GET /products/the_odyssey after delete'

# GET /orders pages by 50, oldest first: follow after= until the order shows.
after=0
while :; do
  call GET "/orders?limit=1000&after=$after"
  expect 200 'type == "array"' "GET /orders?after=$after"
  if echo "$body" | jq -e ".[] | select(.id == $order) |
      .order_details == [{\"id\": .order_details[0].id, \"product_id\": \"the_odyssey\", \"price\": \"100000.99\", \"quantity\": 1}]" >/dev/null; then
    pass "GET /orders lists order $order"
    break
  fi
  [ "$(echo "$body" | jq length)" -gt 0 ] || fail "GET /orders never lists order $order"
  after=$(echo "$body" | jq '.[-1].id')
done

call GET "/orders/$order"
expect 200 '.order_details[0].product == null' "GET /orders/$order after the product was deleted (product null)"

echo "smoketest passed against $base"
