package docs

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/airshipltd/airship/internal/testbackend"
)

// TestDocExampleSession runs the contract's example session of README.md and
// of docs/api.md against a fresh airship, and checks every answer against
// what docs/api.md's comments say it is:
//
//   - on the embedded store, served as `make run` serves it (bin/airship
//     serve with no backend configured), with the README's metrics
//     command and docs/deploy.md's health checks against the same server
//     (each must exit 1 once it has stopped);
//   - on PostgreSQL and Redis, served by the README's by-hand command.
func TestDocExampleSession(t *testing.T) {
	readme := docBlocks(t, "README.md", 3)
	session := pick(t, readme, "curl -s -XPOST")
	byHand := pick(t, readme, "bin/airship serve")
	metrics := pick(t, readme, "/metrics")
	api := docBlocks(t, "docs/api.md", 1)[0]
	health := docBlocks(t, "docs/deploy.md", 1)[0]

	// The README's session is docs/api.md's, whose comments give the
	// answers.
	want := commands(api.text)
	if got := texts(commands(session.text)); !slices.Equal(got, texts(want)) {
		t.Fatalf("%s's session differs from %s's:\n%q\n%q", session, api, got, texts(want))
	}

	t.Run("embedded", func(t *testing.T) {
		addr, _, env, ports := listeners(t)
		sh := newShell(t, env...)
		// What make run runs once it has built bin/airship.
		srv := sh.start(command{text: "bin/airship serve"}, "http://"+addr+"/readyz")
		checkSession(t, want, sh.runText(rewrite(t, session, ports[0])))

		// The metrics of the session's requests, by route template.
		out := sh.runText(rewrite(t, metrics, ports[1]))[0].stdout
		for _, route := range []string{"/products", "/products/:id", "/orders", "/orders/:id"} {
			if !strings.Contains(out, `route="`+route+`"`) {
				t.Errorf("%s printed no airship_http_requests_total of route %s after the session:\n%s", metrics, route, out)
			}
		}

		healthchecks := commands(rewrite(t, health, ports[0]))
		checkNotes(t, sh.run(healthchecks...), map[string]func(result) error{
			"/readyz on the configured addr; exit 0 if 200, 1 otherwise": func(result) error { return nil }, // it exited 0
		})
		srv.stop()
		for _, c := range healthchecks {
			if r := sh.try(c); r.code != 1 {
				t.Errorf("%s, with no server: %s\nwant exit status 1", health, r)
			}
		}
	})

	t.Run("production", func(t *testing.T) {
		pg := testbackend.EmptyPostgresURL(t)
		prefix := testbackend.RedisPrefix(t)
		addr, _, env, ports := listeners(t)
		sh := newShell(t, append(env, "AIRSHIP_REDIS_PREFIX="+prefix)...)
		serve := skip(t, commands(rewrite(t, byHand,
			sub{"postgres://postgres@127.0.0.1:5432/airship?sslmode=disable", pg},
			sub{"redis://127.0.0.1:6379/0", testbackend.RedisURL()},
		)), "make run-prod") // it builds bin/airship in the repository, then runs the command below
		if len(serve) != 1 {
			t.Fatalf("%s: want make run-prod and one command by hand, got %q", byHand, texts(serve))
		}
		srv := sh.start(serve[0], "http://"+addr+"/readyz")
		if !strings.Contains(srv.logs.String(), `"backend":"postgres+redis"`) {
			t.Fatalf("`%s` is not on PostgreSQL + Redis:\n%s", serve[0].text, srv.logs)
		}
		checkSession(t, want, sh.runText(rewrite(t, api, ports[0])))
		srv.stop()
	})
}

// sessionNotes check what docs/api.md's notes on the session's commands
// say of their answers.
var sessionNotes = map[string]func(result) error{
	"enriched; product.in_stock is now 9": func(r result) error {
		var order struct {
			OrderDetails []struct {
				Product struct {
					InStock int `json:"in_stock"`
				} `json:"product"`
			} `json:"order_details"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &order); err != nil || len(order.OrderDetails) != 1 {
			return fmt.Errorf("not an order of one line (%v)", err)
		}
		if got := order.OrderDetails[0].Product.InStock; got != 9 {
			return fmt.Errorf("product.in_stock %d", got)
		}
		return nil
	},
	"204": func(r result) error {
		if r.status != 204 || r.stdout != "" {
			return fmt.Errorf("status %d, body %q", r.status, r.stdout)
		}
		return nil
	},
	"404 PRODUCT_NOT_FOUND": func(r result) error {
		var e struct{ Error string }
		if err := json.Unmarshal([]byte(r.stdout), &e); err != nil || r.status != 404 || e.Error != "PRODUCT_NOT_FOUND" {
			return fmt.Errorf("status %d, error %q (%v)", r.status, e.Error, err)
		}
		return nil
	},
	"array with order 1": func(r result) error {
		var orders []struct{ ID int }
		if err := json.Unmarshal([]byte(r.stdout), &orders); err != nil {
			return err
		}
		if !slices.ContainsFunc(orders, func(o struct{ ID int }) bool { return o.ID == 1 }) {
			return fmt.Errorf("no order 1 in %d orders", len(orders))
		}
		return nil
	},
}

// checkSession checks the answers of the session's commands against what
// docs/api.md's commands (want) say of them: the lines of comments after
// a command are its answer, its note is checked by sessionNotes.
func checkSession(t *testing.T, want []command, got []result) {
	t.Helper()
	for i, r := range got {
		r.said, r.note = want[i].said, want[i].note
		got[i] = r
	}
	checkSaid(t, got)
	checkNotes(t, got, sessionNotes)
}

// checkSaid checks that each command printed what the comment lines after
// it say.
func checkSaid(t *testing.T, results []result) {
	t.Helper()
	for _, r := range results {
		for _, said := range r.said {
			if !prints(r.stdout, said) {
				t.Errorf("`%s` printed\n%s\nwant what the docs say, %s", r.text, r.stdout, said)
			}
		}
	}
}

// checkNotes checks each command with a note by the check for its note;
// every note must have one.
func checkNotes(t *testing.T, results []result, checks map[string]func(result) error) {
	t.Helper()
	for _, r := range results {
		if r.note == "" {
			continue
		}
		check, ok := checks[r.note]
		if !ok {
			t.Errorf("`%s`: the test has no check for the note %q; add one", r.text, r.note)
			continue
		}
		if err := check(r); err != nil {
			t.Errorf("`%s`, whose note says %q: %v\n%s", r.text, r.note, err, r)
		}
	}
}

// prints reports whether out is what a comment of the docs says: the same
// JSON value, or a line that starts as the comment says, in which …
// stands for any text and N and M for numbers.
func prints(out, said string) bool {
	var w, g any
	if json.Unmarshal([]byte(said), &w) == nil {
		return json.Unmarshal([]byte(out), &g) == nil && reflect.DeepEqual(w, g)
	}
	pattern := regexp.QuoteMeta(said)
	pattern = strings.ReplaceAll(pattern, "…", ".*")
	pattern = regexp.MustCompile(`\b[NM]\b`).ReplaceAllString(pattern, `\d+`)
	return regexp.MustCompile(`(?m)^` + pattern).MatchString(out)
}

func texts(cmds []command) []string {
	var s []string
	for _, c := range cmds {
		s = append(s, c.text)
	}
	return s
}
