package cluster_test

import (
	"strings"
	"testing"

	"github.com/airshipltd/airship/cli"
	"github.com/airshipltd/airship/internal/backend"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/productstest"
	"github.com/airshipltd/airship/products/redisstore"
)

// TestRedisSentinel: in redis_mode sentinel airship finds the primary
// through a Sentinel, and the products contract suite passes on it, as
// does import-legacy from it; in auto mode a Sentinel's URL is refused
// with what to set instead.
func TestRedisSentinel(t *testing.T) {
	s := testbackend.NewRedisSentinel(t)
	cfg := config.Defaults()
	cfg.RedisURL, cfg.RedisMode = s.URL, "sentinel"
	rdb, err := backend.Redis(cfg, "sentinel")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	productstest.Run(t, func(t *testing.T) products.Store {
		return redisstore.New(rdb, testbackend.Name("airship-sentinel:")+":")
	})

	t.Run("ImportLegacy", func(t *testing.T) { testImportLegacy(t, rdb, s.URL) })
	t.Run("ImportLegacyNeedsTheMastersName", func(t *testing.T) {
		for from, want := range map[string]string{
			strings.Split(s.URL, "?")[0]:                       "it is a Sentinel: add master_name=NAME",
			strings.Replace(s.URL, "=airship", "=old-shop", 1): `monitor no master named "old-shop" (they monitor "airship")`,
		} {
			cmd := cli.Command()
			var out strings.Builder
			cmd.SetArgs([]string{"import-legacy", "--from", from, "--data-dir", t.TempDir(), "--log-level", "warn"})
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			if err := cmd.ExecuteContext(t.Context()); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("import-legacy --from %s: %v\n%s; want an error saying %s", from, err, out.String(), want)
			}
		}
	})

	cfg.RedisMode = "auto"
	if _, err := backend.DetectRedisMode(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "set redis_mode sentinel") {
		t.Fatalf("DetectRedisMode on a Sentinel: %v; want an error saying to set redis_mode sentinel", err)
	}
}
