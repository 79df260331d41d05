#!/usr/bin/env bash
# ensure-database.sh PG_URL: create the database a postgres:// URL names,
# if it does not exist, and no other. It connects to the server's
# "postgres" database to do it, with the URL's user, host, port and
# parameters. make run-prod runs it.
set -euo pipefail

url=${1:?usage: ensure-database.sh postgres://USER@HOST:PORT/DATABASE?PARAMS}
if [[ ! $url =~ ^(postgres|postgresql)://([^/?]*)(/([^?]*))?(\?.*)?$ ]]; then
  echo "ensure-database: $url is not a postgres:// URL" >&2
  exit 2
fi
server=${BASH_REMATCH[1]}://${BASH_REMATCH[2]}
database=${BASH_REMATCH[4]}
params=${BASH_REMATCH[5]}
if [ -z "$database" ]; then
  echo "ensure-database: the URL names no database: postgres://USER@HOST:PORT/DATABASE" >&2
  exit 2
fi
# The name as PostgreSQL sees it: the URL's percent-encoding undone.
database=$(printf '%b' "${database//%/\\x}")
admin=$server/postgres$params

# psql quotes the name (:'db' as a literal, :"db" as an identifier): any
# name is safe.
exists=$(psql "$admin" -v ON_ERROR_STOP=1 -v db="$database" -tA <<'SQL'
SELECT 1 FROM pg_database WHERE datname = :'db'
SQL
)
if [ "$exists" != 1 ]; then
  echo "ensure-database: creating database $database"
  psql "$admin" -v ON_ERROR_STOP=1 -v db="$database" -q <<'SQL'
CREATE DATABASE :"db"
SQL
fi
