package app_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/internal/sqlite"
	"github.com/airshipltd/airship/internal/testbackend"
)

// TestMigrateStatusSchemaVersion: `migrate status` ends with the database's
// schema version against the one the binary needs: behind before `migrate
// up`, the same after it, and newer once a later release migrated the
// database, which this release still serves on (a rolling upgrade's
// previous release, or a rollback).
func TestMigrateStatusSchemaVersion(t *testing.T) {
	for name, store := range map[string]func(t *testing.T) (env []string, open func() (*sqlx.DB, error)){
		"embedded": func(t *testing.T) ([]string, func() (*sqlx.DB, error)) {
			dir := t.TempDir()
			return []string{"AIRSHIP_DATA_DIR=" + dir}, func() (*sqlx.DB, error) {
				return sqlite.Open(t.Context(), filepath.Join(dir, "airship.db"))
			}
		},
		"postgres+redis": func(t *testing.T) ([]string, func() (*sqlx.DB, error)) {
			url := testbackend.EmptyPostgresURL(t)
			env := []string{"AIRSHIP_POSTGRES_URL=" + url, "AIRSHIP_REDIS_URL=" + testbackend.RedisURL(), "AIRSHIP_REDIS_PREFIX=" + testbackend.RedisPrefix(t)}
			return env, func() (*sqlx.DB, error) { return sqlx.Open("postgres", url) }
		},
	} {
		t.Run(name, func(t *testing.T) {
			env, open := store(t)
			last := func(out string) string {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				return lines[len(lines)-1]
			}
			out, err := migrateCmd(t, env, "status")
			m := regexp.MustCompile("^schema version 0 of ([0-9]+): run `airship migrate up`$").FindStringSubmatch(last(out))
			if err != nil || m == nil {
				t.Fatalf("migrate status on an empty database: %v\n%s", err, out)
			}
			need, _ := strconv.Atoi(m[1])

			out, err = migrateCmd(t, env, "up")
			if want := fmt.Sprintf("schema version %d: the version this release needs", need); err != nil || last(out) != want {
				t.Fatalf("migrate up: %v\n%s\nwant the last line %q", err, out, want)
			}

			// A later release applies its migration.
			db, err := open()
			if err != nil {
				t.Fatal(err)
			}
			_, err = db.Exec(db.Rebind(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, ?)`), need+1, true)
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			out, err = migrateCmd(t, env, "status")
			want := fmt.Sprintf("schema version %d, newer than this release's %d: a later release migrated it, and this release runs on it", need+1, need)
			if err != nil || last(out) != want {
				t.Fatalf("migrate status after a later release migrated: %v\n%s\nwant the last line %q", err, out, want)
			}
			p := startProcess(t, env...)
			p.must("GET", "/readyz", "", 200)
			p.must("POST", "/products", odyssey, 200)
			p.must("POST", "/orders", orderOfOne, 200)
		})
	}
}
