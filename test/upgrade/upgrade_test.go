//go:build upgrade

package upgrade

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airshipltd/airship/internal/release"
	"github.com/airshipltd/airship/internal/testbackend"
)

// perPhase is how many requests each target gets in each phase.
const perPhase = 30

func TestUpgrade(t *testing.T) {
	prev, cur := releases(t)

	t.Run("Version", func(t *testing.T) {
		if os.Getenv("AIRSHIP_UPGRADE_CUR") != "" {
			t.Skip("the current release is not this tree (AIRSHIP_UPGRADE_CUR is set)")
		}
		checkVersion(t, cur)
	})
	t.Run("Production", func(t *testing.T) { production(t, prev, cur) })
	t.Run("Split", func(t *testing.T) {
		for _, b := range []*build{prev, cur} {
			if !b.splits() {
				t.Skipf("%s has no split modules (no airship-remote with serve --modules)", b.Label)
			}
		}
		split(t, prev, cur)
	})
	t.Run("Embedded", func(t *testing.T) { embedded(t, prev, cur) })
}

// checkVersion: the binaries make builds from this tree say the VERSION
// file's version, the tree's commit, the Go version and when they were
// built.
func checkVersion(t *testing.T, cur *build) {
	version, err := release.ReadVersion(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, modules := range []string{"all", "gateway"} {
		bin := cur.bin(modules)
		out := runCommand(t, cur, modules, nil, "version")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if lines[0] != "airship "+version {
			t.Errorf("%s version: first line %q, want %q (VERSION)", bin, lines[0], "airship "+version)
		}
		fields := map[string]string{}
		for _, l := range lines[1:] {
			if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
				fields[k] = strings.TrimSpace(v)
			}
		}
		if fields["commit"] != cur.Commit {
			t.Errorf("%s version: commit %q, want %s", bin, fields["commit"], cur.Commit)
		}
		if _, err := time.Parse(time.RFC3339, fields["built"]); err != nil {
			t.Errorf("%s version: build date %q: %v", bin, fields["built"], err)
		}
		if !strings.HasPrefix(fields["go"], "go1.") {
			t.Errorf("%s version: Go version %q", bin, fields["go"])
		}
	}
}

// backends gives a scenario a PostgreSQL database, a Redis key prefix and
// a RabbitMQ vhost of its own (all removed when it ends), with an
// old-style consumer bound before any release starts.
type backends struct {
	postgres, redis, prefix, amqp string
	consumer                      *consumer
}

func newBackends(t *testing.T) backends {
	b := backends{
		postgres: testbackend.EmptyPostgresURL(t),
		redis:    testbackend.RedisURL(),
		prefix:   testbackend.RedisPrefix(t),
		amqp:     testbackend.AMQPURL(t),
	}
	b.consumer = bindConsumer(t, b.amqp)
	return b
}

// production: one process per release on PostgreSQL + Redis, as replicas
// of a rolling update.
func production(t *testing.T, prev, cur *build) {
	be := newBackends(t)
	settings := []setting{
		{"postgres_url", be.postgres}, {"redis_url", be.redis}, {"redis_prefix", be.prefix}, {"amqp_url", be.amqp},
	}
	tr := newTraffic(t)
	node := func(name string, b *build) (*proc, *target) {
		p := startProc(t, name, b, "all", settings)
		return p, &target{Name: name, Release: b.Label, Side: b.Role, URL: p.URL, Events: publishesEvents(b, "all")}
	}

	a1, ta1 := node("A1", prev)
	tr.serve("prev", ta1)
	tr.run(perPhase)

	tr.serve("prev, during the current migrate up", ta1)
	t.Logf("current migrate up:\n%s", runCommand(t, cur, "all", settings, "migrate", "up"))
	tr.serve("prev, after the current migrate up", ta1)
	tr.run(perPhase)
	tr.check("prev, after the current migrate up")

	b1, tb1 := node("B1", cur)
	tr.serve("prev and cur", ta1, tb1)
	tr.run(perPhase)
	tr.check("prev and cur")

	tr.serve("cur, prev stopped", tb1)
	a1.stop(t)
	tr.run(perPhase)

	// The rollback: the previous release again, on what the current one
	// wrote, beside it and then alone.
	_, ta2 := node("A2", prev)
	tr.serve("rollback: prev again and cur", ta2, tb1)
	tr.run(perPhase)
	tr.check("rollback: prev again and cur")

	tr.serve("rollback: prev alone", ta2)
	b1.stop(t)
	tr.run(perPhase)
	tr.check("rollback: prev alone")

	tr.checkEvents(be.consumer)
	tr.verdict()
}

