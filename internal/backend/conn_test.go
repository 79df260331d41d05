package backend

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/testbackend"
)

// recordingConn counts the deadlines set on it.
type recordingConn struct {
	net.Conn
	reads, writes []time.Time
}

func (c *recordingConn) SetReadDeadline(t time.Time) error {
	c.reads = append(c.reads, t)
	return nil
}

func (c *recordingConn) SetWriteDeadline(t time.Time) error {
	c.writes = append(c.writes, t)
	return nil
}

func (c *recordingConn) Read(p []byte) (int, error)  { return len(p), nil }
func (c *recordingConn) Write(p []byte) (int, error) { return len(p), nil }

// A deadlineConn sets a deadline on the socket only when the one there is
// later than asked, or earlier by the slack or more; clears one only
// before a read or write that no deadline precedes; and hides the socket.
func TestDeadlineConnMovesDeadlinesOnlyWhenTheyMust(t *testing.T) {
	rec := &recordingConn{}
	c := &deadlineConn{Conn: rec, slack: 10 * time.Millisecond}
	if _, ok := net.Conn(c).(syscall.Conn); ok {
		t.Error("deadlineConn exposes its socket: go-redis would peek at it before every command")
	}
	t0 := time.Unix(1000, 0)
	step := func(d time.Duration) time.Time { return t0.Add(d) }
	// Commands as go-redis runs them: clear both (pool), then set the
	// write and the read deadline, then write and read.
	command := func(deadline time.Time) {
		_ = c.SetDeadline(time.Time{})
		_ = c.SetWriteDeadline(deadline)
		_, _ = c.Write(nil)
		_ = c.SetReadDeadline(deadline)
		_, _ = c.Read(nil)
	}
	command(step(0))
	command(step(time.Millisecond))     // within the slack: kept
	command(step(9 * time.Millisecond)) // within the slack: kept
	command(step(10 * time.Millisecond))
	command(step(5 * time.Millisecond)) // earlier than the one set
	want := []time.Time{step(0), step(10 * time.Millisecond), step(5 * time.Millisecond)}
	for side, got := range map[string][]time.Time{"read": rec.reads, "write": rec.writes} {
		if len(got) != len(want) {
			t.Fatalf("%s deadlines set %v, want %v", side, got, want)
		}
		for i := range want {
			if !got[i].Equal(want[i]) {
				t.Errorf("%s deadline %d set to %v, want %v", side, i, got[i], want[i])
			}
		}
	}

	// Cleared and then read without a deadline: cleared on the socket.
	_ = c.SetDeadline(time.Time{})
	_, _ = c.Read(nil)
	if last := rec.reads[len(rec.reads)-1]; !last.IsZero() || len(rec.reads) != 4 {
		t.Errorf("read deadlines %v; want the last one cleared before the read", rec.reads)
	}
	if len(rec.writes) != 3 {
		t.Errorf("write deadlines %v; want none cleared without a write", rec.writes)
	}
}

// A Redis that accepts a connection and never answers fails the command
// after backend_timeout, through deadlineConn's deadlines.
func TestRedisCommandTimesOutOnAStalledServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // read nothing, answer nothing
		}
	}()
	cfg := config.Defaults()
	cfg.RedisURL, cfg.BackendTimeout = "redis://"+ln.Addr().String(), 200*time.Millisecond
	rdb, err := Redis(cfg, "single")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	err = rdb.Ping(t.Context()).Err()
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("ping of a server that never answers: %v; want a timeout", err)
	}
}

// A pooled connection that the server closed while it was idle (go-redis
// no longer peeks at it before use) fails its next command, which is
// retried on a new connection: the caller sees no error.
func TestRedisCommandAfterTheServerClosedTheConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis: not run in -short mode")
	}
	cfg := config.Defaults()
	cfg.RedisURL, cfg.RedisPoolSize = testbackend.RedisURL(), 1
	rdb, err := Redis(cfg, "single")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	id, err := rdb.Do(t.Context(), "CLIENT", "ID").Int64()
	if err != nil {
		t.Fatalf("Redis at %s: %v", cfg.RedisURL, err)
	}
	admin, err := Redis(cfg, "single")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Do(t.Context(), "CLIENT", "KILL", "ID", id).Err(); err != nil {
		t.Fatalf("kill the pooled connection: %v", err)
	}
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Errorf("ping on a pool whose connection the server closed: %v", err)
	}
	if again, err := rdb.Do(t.Context(), "CLIENT", "ID").Int64(); err != nil || again == id {
		t.Errorf("client id %d after the kill (%v); want a new connection's", again, err)
	}
}
