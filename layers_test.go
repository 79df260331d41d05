package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is airship's module path.
const module = "github.com/airshipltd/airship"

// A layering rule: no package matched by from depends, directly or
// through others, on a package matched by to. docs/architecture.md
// explains each.
type layerRule struct {
	why      string
	from, to func(pkg string) bool
}

// under matches the named packages of airship and everything below them.
func under(names ...string) func(string) bool {
	return func(pkg string) bool {
		for _, n := range names {
			p := module + "/" + n
			if pkg == p || strings.HasPrefix(pkg, p+"/") {
				return true
			}
		}
		return false
	}
}

// only matches the named packages of airship, not those below them.
func only(names ...string) func(string) bool {
	return func(pkg string) bool {
		return slices.Contains(names, strings.TrimPrefix(pkg, module+"/"))
	}
}

// external matches the named outside modules and their packages.
func external(paths ...string) func(string) bool {
	return func(pkg string) bool {
		for _, p := range paths {
			if pkg == p || strings.HasPrefix(pkg, p+"/") {
				return true
			}
		}
		return false
	}
}

func not(f func(string) bool) func(string) bool { return func(p string) bool { return !f(p) } }

func and(fs ...func(string) bool) func(string) bool {
	return func(p string) bool {
		for _, f := range fs {
			if !f(p) {
				return false
			}
		}
		return true
	}
}

// drivers are the database and broker clients: only store adapters,
// the opening of backends and the wiring use them.
var drivers = external("github.com/lib/pq", "modernc.org/sqlite", "github.com/redis/go-redis",
	"github.com/jmoiron/sqlx", "github.com/rabbitmq/amqp091-go")

// domain is airship's own code above the low-level packages: the
// modules, the engines, the wiring and the client. gateway/apidocs is
// the API document alone, which low-level test helpers read.
var domain = and(under("products", "orders", "events", "gateway", "transfer", "app", "cli", "client", "loadtest"),
	not(under("gateway/apidocs")))

var layerRules = []layerRule{
	{"low-level packages under internal/ know no module", under("internal"), domain},
	{"products calls no other module", under("products"), under("orders", "events", "gateway", "transfer")},
	{"events owns the order events: it knows no module", under("events"), under("products", "orders", "gateway", "transfer")},
	{"the modules' domain packages keep their stores in sub-packages", only("products", "orders", "events"), drivers},
	{"the gateway reaches stores only through the modules' interfaces", under("gateway"),
		func(p string) bool {
			return drivers(p) || under("internal/backend", "internal/sqlite", "products/redisstore", "products/sqlitestore", "orders/sqlstore")(p)
		}},
	{"the engines of transfer use the modules, not the wiring or the API", under("transfer"), under("app", "cli", "gateway")},
	{"only main and the command line use the wiring", not(only("", "cli")), under("app")},
	{"only main uses the command line", not(only("")), under("cli")},
}

// TestLayers: dependencies point one way (docs/architecture.md), in the
// default build and in the remote one. It reads what each package
// depends on from go list.
func TestLayers(t *testing.T) {
	for _, tags := range []string{"", "remote"} {
		out, err := exec.Command("go", "list", "-tags", tags, "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "./...").CombinedOutput()
		if err != nil {
			t.Fatalf("go list -tags %q: %v\n%s", tags, err, out)
		}
		pkgs := 0
		for line := range strings.Lines(string(out)) {
			fields := strings.Fields(line)
			pkg := fields[0]
			if pkg == module {
				pkg = module + "/"
			}
			pkgs++
			for _, r := range layerRules {
				if !r.from(pkg) {
					continue
				}
				var bad []string
				for _, dep := range fields[1:] {
					if r.to(dep) {
						bad = append(bad, strings.TrimPrefix(dep, module+"/"))
					}
				}
				if len(bad) > 0 {
					t.Errorf("%s (tags %q) depends on %s: %s", strings.TrimPrefix(fields[0], module+"/"), tags,
						strings.Join(roots(bad), ", "), r.why)
				}
			}
		}
		if pkgs < 20 {
			t.Fatalf("go list -tags %q listed %d packages: want airship's", tags, pkgs)
		}
	}
}

// roots drops the packages below another one listed (pq/oid below pq),
// so that an error names each dependency once.
func roots(pkgs []string) []string {
	var out []string
	for _, p := range pkgs {
		below := false
		for _, q := range pkgs {
			if q != p && strings.HasPrefix(p, q+"/") {
				below = true
			}
		}
		if !below {
			out = append(out, p)
		}
	}
	return out
}