// split: the modules in separate processes. Every module call (gateway →
// products, gateway → orders, orders → products) goes from each release
// to the other in some gateway's path; then the rollback to the previous
// release on what the current one wrote.
func split(t *testing.T, prev, cur *build) {
	be := newBackends(t)
	token := testbackend.Name("module-token-of-this-test-run-") // 42 characters: a token has at least 32
	builds := []*build{prev, cur}
	start := func(name string, b *build, modules string, s ...setting) *proc {
		return startProc(t, name, b, modules, append(s, releaseSettings(b, modules, token, builds)...))
	}
	type module struct {
		p    *proc
		desc string // "prev products"
	}
	products := func(name string, b *build) module {
		p := start(name, b, "products", setting{"redis_url", be.redis}, setting{"redis_prefix", be.prefix})
		return module{p, b.Role + " products"}
	}
	orders := func(name string, b *build, products module) module {
		p := start(name, b, "orders", setting{"postgres_url", be.postgres}, setting{"amqp_url", be.amqp},
			setting{"products_url", products.p.URL})
		return module{p, fmt.Sprintf("%s orders (→ %s)", b.Role, products.desc)}
	}
	gateway := func(name string, b *build, products, orders module) (*proc, *target) {
		g := start(name, b, "gateway", setting{"products_url", products.p.URL}, setting{"orders_url", orders.p.URL})
		return g, &target{
			Name:    name,
			Release: fmt.Sprintf("%s gateway → %s, %s", b.Role, products.desc, orders.desc),
			Side:    orders.p.Build.Role, // the orders module keeps the Idempotency-Keys
			URL:     g.URL,
			Events:  publishesEvents(orders.p.Build, "orders"),
		}
	}
	tr := newTraffic(t)

	// The previous release, whole.
	p1 := products("P1", prev)
	o1 := orders("O1", prev, p1)
	g1, tg1 := gateway("G1", prev, p1, o1)
	tr.serve("prev", tg1)
	tr.run(perPhase)

	tr.serve("prev, during the current migrate up", tg1)
	migrate := []setting{{"postgres_url", be.postgres}, {"redis_url", be.redis}, {"redis_prefix", be.prefix}}
	t.Logf("current migrate up:\n%s", runCommand(t, cur, "all", migrate, "migrate", "up"))
	tr.serve("prev, after the current migrate up", tg1)
	tr.run(perPhase)
	tr.check("prev, after the current migrate up")

	// The current release beside it, and every crossing.
	p2 := products("P2", cur)
	o2 := orders("O2", cur, p2)
	g2, tg2 := gateway("G2", cur, p2, o2)
	gx, tgx := gateway("GX", cur, p1, o1)  // new gateway, old modules
	gy, tgy := gateway("GY", prev, p2, o2) // old gateway, new modules
	oz := orders("OZ", cur, p1)            // new orders → old products
	gz, tgz := gateway("GZ", prev, p1, oz)
	tr.serve("prev and cur, crossed", tg1, tg2, tgx, tgy, tgz)
	tr.run(perPhase)
	tr.check("prev and cur, crossed")

	// The previous release stopped.
	tr.serve("cur, prev stopped", tg2)
	for _, p := range []*proc{g1, gx, gy, gz, oz.p, o1.p, p1.p} {
		p.stop(t)
	}
	tr.run(perPhase)

	// The rollback: the previous release again on what the current one
	// wrote, beside it and crossed with it, then alone.
	p3 := products("P3", prev)
	o3 := orders("O3", prev, p3)
	g3, tg3 := gateway("G3", prev, p3, o3)
	o4 := orders("O4", prev, p2) // old orders → new products
	g4, tg4 := gateway("G4", prev, p2, o4)
	g5, tg5 := gateway("G5", cur, p3, o3) // new gateway, old modules
	tr.serve("rollback: prev again and cur, crossed", tg2, tg3, tg4, tg5)
	tr.run(perPhase)
	tr.check("rollback: prev again and cur, crossed")

	tr.serve("rollback: prev alone", tg3)
	for _, p := range []*proc{g2, g4, g5, o4.p, o2.p, p2.p} {
		p.stop(t)
	}
	tr.run(perPhase)
	tr.check("rollback: prev alone")

	tr.checkEvents(be.consumer)
	g3.stop(t)
	tr.verdict()
}

