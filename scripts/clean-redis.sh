#!/usr/bin/env bash
# clean-redis.sh PREFIX [REDIS-CLI ARGS...]: deletes every key whose name
# starts with PREFIX on the Redis (and database) that redis-cli reaches
# with the arguments (-h, -p, -n, -s ...), 5,000 keys a call, with SCAN
# and UNLINK inside the server. The perf scripts clean their key prefix
# with it before and after a run.
set -euo pipefail

[ $# -ge 1 ] && [ -n "$1" ] || { echo "usage: clean-redis.sh PREFIX [REDIS-CLI ARGS...]" >&2; exit 2; }
prefix=$1
shift
cursor=0
while :; do
	cursor=$(redis-cli "$@" --raw EVAL "local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', 5000)
if #r[2] > 0 then redis.call('UNLINK', unpack(r[2])) end
return r[1]" 0 "$cursor" "${prefix}*")
	# redis-cli prints a server's error and still exits 0: anything but a
	# cursor is one.
	[[ $cursor =~ ^[0-9]+$ ]] || { echo "clean-redis.sh: $cursor" >&2; exit 1; }
	[ "$cursor" != 0 ] || exit 0
done
