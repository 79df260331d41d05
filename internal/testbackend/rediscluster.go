package testbackend

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const installRedis = "install redis-server and redis-cli (apt-get install -y redis-server)"

// RedisCluster is a Redis Cluster of three masters, each with one replica,
// that a test started on loopback ports and stops when it ends.
type RedisCluster struct {
	// Addrs are the six nodes' addresses (host:port).
	Addrs []string
	procs []*exec.Cmd
}

// NewRedisCluster starts six `redis-server --cluster-enabled yes` on free
// loopback ports below the ephemeral range (each node's bus port is its
// port + 10000, below that range too),
// joins them with `redis-cli --cluster create … --cluster-replicas 1`,
// and waits until every node reports the cluster ok and every replica is
// in sync. The nodes keep nothing on disk but their cluster state, in a
// temporary directory.
func NewRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	skipInShortMode(t, "a Redis Cluster (redis-server)")
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("the Redis Cluster tests start their own cluster and need %s: %s", bin, installRedis)
		}
	}
	// The directory first: cleanups run last first, so the servers stop
	// before their directory is removed.
	dir := t.TempDir()
	c := &RedisCluster{}
	t.Cleanup(c.stop)
	ports := freePorts(t, 6)
	for _, port := range ports {
		p := strconv.Itoa(port)
		cmd := exec.Command("redis-server", "--port", p, "--bind", "127.0.0.1", "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-"+p+".conf"), "--cluster-node-timeout", "2000",
			"--dir", dir, "--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, p+".log"))
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v; %s", err, installRedis)
		}
		c.procs = append(c.procs, cmd)
		c.Addrs = append(c.Addrs, "127.0.0.1:"+p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, addr := range c.Addrs {
		c.waitNode(ctx, t, addr, dir, func(n *redis.Client) bool { return n.Ping(ctx).Err() == nil })
	}
	create := exec.CommandContext(ctx, "redis-cli", append(append([]string{"--cluster", "create"}, c.Addrs...),
		"--cluster-replicas", "1", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy(t)
	return c
}

// WaitHealthy waits until every node sees the cluster ok with all six
// nodes, three masters, and every replica's link to its master up.
func (c *RedisCluster) WaitHealthy(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, addr := range c.Addrs {
		c.waitNode(ctx, t, addr, "", func(n *redis.Client) bool {
			info, err := n.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:6") ||
				!strings.Contains(info, "cluster_size:3") {
				return false
			}
			repl, err := n.Info(ctx, "replication").Result()
			return err == nil && (strings.Contains(repl, "role:master") || strings.Contains(repl, "master_link_status:up"))
		})
	}
}

func (c *RedisCluster) waitNode(ctx context.Context, t testing.TB, addr, dir string, ok func(*redis.Client) bool) {
	t.Helper()
	n := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer n.Close()
	for !ok(n) {
		select {
		case <-ctx.Done():
			logs := ""
			if dir != "" {
				b, _ := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(addr, "127.0.0.1:")+".log"))
				logs = string(b)
			}
			t.Fatalf("Redis Cluster node %s not ready in time\n%s", addr, logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// URL is the cluster's URL in go-redis' form: the first node, the others
// as addr parameters.
func (c *RedisCluster) URL() string {
	u := "redis://" + c.Addrs[0]
	for i, a := range c.Addrs[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + a
	}
	return u
}

// Client returns a cluster client, closed when the test ends.
func (c *RedisCluster) Client(t testing.TB) *redis.ClusterClient {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// node is a line of CLUSTER NODES.
type node struct{ id, addr, flags, master string }

func (c *RedisCluster) nodes(ctx context.Context, t testing.TB) []node {
	t.Helper()
	n := redis.NewClient(&redis.Options{Addr: c.Addrs[0]})
	defer n.Close()
	raw, err := n.ClusterNodes(ctx).Result()
	if err != nil {
		t.Fatalf("CLUSTER NODES: %v", err)
	}
	var out []node
	for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		out = append(out, node{id: f[0], addr: addr, flags: f[2], master: f[3]})
	}
	return out
}

// Masters returns the addresses of the current masters.
func (c *RedisCluster) Masters(t testing.TB) []string {
	var out []string
	for _, n := range c.nodes(context.Background(), t) {
		if strings.Contains(n.flags, "master") && !strings.Contains(n.flags, "fail") {
			out = append(out, n.addr)
		}
	}
	return out
}

// Failover promotes a replica of the master at masterAddr with CLUSTER
// FAILOVER run on the replica (a coordinated failover: the master stops
// taking writes until the replica has them all, then they swap roles),
// waits until the replica is master, and returns its address.
func (c *RedisCluster) Failover(t testing.TB, masterAddr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var masterID, replica string
	all := c.nodes(ctx, t)
	for _, n := range all {
		if n.addr == masterAddr {
			masterID = n.id
		}
	}
	for _, n := range all {
		if masterID != "" && n.master == masterID {
			replica = n.addr
		}
	}
	if replica == "" {
		t.Fatalf("no replica of master %s in the cluster", masterAddr)
	}
	r := redis.NewClient(&redis.Options{Addr: replica})
	defer r.Close()
	if err := r.Do(ctx, "CLUSTER", "FAILOVER").Err(); err != nil {
		t.Fatalf("CLUSTER FAILOVER on %s: %v", replica, err)
	}
	for {
		role, err := r.Do(ctx, "ROLE").Slice()
		if err == nil && len(role) > 0 && role[0] == "master" {
			return replica
		}
		select {
		case <-ctx.Done():
			t.Fatalf("replica %s did not become master after CLUSTER FAILOVER", replica)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *RedisCluster) stop() {
	for _, p := range c.procs {
		if p.Process != nil {
			p.Process.Kill()
			p.Wait()
		}
	}
}

// freePorts returns n consecutive loopback ports such that each port and
// its cluster bus port (port + 10000) are free and below the kernel's
// ephemeral range: there no outgoing connection can take a port between
// this check and the server's bind, and none in TIME_WAIT can hold it.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	const lowest = 10000
	highest := EphemeralPortLow() - 10000 - n // the last bus port stays below the range
	if highest < lowest {
		t.Fatalf("the ephemeral port range starts at %d: no room below it for %d ports and their bus ports", EphemeralPortLow(), n)
	}
	for range 50 {
		base := lowest + rand.IntN(highest-lowest+1)
		var ports []int
		for p := base; p < base+n; p++ {
			if !portFree(p) || !portFree(p+10000) {
				break
			}
			ports = append(ports, p)
		}
		if len(ports) == n {
			return ports
		}
	}
	t.Fatalf("found no %d free loopback ports (with their bus ports) below the ephemeral range", n)
	return nil
}

// EphemeralPortLow is the first port of the kernel's ephemeral range,
// from which outgoing connections take their local ports (Linux's default
// when the range cannot be read).
func EphemeralPortLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return low
}

// portFree reports whether a listener can bind the loopback port now.
// It binds rather than connects: a port that a client connection holds,
// even in TIME_WAIT, refuses connections but cannot be bound.
func portFree(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// RedisSentinel is a Redis primary with one replica, watched by one
// Sentinel, that a test started on loopback ports.
type RedisSentinel struct {
	// URL is go-redis' Sentinel URL: the Sentinel's address and the
	// primary's name.
	URL   string
	procs []*exec.Cmd
}

// NewRedisSentinel starts a primary, a replica of it and a Sentinel that
// monitors them under the name "airship", and waits until the Sentinel
// knows the primary and its replica.
func NewRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	skipInShortMode(t, "Redis Sentinel (redis-server)")
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("the Sentinel tests start their own servers and need redis-server: %s", installRedis)
	}
	dir := t.TempDir() // before the servers' cleanup, which then runs first
	s := &RedisSentinel{}
	t.Cleanup(func() { (&RedisCluster{procs: s.procs}).stop() })
	ports := freePorts(t, 3)
	primary, replica, sentinel := strconv.Itoa(ports[0]), strconv.Itoa(ports[1]), strconv.Itoa(ports[2])
	start := func(args ...string) {
		cmd := exec.Command("redis-server", args...)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v; %s", err, installRedis)
		}
		s.procs = append(s.procs, cmd)
	}
	common := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}
	start(append([]string{"--port", primary, "--logfile", filepath.Join(dir, "primary.log")}, common...)...)
	start(append([]string{"--port", replica, "--replicaof", "127.0.0.1", primary, "--logfile", filepath.Join(dir, "replica.log")}, common...)...)
	conf := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(conf, []byte("port "+sentinel+"\nbind 127.0.0.1\ndir "+dir+"\n"+
		"sentinel monitor airship 127.0.0.1 "+primary+" 1\nsentinel down-after-milliseconds airship 2000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start(conf, "--sentinel", "--logfile", filepath.Join(dir, "sentinel.log"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := &RedisCluster{}
	c.waitNode(ctx, t, "127.0.0.1:"+sentinel, dir, func(n *redis.Client) bool {
		replicas, err := n.Do(ctx, "SENTINEL", "REPLICAS", "airship").Slice()
		return err == nil && len(replicas) == 1
	})
	s.URL = "redis://127.0.0.1:" + sentinel + "/0?master_name=airship"
	return s
}

// PrivateRedis starts a Redis server of the test's own on a free loopback
// port and returns a client of it; both end with the test. For tests that
// do what would disturb other tests on the shared server (SCRIPT FLUSH,
// FLUSHALL, a restart).
func PrivateRedis(t testing.TB) *redis.Client {
	t.Helper()
	skipInShortMode(t, "a Redis server of its own (redis-server)")
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("this test starts its own Redis server and needs redis-server: %s", installRedis)
	}
	dir := t.TempDir()
	p := strconv.Itoa(freePorts(t, 1)[0])
	cmd := exec.Command("redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, p+".log"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v; %s", err, installRedis)
	}
	t.Cleanup((&RedisCluster{procs: []*exec.Cmd{cmd}}).stop)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	(&RedisCluster{}).waitNode(ctx, t, "127.0.0.1:"+p, dir, func(n *redis.Client) bool { return n.Ping(ctx).Err() == nil })
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + p})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}
