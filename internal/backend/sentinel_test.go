package backend

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/testbackend"
)

// TestSentinelUnknownMaster: Sentinels that answer but monitor no master
// of redis_url's master_name stop the start at once with a message that
// says so and names the masters they do monitor. It used to be retried
// for startup_timeout and reported as "all sentinels specified in
// configuration are unreachable".
func TestSentinelUnknownMaster(t *testing.T) {
	s := testbackend.NewRedisSentinel(t) // monitors "airship"
	log := slog.New(slog.DiscardHandler)
	cfg := config.Defaults()
	cfg.RedisMode, cfg.StartupTimeout = "sentinel", 3*time.Second
	cfg.RedisURL = strings.Replace(s.URL, "master_name=airship", "master_name=shop", 1)
	if cfg.RedisURL == s.URL {
		t.Fatalf("sentinel URL %s has no master_name=airship", s.URL)
	}
	rdb, _, err := ConnectRedis(t.Context(), cfg, StartupOf(cfg), log, errUnavailable, nil)
	if err == nil {
		rdb.Close()
		t.Fatal("connected through Sentinels that monitor no master named shop")
	}
	for _, want := range []string{`monitor no master named "shop"`, `"airship"`, "not retried"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q; want it to contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "unreachable") {
		t.Errorf("error %q calls Sentinels that answer unreachable", err)
	}

	// With one Sentinel not answering, the wrong name is reported and
	// waited out: the silent one may know it.
	cfg.RedisURL += "&addr=127.0.0.1:1"
	err = CheckSentinels(t.Context(), cfg)
	if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), `monitor no master named "shop"`) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("one Sentinel down, the other without the master: %v; want a transient error naming both", err)
	}

	cfg.RedisURL = s.URL
	rdb, _, err = ConnectRedis(t.Context(), cfg, StartupOf(cfg), log, errUnavailable, nil)
	if err != nil {
		t.Fatalf("the master the Sentinels monitor: %v", err)
	}
	rdb.Close()
}

// errUnavailable stands for the caller's error of a Redis that cannot be
// reached.
var errUnavailable = errors.New("redis unavailable")
