package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/internal/config"
)

// ConnectRedis opens the Redis client of cfg, in the mode cfg.RedisMode
// says or, for auto, the server says, once it answers (waiting as Wait
// does); instrument, if not nil, instruments it. ping, which pings every
// server holding data (PingRedis), reports a failure as unavailable, the
// caller's error for a Redis that cannot be reached.
func ConnectRedis(ctx context.Context, cfg config.Config, st Startup, log *slog.Logger, unavailable error,
	instrument func(redis.UniversalClient) error) (rdb redis.UniversalClient, ping func(context.Context) error, err error) {
	redis.SetLogger(redisLogger{log})
	mode := cfg.RedisMode
	if mode == "auto" {
		detect := func(ctx context.Context) error {
			m, err := DetectRedisMode(ctx, cfg)
			if err != nil {
				return fmt.Errorf("%w: redis: %w", unavailable, err)
			}
			mode = m
			return nil
		}
		if err := Wait(ctx, "redis", detect, st, log); err != nil {
			return nil, nil, err
		}
		log.Info("redis mode detected", "redis_mode", mode)
	}
	if mode == "sentinel" {
		if err := Wait(ctx, "redis", func(ctx context.Context) error { return CheckSentinels(ctx, cfg) }, st, log); err != nil {
			return nil, nil, err
		}
	}
	rdb, err = Redis(cfg, mode)
	if err != nil {
		return nil, nil, err
	}
	if instrument != nil {
		if err := instrument(rdb); err != nil {
			rdb.Close()
			return nil, nil, err
		}
	}
	ping = func(ctx context.Context) error {
		if err := PingRedis(ctx, rdb); err != nil {
			return fmt.Errorf("%w: redis: %w", unavailable, err)
		}
		return nil
	}
	if err := Wait(ctx, "redis", ping, st, log); err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return rdb, ping, nil
}

// PingRedis pings the server, or every master of a cluster: each holds a
// share of the products.
func PingRedis(ctx context.Context, rdb redis.UniversalClient) error {
	if c, ok := rdb.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return node.Ping(ctx).Err()
		})
	}
	return rdb.Ping(ctx).Err()
}

// Redis returns a bounded Redis client on cfg.RedisURL in mode
// (single, cluster or sentinel), whose every dial, read and write is
// bounded by cfg.BackendTimeout and the caller's context (on connections
// that move their deadlines only when they must, deadlineConn); it does
// not connect yet. The URL forms:
//
//	single    redis://[[USER]:PASSWORD@]HOST:PORT[/DB], rediss://…, unix:///path.sock?db=N
//	cluster   redis://[[USER]:PASSWORD@]HOST:PORT?addr=HOST:PORT&addr=HOST:PORT (seed nodes)
//	sentinel  redis://[[USER]:SENTINEL_PASSWORD@]HOST:26379[/DB]?master_name=NAME&addr=HOST:26379[&password=PASSWORD]
func Redis(cfg config.Config, mode string) (redis.UniversalClient, error) {
	if p := config.RedisModeProblem(cfg.RedisURL, mode); p != "" {
		return nil, errors.New("redis_url " + p)
	}
	t, size := cfg.BackendTimeout, cfg.RedisPoolSize
	switch mode {
	case "cluster":
		o, _ := redis.ParseClusterURL(cfg.RedisURL) // checked above
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.PoolSize = t, t, t, t, size
		// A command that meets a failover follows MOVED and ASK, and is
		// tried again on TRYAGAIN and CLUSTERDOWN, up to MaxRedirects
		// (go-redis' default, 3) times.
		o.ContextTimeoutEnabled, o.MaxRetries = true, 1
		o.Dialer = withDeadlineConns(redis.NewDialer(&redis.Options{DialTimeout: t, TLSConfig: o.TLSConfig}), slackOf(t))
		return redis.NewClusterClient(o), nil
	case "sentinel":
		o, _ := redis.ParseFailoverURL(cfg.RedisURL)
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.PoolSize = t, t, t, t, size
		o.ContextTimeoutEnabled, o.MaxRetries = true, 1
		o.Dialer = withDeadlineConns(redis.NewDialer(&redis.Options{DialTimeout: t, TLSConfig: o.TLSConfig}), slackOf(t))
		return redis.NewFailoverClient(o), nil
	default:
		o, _ := redis.ParseURL(cfg.RedisURL)
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.PoolSize = t, t, t, t, size
		o.ContextTimeoutEnabled, o.MaxRetries = true, 1
		o.Dialer = withDeadlineConns(redis.NewDialer(o), slackOf(t))
		return redis.NewClient(o), nil
	}
}

