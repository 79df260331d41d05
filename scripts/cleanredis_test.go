package scripts

import (
	"net"
	"os/exec"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/internal/testbackend"
)

// TestCleanRedis: clean-redis.sh, which the perf scripts clean their key
// prefix with, deletes every key under its prefix, more than one SCAN
// page of them, and no other key.
func TestCleanRedis(t *testing.T) {
	ctx := t.Context()
	rdb, prefix := testbackend.Redis(t)
	target := prefix + "clean:"
	pipe := rdb.Pipeline()
	for i := range 12_000 {
		pipe.Set(ctx, target+strconv.Itoa(i), "x", 0)
	}
	pipe.Set(ctx, prefix+"kept", "x", 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	opts, err := redis.ParseURL(testbackend.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "clean-redis.sh", target, "-h", host, "-p", port, "-n", strconv.Itoa(opts.DB)).CombinedOutput(); err != nil {
		t.Fatalf("clean-redis.sh: %v: %s", err, out)
	}
	left := 0
	it := rdb.Scan(ctx, 0, target+"*", 10_000).Iterator()
	for it.Next(ctx) {
		left++
	}
	if err := it.Err(); err != nil || left != 0 {
		t.Fatalf("%d keys left under the prefix (%v); want none", left, err)
	}
	if n, err := rdb.Exists(ctx, prefix+"kept").Result(); err != nil || n != 1 {
		t.Fatalf("the key outside the prefix: exists %d, %v; want it kept", n, err)
	}
}
