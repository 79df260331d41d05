package telemetry

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// RedisHook times every Redis command and pipeline into the backend
// metrics (when metrics is not nil) and names the span that redisotel
// opened for it after the same operation (when tracing is on). It must be
// added after redisotel's hook, so that it runs inside its span.
//
// The operation is the command's name (hmget, zadd), "script:NAME" for a
// Lua script called by its SHA (scripts names the SHAs), and for a
// pipeline "pipeline:NAME" after its script or else its commands, so
// that the label's values are as few as the code's own calls.
type RedisHook struct {
	metrics *Metrics
	traced  bool
	// scripts maps a script's SHA1 to its operation as a command
	// ("script:NAME") and as a pipeline ("pipeline:NAME").
	scripts map[string][2]string
	// pipelines caches the operation of pipelines without a script, by
	// their first distinct commands.
	mu        sync.RWMutex
	pipelines map[pipelineShape]string
}

// pipelineShape is the distinct commands of a pipeline, in order (at most
// four: a longer list is named after its first four).
type pipelineShape [4]string

var _ redis.Hook = (*RedisHook)(nil)

// NewRedisHook returns the hook; scripts maps a Lua script's SHA1 to its
// name; traced says whether redisotel's spans are there to be named.
func NewRedisHook(metrics *Metrics, traced bool, scripts map[string]string) *RedisHook {
	h := &RedisHook{metrics: metrics, traced: traced, scripts: map[string][2]string{}, pipelines: map[pipelineShape]string{}}
	for sha, name := range scripts {
		h.scripts[sha] = [2]string{"script:" + name, "pipeline:" + name}
	}
	return h
}

// DialHook implements redis.Hook: dials are timed as operation "dial".
func (h *RedisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		began := time.Now()
		c, err := next(ctx, network, addr)
		h.observe(ctx, "dial", began, err)
		return c, err
	}
}

// ProcessHook implements redis.Hook.
func (h *RedisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		began := time.Now()
		err := next(ctx, cmd)
		h.observe(ctx, h.operation(cmd), began, err)
		return err
	}
}

// ProcessPipelineHook implements redis.Hook.
func (h *RedisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		began := time.Now()
		err := next(ctx, cmds)
		h.observe(ctx, h.pipelineOperation(cmds), began, err)
		return err
	}
}

func (h *RedisHook) observe(ctx context.Context, op string, began time.Time, err error) {
	if h.traced {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.SetName("redis " + op)
			span.SetAttributes(attribute.String("db.operation", op))
		}
	}
	if h.metrics != nil {
		h.metrics.observeBackend("redis", op, time.Since(began), err != nil && !errors.Is(err, redis.Nil))
	}
}

// operation names one command.
func (h *RedisHook) operation(cmd redis.Cmder) string {
	name := cmd.Name()
	switch name {
	case "evalsha", "evalsha_ro", "eval", "eval_ro":
		args := cmd.Args()
		if len(args) > 1 {
			if s, ok := args[1].(string); ok {
				if n, ok := h.scripts[s]; ok {
					return n[0]
				}
			}
		}
		return "script:unknown"
	case "script":
		return "script_load"
	}
	if known(name) {
		return name
	}
	return "other"
}

// pipelineOperation names a pipeline after its first script, or else its
// distinct commands in order ("pipeline:hdel+zrem+del").
func (h *RedisHook) pipelineOperation(cmds []redis.Cmder) string {
	var (
		shape pipelineShape
		n     int
	)
	for _, c := range cmds {
		switch name := c.Name(); name {
		case "evalsha", "evalsha_ro", "eval", "eval_ro":
			if args := c.Args(); len(args) > 1 {
				if sha, ok := args[1].(string); ok {
					if s, ok := h.scripts[sha]; ok {
						return s[1]
					}
				}
			}
			return "pipeline:unknown"
		case "multi", "exec":
		default:
			if n == len(shape) {
				continue
			}
			dup := false
			for _, seen := range shape[:n] {
				dup = dup || seen == name
			}
			if !dup {
				shape[n] = name
				n++
			}
		}
	}
	h.mu.RLock()
	op, ok := h.pipelines[shape]
	h.mu.RUnlock()
	if ok {
		return op
	}
	names := make([]string, 0, n)
	for _, name := range shape[:n] {
		if !known(name) {
			name = "other"
		}
		names = append(names, name)
	}
	op = "pipeline:" + strings.Join(names, "+")
	h.mu.Lock()
	h.pipelines[shape] = op
	h.mu.Unlock()
	return op
}

// known reports whether name is a plain Redis command name: lower-case
// letters and underscores, as go-redis sends them. Anything else is
// labelled "other".
func known(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// RedisPoolCollector exports the statistics of a go-redis client's
// connection pool.
type RedisPoolCollector struct {
	stats func() *redis.PoolStats
	size  int

	hits, misses, timeouts, total, idle, stale, max *prometheus.Desc
}

// NewRedisPoolCollector returns a collector of stats, the pool of a client
// of the given size.
func NewRedisPoolCollector(stats func() *redis.PoolStats, size int) *RedisPoolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("airship_redis_pool_"+name, help, nil, nil)
	}
	return &RedisPoolCollector{stats: stats, size: size,
		hits:     d("hits_total", "Times a free connection was found in the pool."),
		misses:   d("misses_total", "Times no free connection was in the pool (a new one was dialled or waited for)."),
		timeouts: d("timeouts_total", "Times a command waited for a connection longer than the pool timeout."),
		total:    d("connections", "Connections in the pool, idle or in use."),
		idle:     d("idle_connections", "Idle connections in the pool."),
		stale:    d("stale_connections_total", "Stale connections removed from the pool."),
		max:      d("max_connections", "Size of the pool (redis_pool_size)."),
	}
}

// Describe implements prometheus.Collector.
func (c *RedisPoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.timeouts, c.total, c.idle, c.stale, c.max} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *RedisPoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(c.timeouts, prometheus.CounterValue, float64(s.Timeouts))
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(s.TotalConns))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.IdleConns))
	ch <- prometheus.MustNewConstMetric(c.stale, prometheus.CounterValue, float64(s.StaleConns))
	ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(c.size))
}
