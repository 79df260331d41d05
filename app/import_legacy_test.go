package app_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airshipltd/airship/cli"
	"github.com/airshipltd/airship/db/migrations"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/testbackend"
)

// runCommand runs airship with args in-process, with the backends of cfg,
// and returns what it printed and its error.
func runCommand(t *testing.T, cfg config.Config, args ...string) (string, error) {
	t.Helper()
	return runCommandIn(t, cfg, nil, args...)
}

// runCommandIn is runCommand with stdin as the standard input.
func runCommandIn(t *testing.T, cfg config.Config, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	if cfg.PostgresURL == "" && cfg.RedisURL == "" { // the embedded store
		args = append(args, "--data-dir", cfg.DataDir)
	} else {
		args = append(args, "--postgres-url", cfg.PostgresURL, "--redis-url", cfg.RedisURL, "--redis-prefix", cfg.RedisPrefix)
	}
	cmd := cli.Command()
	var out bytes.Buffer
	cmd.SetArgs(append(args, "--log-level", "warn"))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	if stdin != nil {
		cmd.SetIn(stdin)
	}
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

// oldProducts writes the old shop's product hashes under prefix and
// returns the SCAN pattern that finds them.
func oldProducts(t *testing.T) string {
	t.Helper()
	rdb, prefix := testbackend.Redis(t)
	ctx := t.Context()
	hash := func(id string, fields ...string) {
		t.Helper()
		if err := rdb.HSet(ctx, prefix+"products:"+id, append([]string{"id", id}, fields...)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	valid := func(title, stock string) []string {
		return []string{"title", title, "passenger_capacity", "101", "maximum_speed", "5", "in_stock", stock}
	}
	hash("the_odyssey", valid("The Odyssey", "10")...)
	hash("the_enigma", valid("The Enigma", "0")...)
	hash("same", valid("Same", "3")...)
	hash("existing", valid("Existing", "7")...)
	hash("negative", valid("Negative", "-3")...)
	hash("float", "title", "Float", "passenger_capacity", "101", "maximum_speed", "5.5", "in_stock", "1")
	hash("bad id", valid("Bad id", "1")...)
	hash("blank", valid("   ", "1")...)
	hash("extra", append(valid("Extra", "1"), "colour", "red")...)
	hash("missing", "title", "Missing", "in_stock", "1")
	if err := rdb.HSet(ctx, prefix+"products:mismatch", append([]string{"id", "other"}, valid("Mismatch", "1")...)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.RPush(ctx, prefix+"products:list", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, prefix+"unrelated", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	return prefix + "products:*"
}

// TestImportLegacy imports the old shop's Redis products into each
// store: valid ones are imported, broken ones listed with the reason,
// products already there are left alone unless --overwrite, a dry run
// writes nothing, and running it again changes nothing.
func TestImportLegacy(t *testing.T) {
	for _, b := range backends[:2] {
		t.Run(b.name, func(t *testing.T) {
			pattern := oldProducts(t)
			from := testbackend.RedisURL()
			cfg := b.config(t)
			s := startWith(t, cfg)
			s.expect(s.do("POST", "/products", `{"id": "same", "title": "Same", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 3}`), 200, "")
			s.expect(s.do("POST", "/products", `{"id": "existing", "title": "Existing", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 2}`), 200, "")
			before := s.do("GET", "/products?limit=100", "")

			out, err := runCommand(t, cfg, "import-legacy", "--from", from, "--pattern", pattern, "--dry-run", "--batch", "3")
			for _, want := range []string{"12 keys (dry run", "would be imported:          2", "already present and equal:  1", "conflicting:                1", "rejected:                   8"} {
				if !strings.Contains(out, want) {
					t.Fatalf("dry run report lacks %q:\n%s", want, out)
				}
			}
			if err == nil {
				t.Fatal("dry run with rejected products exited 0")
			}
			if after := s.do("GET", "/products?limit=100", ""); !bytes.Equal(after.body, before.body) {
				t.Fatalf("dry run wrote: %s", after.body)
			}

			out, err = runCommand(t, cfg, "import-legacy", "--from", from, "--pattern", pattern, "--batch", "3")
			if err == nil || !strings.Contains(err.Error(), "9 products not imported: 1 conflicting, 8 rejected") {
				t.Fatalf("import: %v\n%s", err, out)
			}
			for _, want := range []string{
				"imported:                   2",
				"existing: in_stock 2 here, 7 in the old shop",
				`products:bad id: id: must be 1 to 128 characters`,
				`products:blank: title: must be a string`,
				`products:extra: "colour": not a product field`,
				`products:float: maximum_speed: "5.5" must be an integer`,
				"products:list: not a hash",
				`products:mismatch: id: "other" does not match the key`,
				"products:missing: passenger_capacity: is missing; maximum_speed: is missing",
				`products:negative: in_stock: "-3" must be an integer from 0 to 2147483647`,
			} {
				if !strings.Contains(out, want) {
					t.Errorf("report lacks %q:\n%s", want, out)
				}
			}
			s.expect(s.do("GET", "/products/the_odyssey", ""), 200, odyssey)
			s.expect(s.do("GET", "/products/the_enigma", ""), 200, `{"id": "the_enigma", "title": "The Enigma", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 0}`)
			s.expect(s.do("GET", "/products/existing", ""), 200, `{"id": "existing", "title": "Existing", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 2}`)
			// The imported products are airship's own: orders take their stock.
			s.expect(s.do("POST", "/orders", orderOfOne), 200, "")
			imported := s.do("GET", "/products?limit=100", "")

			out, _ = runCommand(t, cfg, "import-legacy", "--from", from, "--pattern", pattern)
			if !strings.Contains(out, "imported:                   0") || !strings.Contains(out, "already present and equal:  2") {
				t.Fatalf("second import:\n%s", out)
			}
			if again := s.do("GET", "/products?limit=100", ""); !bytes.Equal(again.body, imported.body) {
				t.Fatalf("second import changed the products:\n%s\nwas\n%s", again.body, imported.body)
			}

			out, _ = runCommand(t, cfg, "import-legacy", "--from", from, "--pattern", pattern, "--overwrite")
			if !strings.Contains(out, "overwritten:                2") {
				t.Fatalf("import --overwrite:\n%s", out)
			}
			s.expect(s.do("GET", "/products/existing", ""), 200, `{"id": "existing", "title": "Existing", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 7}`)
			s.expect(s.do("GET", "/products/the_odyssey", ""), 200, odyssey)
		})
	}
}

// TestImportLegacyTouchesOnlyTheProducts: on the old shop's orders
// database, import-legacy writes the products and nothing else, and its
// dry run changes nothing at all: the database is not adopted or
// migrated, no key is written, and the migration guide's step "look
// before changing anything" can run it before migrate up.
func TestImportLegacyTouchesOnlyTheProducts(t *testing.T) {
	pattern := oldProducts(t)
	cfg := production(func(t testing.TB) string { return testbackend.LegacyPostgresURL(t, testbackend.LegacyOrders) })(t)
	rdb, _ := testbackend.Redis(t)
	keys := func() []string {
		t.Helper()
		ks, err := rdb.Keys(t.Context(), cfg.RedisPrefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	adopted := func() bool {
		t.Helper()
		db, err := sql.Open("postgres", cfg.PostgresURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		_, pending, err := migrations.Describe(t.Context(), db, migrations.Postgres)
		if err != nil {
			t.Fatal(err)
		}
		var goose *string
		if err := db.QueryRowContext(t.Context(), `SELECT to_regclass('goose_db_version')::text`).Scan(&goose); err != nil {
			t.Fatal(err)
		}
		return !pending || goose != nil
	}

	out, _ := runCommand(t, cfg, "import-legacy", "--from", testbackend.RedisURL(), "--pattern", pattern, "--dry-run")
	if !strings.Contains(out, "would be imported:          4") {
		t.Fatalf("dry run report:\n%s", out)
	}
	if adopted() {
		t.Error("the dry run adopted or migrated the old shop's orders database")
	}
	if ks := keys(); len(ks) != 0 {
		t.Errorf("the dry run wrote the keys %v", ks)
	}

	out, _ = runCommand(t, cfg, "import-legacy", "--from", testbackend.RedisURL(), "--pattern", pattern)
	if !strings.Contains(out, "imported:                   4") {
		t.Fatalf("import report:\n%s", out)
	}
	if adopted() {
		t.Error("import-legacy adopted or migrated the old shop's orders database, which holds no product")
	}
	if len(keys()) == 0 {
		t.Error("import-legacy wrote no product")
	}
}

// TestImportLegacyNeedsTheOldRedis: an unreachable source is an error
// that names it, with its password hidden.
func TestImportLegacyNeedsTheOldRedis(t *testing.T) {
	cfg := backends[1].config(t)
	out, err := runCommand(t, cfg, "import-legacy", "--from", "redis://:s3cret@127.0.0.1:1/0")
	if err == nil || !strings.Contains(err.Error(), "the old shop's Redis at redis://:xxxxx@127.0.0.1:1/0") || strings.Contains(err.Error()+out, "s3cret") {
		t.Fatalf("import-legacy from nowhere: %v\n%s", err, out)
	}
}

// TestImportLegacyFromClusterOrSentinelURL: --from may name a cluster's
// seed nodes or Sentinels; unreachable, each is an error naming the old
// shop's Redis (test/cluster reads a real cluster and Sentinel).
func TestImportLegacyFromClusterOrSentinelURL(t *testing.T) {
	cfg := backends[1].config(t)
	for _, from := range []string{
		"redis://127.0.0.1:1?addr=127.0.0.1:2",
		"redis://127.0.0.1:1/0?master_name=old-shop&addr=127.0.0.1:2",
	} {
		out, err := runCommand(t, cfg, "import-legacy", "--from", from)
		if err == nil || !strings.Contains(err.Error(), "the old shop's Redis at") {
			t.Errorf("import-legacy --from %s: %v\n%s; want an error naming the old shop's Redis", from, err, out)
		}
	}
}

// TestImportLegacyHostileHashes: what import-legacy prints of the old
// shop's keys, field names and values never carries a control character
// to the terminal, and stays short however long they are; a value too
// long for its field is refused by its length, without being read.
func TestImportLegacyHostileHashes(t *testing.T) {
	rdb, prefix := testbackend.Redis(t)
	ctx := t.Context()
	huge := strings.Repeat("x", 1<<20)
	hashes := map[string][]string{
		"products:\x1b]0;pwned\x07\x1b[2J": {"id", "other", "title", "T", "passenger_capacity", "1", "maximum_speed", "1", "in_stock", "1"},
		"products:long-title":              {"id", "long-title", "title", huge, "passenger_capacity", "1", "maximum_speed", "1", "in_stock", "1"},
		"products:long-stock":              {"id", "long-stock", "title", "T", "passenger_capacity", "1", "maximum_speed", "1", "in_stock", huge},
		"products:bell-field":              {"id", "bell-field", "title", "T", "passenger_capacity", "1", "maximum_speed", "1", "in_stock", "1", "\a\x1b[31mred", "v"},
		"products:bell-value":              {"id", "bell-value\x07", "title", "T", "passenger_capacity", "1", "maximum_speed", "1", "in_stock", "1"},
		"products:many-fields":             append([]string{"id", "many-fields", "title", "T", "passenger_capacity", "1", "maximum_speed", "1", "in_stock", "1"}, manyFields(40)...),
		"products:" + huge:                 {"id", "x", "title", "T", "passenger_capacity", "1", "maximum_speed", "1", "in_stock", "1"},
	}
	for key, fields := range hashes {
		if err := rdb.HSet(ctx, prefix+key, fields).Err(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := backends[1].config(t)
	out, err := runCommand(t, cfg, "import-legacy", "--from", testbackend.RedisURL(), "--pattern", prefix+"products:*")
	if err == nil || !strings.Contains(err.Error(), "7 rejected") {
		t.Fatalf("import-legacy: %v\n%.3000q", err, out)
	}
	for i, line := range strings.Split(out, "\n") {
		if strings.ContainsFunc(line, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Errorf("line %d of the report has a control character: %q", i+1, line)
		}
		if len(line) > 1024 {
			t.Errorf("line %d of the report is %d bytes long: %.200q…", i+1, len(line), line)
		}
	}
	for _, want := range []string{
		`products:\x1b]0;pwned\a\x1b[2J": id: "other" does not match the key`,
		"products:long-title: title: 1048576 bytes: must be a string of 1 to 512 characters",
		"products:long-stock: in_stock: 1048576 bytes: must be an integer from 0 to 2147483647",
		`products:bell-field: "\a\x1b[31mred": not a product field`,
		`products:bell-value: id: "bell-value\a" does not match the key`,
		"products:many-fields: 40 other fields: not product fields",
		"products:xxxxxxxx",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %s:\n%.3000q", want, out)
		}
	}
}

// manyFields are n fields that are not a product's, with their values.
func manyFields(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("extra-%d", i), "v")
	}
	return out
}

// BenchmarkImportLegacyLargeTitles runs import-legacy over 300 old
// product hashes whose titles are 1 MiB each (a Redis server of its own
// holds them) and reports the peak of the heap it sampled while the
// command ran (peak-heap-MiB) beside the bytes allocated: a value too
// long for its field is refused by its length, so neither grows with the
// titles (300 MiB of them).
func BenchmarkImportLegacyLargeTitles(b *testing.B) {
	rdb := testbackend.PrivateRedis(b)
	ctx := b.Context()
	title := strings.Repeat("t", 1<<20)
	for i := range 300 {
		id := fmt.Sprintf("big-%03d", i)
		if err := rdb.HSet(ctx, "products:"+id, "id", id, "title", title, "passenger_capacity", "1",
			"maximum_speed", "1", "in_stock", "1").Err(); err != nil {
			b.Fatal(err)
		}
	}
	from := "redis://" + rdb.Options().Addr + "/0"
	dataDir := b.TempDir()
	title = ""
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		cmd := cli.Command()
		cmd.SetArgs([]string{"import-legacy", "--from", from, "--dry-run", "--data-dir", dataDir, "--log-level", "warn"})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.ExecuteContext(ctx); err == nil || !strings.Contains(err.Error(), "300 rejected") {
			b.Fatalf("import-legacy: %v; want 300 rejected", err)
		}
	}
	close(stop)
	<-sampled
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}
