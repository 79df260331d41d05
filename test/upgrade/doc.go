//go:build upgrade

// Package upgrade runs the previous release of airship beside the current
// one on the same stores, as a rolling update does, and back again, as a
// rollback does:
//
//	make test-upgrade                          # the previous release (CHANGELOG.md) → this tree
//	make test-upgrade PREV=23bbb71 CUR=9f98364 # any other pair: commits, or directories of binaries
//
// It builds the previous release from the commit CHANGELOG.md records (a
// git worktree in a cache directory, the binaries cached by commit) and
// the current tree with its Makefile, then drives both only through their
// public surfaces: the HTTP API, the configuration (environment variables
// of the keys each binary lists in `serve --help`), the stores' data and
// the events on RabbitMQ. What the harness must know about particular
// releases is in releases.go, and nowhere else.
//
// On PostgreSQL + Redis + RabbitMQ (a database, key prefix and vhost of
// its own), in one process per release and in split modules (an old
// gateway in front of new modules and a new gateway in front of old ones),
// and on the embedded store (a data directory opened by one release after
// the other), the scenario is:
//
//  1. the previous release serving, with traffic;
//  2. the current release's `migrate up`, mid-traffic;
//  3. the current release started beside it, traffic on both;
//  4. the previous release stopped; then started again on what the
//     current one wrote (the rollback), traffic on both, then on it alone.
//
// Traffic mixes product creates, reads, listings and deletes, orders with
// and without an Idempotency-Key, order reads, PUTs and deletes. The test
// fails on any 5xx, any request without an answer and any answer other
// than the one expected; on an Idempotency-Key that the other release
// does not honour (the same key and body must replay the same order); on
// a product that a listing of either release misses; on a broken stock
// ledger (stock + units in orders = stock created); and on an order change
// whose event an old-style consumer never sees, or sees out of order.
package upgrade
