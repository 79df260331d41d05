package scripts

import (
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/airshipltd/airship/internal/testbackend"
)

// otherTests matches the names of the databases other tests create
// (testbackend.Name).
var otherTests = regexp.MustCompile(`^[a-z_]+[0-9a-f]{12}$`)

// databases lists the server's databases.
func databases(t *testing.T, admin *sqlx.DB) []string {
	t.Helper()
	var names []string
	if err := admin.SelectContext(t.Context(), &names, "SELECT datname FROM pg_database ORDER BY datname"); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestEnsureDatabase: ensure-database.sh, which make run-prod runs,
// creates the database its URL names, whatever the name, and no other;
// run again, it changes nothing. It used to create "airship" whatever the
// URL said, and to connect to a database named after the URL's text.
func TestEnsureDatabase(t *testing.T) {
	admin, err := sqlx.Open("postgres", testbackend.PostgresAdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.PingContext(t.Context()); err != nil {
		t.Fatalf("PostgreSQL at %s: %v; start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`", testbackend.PostgresAdminURL(), err)
	}
	for _, name := range []string{testbackend.Name("airship_ensure_"), testbackend.Name("Airship ensure-") + ` "quoted" 'too'`} {
		t.Run(name, func(t *testing.T) {
			t.Cleanup(func() {
				if _, err := admin.Exec(`DROP DATABASE IF EXISTS "` + strings.ReplaceAll(name, `"`, `""`) + `" WITH (FORCE)`); err != nil {
					t.Errorf("drop %s: %v", name, err)
				}
			})
			u, err := url.Parse(testbackend.PostgresAdminURL())
			if err != nil {
				t.Fatal(err)
			}
			u.Path = "/" + name
			before := databases(t, admin)
			for range 2 {
				out, err := exec.CommandContext(t.Context(), "bash", "ensure-database.sh", u.String()).CombinedOutput()
				if err != nil {
					t.Fatalf("ensure-database.sh %s: %v\n%s", u, err, out)
				}
			}
			after := databases(t, admin)
			var added []string
			for _, d := range after {
				// Other tests create databases of random names meanwhile.
				if !slices.Contains(before, d) && (d == name || !otherTests.MatchString(d)) {
					added = append(added, d)
				}
			}
			if !slices.Equal(added, []string{name}) {
				t.Fatalf("ensure-database.sh %s created %q; want only %q", u, added, name)
			}
		})
	}
	t.Run("no database", func(t *testing.T) {
		out, err := exec.CommandContext(t.Context(), "bash", "ensure-database.sh", "postgres://postgres@127.0.0.1:5432/?sslmode=disable").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "the URL names no database") {
			t.Fatalf("a URL without a database: %v\n%s; want refused", err, out)
		}
	})
}