// DetectRedisMode asks the first server of cfg.RedisURL whether it is a
// member of a cluster (INFO cluster): "cluster" or "single". A Sentinel
// is refused: its URL needs redis_mode sentinel and a master_name.
func DetectRedisMode(ctx context.Context, cfg config.Config) (string, error) {
	o, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		co, cerr := redis.ParseClusterURL(cfg.RedisURL)
		if cerr != nil {
			return "", errors.New("redis_url " + config.RedisModeProblem(cfg.RedisURL, "auto"))
		}
		o = &redis.Options{Addr: co.Addrs[0], Username: co.Username, Password: co.Password, TLSConfig: co.TLSConfig}
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = cfg.BackendTimeout, cfg.BackendTimeout, cfg.BackendTimeout
	o.PoolSize, o.MaxRetries = 1, -1
	c := redis.NewClient(o)
	defer c.Close()
	info, err := c.Info(ctx, "server", "cluster").Result()
	if err != nil {
		return "", err
	}
	switch {
	case strings.Contains(info, "redis_mode:sentinel"):
		return "", Permanent{ErrSentinelURL}
	case strings.Contains(info, "cluster_enabled:1"):
		return "cluster", nil
	}
	return "single", nil
}

// CheckSentinels asks each Sentinel of cfg.RedisURL for the address of the
// master named by master_name: nil as soon as one knows it. When every
// Sentinel answers and none monitors a master of that name, the error is
// permanent and names the masters they do monitor; go-redis would call
// such Sentinels unreachable.
func CheckSentinels(ctx context.Context, cfg config.Config) error {
	o, err := redis.ParseFailoverURL(cfg.RedisURL)
	if err != nil {
		return errors.New("redis_url " + config.RedisModeProblem(cfg.RedisURL, "sentinel"))
	}
	var unreachable []error
	var answered, monitored []string
	for _, addr := range o.SentinelAddrs {
		c := redis.NewSentinelClient(&redis.Options{
			Addr: addr, Username: o.SentinelUsername, Password: o.SentinelPassword, TLSConfig: o.TLSConfig,
			DialTimeout: cfg.BackendTimeout, ReadTimeout: cfg.BackendTimeout, WriteTimeout: cfg.BackendTimeout,
			// One command, one dial: a pool of 2 never has every
			// connection fail, which would start go-redis' background
			// redialling that outlives Close by a second.
			PoolSize: 2, MaxRetries: -1,
		})
		_, err := c.GetMasterAddrByName(ctx, o.MasterName).Result()
		if errors.Is(err, redis.Nil) {
			answered = append(answered, addr)
			monitored = append(monitored, masterNames(c.Masters(ctx).Val())...)
		}
		c.Close()
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, redis.Nil):
			unreachable = append(unreachable, fmt.Errorf("sentinel %s: %w", addr, err))
		}
	}
	if len(answered) == 0 {
		return errors.Join(unreachable...)
	}
	slices.Sort(monitored)
	names := "none"
	if monitored = slices.Compact(monitored); len(monitored) > 0 {
		names = `"` + strings.Join(monitored, `", "`) + `"`
	}
	unknown := fmt.Errorf("the Sentinels at %s answer but monitor no master named %q (they monitor %s): set master_name in redis_url to the name in their sentinel monitor line",
		strings.Join(answered, ", "), o.MasterName, names)
	if len(unreachable) > 0 {
		// One of those that did not answer may know it.
		return errors.Join(append([]error{unknown}, unreachable...)...)
	}
	return Permanent{unknown}
}

// masterNames returns the names in a SENTINEL MASTERS reply: a list of
// field-value lists (RESP2) or of maps (RESP3).
func masterNames(reply []any) []string {
	var names []string
	for _, m := range reply {
		switch m := m.(type) {
		case []any:
			for i := 0; i+1 < len(m); i += 2 {
				if m[i] == "name" {
					names = append(names, fmt.Sprint(m[i+1]))
				}
			}
		case map[any]any:
			if n, ok := m["name"]; ok {
				names = append(names, fmt.Sprint(n))
			}
		}
	}
	return names
}

// ErrSentinelURL is DetectRedisMode's answer for a Sentinel.
var ErrSentinelURL = errors.New("redis_url names a Sentinel: set redis_mode sentinel and master_name")

// redisLogger sends go-redis's own messages (failed dials and the like)
// to airship's log at debug: they come once per attempt, and an outage is
// reported once by the gateway's outage log.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