// embedded: the embedded store's data directory, written by the previous
// release, opened by the current one (which migrates it in place) with
// everything in it, then by the previous release again (the rollback).
// One process at a time: the embedded store is one process's file.
func embedded(t *testing.T, prev, cur *build) {
	amqpURL := testbackend.AMQPURL(t)
	c := bindConsumer(t, amqpURL)
	dir := dataDir(t)
	settings := []setting{{"data_dir", dir}, {"amqp_url", amqpURL}}
	tr := newTraffic(t)
	node := func(name string, b *build) (*proc, *target) {
		p := startProc(t, name, b, "all", settings)
		return p, &target{Name: name, Release: b.Label, Side: b.Role, URL: p.URL, Events: publishesEvents(b, "all")}
	}

	a1, ta1 := node("A1", prev)
	tr.serve("prev", ta1)
	tr.run(2 * perPhase)
	tr.pause()
	a1.stop(t)

	b1, tb1 := node("B1", cur)
	tr.point("cur, on prev's data", tb1)
	tr.check("cur opens prev's data")
	tr.serve("cur", tb1)
	tr.run(2 * perPhase)
	tr.pause()
	b1.stop(t)

	a2, ta2 := node("A2", prev)
	tr.point("rollback: prev, on cur's data", ta2)
	tr.check("rollback: prev opens cur's data")
	tr.serve("rollback: prev", ta2)
	tr.run(perPhase)
	tr.check("rollback: prev")

	tr.checkEvents(c)
	a2.stop(t)

	// Dumps cross releases both ways: each release loads what the other
	// exports, in the format it reads.
	for _, pair := range [][2]*build{{prev, cur}, {cur, prev}} {
		writer, reader := pair[0], pair[1]
		if !hasCommand(t, writer, "export") || !hasCommand(t, reader, "import") {
			t.Logf("dumps from %s to %s: no export or import command; not checked", writer.Label, reader.Label)
			continue
		}
		file := filepath.Join(t.TempDir(), "dump.jsonl")
		runCommand(t, writer, "all", []setting{{"data_dir", dir}}, append([]string{"export", "--out", file}, exportArgs(writer, reader)...)...)
		loaded := dataDir(t)
		t.Logf("%s import of %s's dump:\n%s", reader.Role, writer.Role,
			runCommand(t, reader, "all", []setting{{"data_dir", loaded}}, "import", "--in", file))
		p, tg := func() (*proc, *target) {
			p := startProc(t, "L-"+reader.Role, reader, "all", []setting{{"data_dir", loaded}})
			return p, &target{Name: p.Name, Release: reader.Label + " on " + writer.Role + "'s dump", Side: reader.Role, URL: p.URL}
		}()
		tr.point(reader.Role+", on a dump by "+writer.Role, tg)
		tr.checkLoaded(reader.Role + " loads a dump by " + writer.Role)
		p.stop(t)
	}
	tr.verdict()
}
