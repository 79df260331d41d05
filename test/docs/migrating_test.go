package docs

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/internal/testbackend"
)

// TestDocMovingBetweenStores moves a shop as docs/migrating.md does: from
// the embedded store to PostgreSQL + Redis (the …: a database and a key
// prefix of the test's own) and back to a local copy, which must export
// byte for byte as the original; then exports for the releases that read
// only version 1 of the dump: the same records, which import as the same
// shop.
func TestDocMovingBetweenStores(t *testing.T) {
	blocks := docBlocks(t, "docs/migrating.md", 2)
	move := pick(t, blocks, "airship import --in")
	v1 := pick(t, blocks, "--dump-version 1")
	pg := testbackend.EmptyPostgresURL(t)
	sh := newShell(t, "AIRSHIP_REDIS_PREFIX="+testbackend.RedisPrefix(t))

	// The shop in ./data, and what it exports.
	sh.runText("airship seed --products 40 --orders 15\nairship export --out want.jsonl")
	want := sh.file("want.jsonl")

	sh.runText(rewrite(t, move,
		sub{"AIRSHIP_POSTGRES_URL=…", "AIRSHIP_POSTGRES_URL='" + pg + "'"},
		sub{"AIRSHIP_REDIS_URL=…", "AIRSHIP_REDIS_URL='" + testbackend.RedisURL() + "'"},
	))
	if got := sh.file("shop.jsonl"); got != want {
		t.Errorf("PostgreSQL + Redis export a dump other than the embedded store's:\n%s\nwant\n%s", got, want)
	}
	sh.runText("airship export --data-dir ./copy --out copy.jsonl")
	if got := sh.file("copy.jsonl"); got != want {
		t.Errorf("the local copy exports a dump other than the original's:\n%s\nwant\n%s", got, want)
	}

	checkNotes(t, sh.runText(v1.text), map[string]func(result) error{
		"byte for byte what those releases wrote": func(result) error {
			got, wantLines := strings.Split(sh.file("shop-v1.jsonl"), "\n"), strings.Split(want, "\n")
			if got[0] != `{"airship_dump":{"version":1}}` {
				return fmt.Errorf("header %s", got[0])
			}
			if len(got) != len(wantLines) || !slices.Equal(got[1:len(got)-2], wantLines[1:len(wantLines)-2]) {
				return fmt.Errorf("records other than version 2's")
			}
			return nil
		},
	})
	sh.runText("airship import --data-dir ./v1 --in shop-v1.jsonl\nairship export --data-dir ./v1 --out v1.jsonl")
	if got := sh.file("v1.jsonl"); got != want {
		t.Errorf("the version 1 dump imports as a shop other than the original:\n%s\nwant\n%s", got, want)
	}
}

// TestDocMigratingFromTheOldShop takes the steps of docs/migrating.md
// from the old shop to airship and back, on the old shop's orders
// database (testbackend.LegacySchema, with its orders) and its Redis (a
// redis-server of the test's own, for old-redis, holding the old
// products hashes), with airship's Redis keys under a prefix of the
// test's own: look, adopt and import, serve and check, and write the
// products back to the old hashes.
func TestDocMigratingFromTheOldShop(t *testing.T) {
	blocks := docBlocks(t, "docs/migrating.md", 4)
	look := pick(t, blocks, "is here:")
	adopt := pick(t, blocks, "airship migrate up ")
	check := pick(t, blocks, "airship serve &")
	back := pick(t, blocks, "redis-cli -u")

	pg := testbackend.LegacyPostgresURL(t, testbackend.LegacyOrders)
	prefix := testbackend.RedisPrefix(t)
	oldRedis := startRedis(t)
	old := redis.NewClient(&redis.Options{Addr: oldRedis})
	defer old.Close()
	ctx := t.Context()
	for id, fields := range map[string][]any{
		"the_odyssey": {"id", "the_odyssey", "title", "The Odyssey", "passenger_capacity", "101", "maximum_speed", "5", "in_stock", "10"},
		"the_enigma":  {"id", "the_enigma", "title", "The Enigma", "passenger_capacity", "20", "maximum_speed", "40", "in_stock", "4"},
	} {
		if err := old.HSet(ctx, "products:"+id, fields...).Err(); err != nil {
			t.Fatal(err)
		}
	}

	addr, _, env, ports := listeners(t)
	sh := newShell(t, append(env, "AIRSHIP_POSTGRES_URL="+pg, "AIRSHIP_REDIS_URL="+testbackend.RedisURL(), "AIRSHIP_REDIS_PREFIX="+prefix)...)
	oldURL := sub{"redis://old-redis:6379/0", "redis://" + oldRedis + "/0"}

	// 3. Look: migrate status finds the old schema, the dry run says what
	// it would import, and neither changes anything.
	cmds := commands(rewrite(t, look, oldURL))
	if len(cmds) != 2 {
		t.Fatalf("%s: want migrate status and the dry run, got %q", look, texts(cmds))
	}
	results := sh.run(cmds...)
	checkSaid(t, results)
	if adopted(t, pg) {
		t.Errorf("%s adopted the orders database", look)
	}
	if n := keys(t, prefix+"*"); n != 0 || !strings.Contains(results[1].stdout, "would be imported:          2") {
		t.Errorf("the dry run wrote %d keys; want none, and that it would import both products:\n%s", n, results[1].stdout)
	}

	// 4. Adopt and import: migrate up, the import.
	cmds = commands(rewrite(t, adopt, oldURL))
	if len(cmds) != 3 {
		t.Fatalf("%s: want migrate up, the import and migrate status, got %q", adopt, texts(cmds))
	}
	results = sh.run(cmds...)
	checkNotes(t, results, map[string]func(result) error{
		"adopts the orders database; prints and logs the changes": func(r result) error {
			if !strings.Contains(r.stdout, "adopted the old shop's schema") || !strings.Contains(r.stderr, `"msg":"adopted the old shop's schema in place"`) {
				return fmt.Errorf("it does not both print and log the adoption")
			}
			return nil
		},
		"adopted the old shop's schema (…) on …, keeping N orders and M order lines": func(r result) error {
			if !prints(r.stdout, r.note) || !strings.Contains(r.stdout, "keeping 3 orders and 4 order lines") {
				return fmt.Errorf("it does not say so, with the old shop's 3 orders and 4 lines")
			}
			return nil
		},
	})
	if n := keys(t, prefix+"product:*"); n != 2 {
		t.Errorf("%d products imported; want the old shop's 2", n)
	}

	// 5. Serve, and read the products and the old orders back; then, for
	// a line whose product no longer exists, the_odyssey is deleted.
	cmds = commands(rewrite(t, check, ports[0]))
	if len(cmds) != 4 {
		t.Fatalf("%s: want serve and three reads, got %q", check, texts(cmds))
	}
	srv := sh.start(cmds[0], "http://"+addr+"/readyz")
	results = sh.run(cmds[1:]...)
	if !strings.Contains(results[0].stdout, `"id":"the_enigma"`) || !strings.Contains(results[0].stdout, `"id":"the_odyssey"`) {
		t.Errorf("the product listing lacks the imported products:\n%s", results[0].stdout)
	}
	checkOldOrders(t, "http://"+addr, results[1].stdout, results[2].stdout)

	// Rolling back after traffic moved: stock changed through airship
	// goes back to the old hash.
	post(t, "http://"+addr+"/orders", `{"order_details": [{"product_id": "the_enigma", "price": "10.00", "quantity": 1}]}`)
	sh.run(commands(rewrite(t, back, oldURL))...)
	got, err := old.HGetAll(ctx, "products:the_enigma").Result()
	if err != nil {
		t.Fatal(err)
	}
	if w := map[string]string{"id": "the_enigma", "title": "The Enigma", "passenger_capacity": "20", "maximum_speed": "40", "in_stock": "3"}; !maps.Equal(got, w) {
		t.Errorf("the old hash products:the_enigma is %v after writing back; want %v", got, w)
	}
	srv.stop()
}

