package migrations_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq" // PostgreSQL driver

	"github.com/airshipltd/airship/db/migrations"
	"github.com/airshipltd/airship/internal/testbackend"
)

// Several replicas (or a migration Job and the pods it runs beside) may run
// `migrate up` against one database at the same moment: every run must
// succeed, and each migration must be applied exactly once.
//
// On an empty database the runners first queue behind the creation of
// goose's version table, so they seldom reach the migrations together. On
// a database that has the version table but no migration yet (as after
// `airship migrate status`), they all see the same pending migrations at
// once: without the migration lock they collide on the first CREATE TABLE.
func TestConcurrentUpAppliesEachMigrationOnce(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprintf("empty database %d", round), func(t *testing.T) { concurrentUp(t, 5, false) })
		t.Run(fmt.Sprintf("version table only %d", round), func(t *testing.T) { concurrentUp(t, 5, true) })
	}
}

// concurrentUp runs `migrate up` from runners pools at once on a fresh
// database (with goose's version table only, if versionTable) and checks
// that every run succeeded and each migration was applied once.
func concurrentUp(t *testing.T, runners int, versionTable bool) {
	url := testbackend.EmptyPostgresURL(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if versionTable {
		db, err := sql.Open("postgres", url)
		if err != nil {
			t.Fatal(err)
		}
		p, err := migrations.Provider(db, migrations.Postgres, nil)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := p.GetDBVersion(ctx); err != nil || v != 0 {
			t.Fatalf("create the version table: version %d, %v", v, err)
		}
		db.Close()
	}

	// One pool per runner, each connected before the start, as separate
	// processes would be.
	pools := make([]*sql.DB, runners)
	for i := range pools {
		db, err := sql.Open("postgres", url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		pools[i] = db
	}

	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		errs    = make([]error, runners)
		applied = make([][]int64, runners)
	)
	for i, db := range pools {
		wg.Go(func() {
			p, err := migrations.Provider(db, migrations.Postgres, nil)
			if err != nil {
				errs[i] = err
				return
			}
			<-start
			results, err := p.Up(ctx)
			errs[i] = err
			for _, r := range results {
				applied[i] = append(applied[i], r.Source.Version)
			}
		})
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Errorf("runner %d: migrate up: %v", i, err)
		}
	}

	p, err := migrations.Provider(pools[0], migrations.Postgres, nil)
	if err != nil {
		t.Fatal(err)
	}
	sources := p.ListSources()
	if len(sources) == 0 {
		t.Fatal("no PostgreSQL migrations embedded")
	}
	times := map[int64]int{}
	for i := range applied {
		for _, v := range applied[i] {
			times[v]++
		}
	}
	for _, s := range sources {
		if times[s.Version] != 1 {
			t.Errorf("migration %d applied by %d runners, want exactly 1 (applied: %v)", s.Version, times[s.Version], applied)
		}
	}

	// The database agrees: one version row per migration, and it is current.
	rows, err := pools[0].QueryContext(ctx,
		`SELECT version_id, count(*) FROM goose_db_version WHERE version_id > 0 GROUP BY version_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	recorded := map[int64]int{}
	for rows.Next() {
		var v int64
		var n int
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		recorded[v] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(recorded) != len(sources) {
		t.Errorf("goose_db_version records %d versions, want %d: %v", len(recorded), len(sources), recorded)
	}
	for _, s := range sources {
		if recorded[s.Version] != 1 {
			t.Errorf("goose_db_version has %d rows for version %d, want 1", recorded[s.Version], s.Version)
		}
	}
	if v, err := p.GetDBVersion(ctx); err != nil || v != sources[len(sources)-1].Version {
		t.Errorf("database version = %d, %v; want %d", v, err, sources[len(sources)-1].Version)
	}
	if _, err := pools[0].ExecContext(ctx, `SELECT 1 FROM orders, order_details, stock_reservations, stock_returns LIMIT 1`); err != nil {
		t.Errorf("schema not applied: %v", err)
	}
}
