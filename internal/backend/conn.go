package backend

import (
	"context"
	"net"
	"sync"
	"time"
)

// deadlineConn is a connection to Redis that moves its socket deadlines
// only when they must move. go-redis sets a read and a write deadline
// before every command (the earlier of the context's deadline and
// backend_timeout from now), and clears both before handing out a pooled
// connection; each of those is a change of the runtime's poller timers.
// deadlineConn keeps the deadline that is set when a new one is later by
// less than slack, so that on a busy connection most commands set none;
// a command then times out at most slack before the deadline it asked
// for, never after it. A deadline cleared is cleared only before the next
// read or write that no later deadline precedes.
//
// It does not expose the socket (syscall.Conn), so go-redis does not peek
// at every pooled connection it hands out (a recvfrom call per command,
// as for a TLS connection, which hides its socket too): a connection the
// server closed while it was idle fails its next command, which go-redis
// retries on another connection (MaxRetries).
type deadlineConn struct {
	net.Conn
	slack time.Duration

	mu sync.Mutex
	// read and write are the deadlines set on the socket; clearRead and
	// clearWrite say that they were cleared since, not yet on the socket.
	read, write           time.Time
	clearRead, clearWrite bool
}

// slackOf is the slack of the connections of a client whose commands time
// out after timeout: a hundredth of it, at most 10 ms.
func slackOf(timeout time.Duration) time.Duration { return min(timeout/100, 10*time.Millisecond) }

// withDeadlineConns returns dial, its connections wrapped in deadlineConn.
func withDeadlineConns(dial func(context.Context, string, string) (net.Conn, error), slack time.Duration) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &deadlineConn{Conn: c, slack: slack}, nil
	}
}

// keep reports whether the deadline set, set, serves for one asked for,
// want: it is not later, and earlier by less than slack.
func (c *deadlineConn) keep(set, want time.Time) bool {
	return !set.IsZero() && !want.Before(set) && want.Sub(set) < c.slack
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	if t.IsZero() {
		c.mu.Lock()
		c.clearRead, c.clearWrite = !c.read.IsZero(), !c.write.IsZero()
		c.mu.Unlock()
		return nil
	}
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set(&c.read, &c.clearRead, t, c.Conn.SetReadDeadline)
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set(&c.write, &c.clearWrite, t, c.Conn.SetWriteDeadline)
}

// set asks for the deadline t on one side of the connection, whose
// deadline on the socket is *cur, cleared since if *clear.
func (c *deadlineConn) set(cur *time.Time, clear *bool, t time.Time, apply func(time.Time) error) error {
	if t.IsZero() {
		*clear = !cur.IsZero()
		return nil
	}
	*clear = false
	if c.keep(*cur, t) {
		return nil
	}
	*cur = t
	return apply(t)
}

// settle clears a deadline cleared since it was set, before the
// connection is read (read) or written.
func (c *deadlineConn) settle(read bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if read && c.clearRead {
		c.read, c.clearRead = time.Time{}, false
		return c.Conn.SetReadDeadline(time.Time{})
	}
	if !read && c.clearWrite {
		c.write, c.clearWrite = time.Time{}, false
		return c.Conn.SetWriteDeadline(time.Time{})
	}
	return nil
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if err := c.settle(true); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.settle(false); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