// checkOldOrders checks the old shop's orders (testbackend.LegacyOrders)
// as `GET /orders?limit=5` lists them (listing) and `GET /orders/1` shows
// the first (first): field for field, prices with two decimals, the
// product with each line; then deletes the_odyssey, after which order
// 1's line shows "product": null.
func checkOldOrders(t *testing.T, base, listing, first string) {
	t.Helper()
	type line struct {
		ID        int             `json:"id"`
		ProductID string          `json:"product_id"`
		Price     string          `json:"price"`
		Quantity  int             `json:"quantity"`
		Product   json.RawMessage `json:"product,omitempty"`
	}
	type order struct {
		ID           int    `json:"id"`
		OrderDetails []line `json:"order_details"`
	}
	var orders []order
	if err := json.Unmarshal([]byte(listing), &orders); err != nil || len(orders) != 3 {
		t.Fatalf("GET /orders?limit=5: %v\n%s", err, listing)
	}
	want := []order{
		{1, []line{{1, "the_odyssey", "100000.99", 1, nil}}},
		{2, []line{{2, "the_odyssey", "5.00", 2, nil}, {3, "the_enigma", "99.90", 1, nil}}},
		{4, []line{{5, "the_enigma", "0.00", 3, nil}}},
	}
	if !reflect.DeepEqual(orders, want) {
		t.Errorf("the old orders are listed as\n%s\nwant %+v", listing, want)
	}
	var o order
	if err := json.Unmarshal([]byte(first), &o); err != nil || len(o.OrderDetails) != 1 || !strings.HasPrefix(string(o.OrderDetails[0].Product), `{"id":"the_odyssey",`) {
		t.Errorf("GET /orders/1: %v\n%s\nwant its line with the product the_odyssey", err, first)
	}
	req, err := http.NewRequest("DELETE", base+"/products/the_odyssey", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE /products/the_odyssey: %s", resp.Status)
	}
	get(t, base+"/orders/1", &o)
	if len(o.OrderDetails) != 1 || string(o.OrderDetails[0].Product) != "null" {
		t.Errorf("GET /orders/1 after the_odyssey was deleted: %+v; want its line's product null", o)
	}
}

// startRedis starts a redis-server of the test's own on a free loopback
// port, for the old shop's Redis, and returns its address; it stops when
// the test ends.
func startRedis(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("this test starts a Redis server of its own for the old shop's and needs redis-server: apt-get install -y redis-server")
	}
	dir := t.TempDir()
	addr := testbackend.FreeAddr(t)
	cmd := exec.Command("redis-server", "--port", port(addr), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	cmd.SysProcAttr = orphanless()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	deadline := time.Now().Add(time.Minute)
	for rdb.Ping(t.Context()).Err() != nil {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server on %s does not answer after a minute:\n%s", addr, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addr
}

// keys counts the keys of the test Redis that match pattern.
func keys(t *testing.T, pattern string) int {
	t.Helper()
	opts, err := redis.ParseURL(testbackend.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ks, err := rdb.Keys(t.Context(), pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(ks)
}

// adopted reports whether airship has adopted the old shop's database.
func adopted(t *testing.T, url string) bool {
	t.Helper()
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table *string
	if err := db.QueryRow(`SELECT to_regclass('airship_adoption')::text`).Scan(&table); err != nil {
		t.Fatal(err)
	}
	return table != nil
}
