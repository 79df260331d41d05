// Package scripts holds the tests of the shell scripts' helpers.
package scripts

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airshipltd/airship/internal/testbackend"
)

// freePort runs free-port.sh with the environment and returns its port,
// or ok false when it found none.
func freePort(t *testing.T, env ...string) (port int, ok bool) {
	t.Helper()
	cmd := exec.Command("bash", "free-port.sh")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		if ee, isExit := err.(*exec.ExitError); isExit && ee.ExitCode() == 1 {
			return 0, false
		}
		t.Fatalf("free-port.sh: %v", err)
	}
	port, err = strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("free-port.sh printed %q, not a port", out)
	}
	return port, true
}

// TestFreePortBelowEphemeralRange: every port it picks lies below the
// kernel's ephemeral range, where outgoing connections take their ports,
// and can be bound.
func TestFreePortBelowEphemeralRange(t *testing.T) {
	low := testbackend.EphemeralPortLow()
	for range 20 {
		port, ok := freePort(t)
		if !ok {
			t.Fatal("free-port.sh found no port")
		}
		if port >= low || port < 1024 {
			t.Fatalf("free-port.sh picked %d; want a port in [1024, %d), below the ephemeral range", port, low)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("free-port.sh picked %d, which cannot be bound: %v", port, err)
		}
		ln.Close()
	}
}

// TestFreePortSkipsTimeWait: a port that a closed client connection holds
// in TIME_WAIT refuses connections, yet a listener cannot bind it; the
// script must not call it free.
func TestFreePortSkipsTimeWait(t *testing.T) {
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	closed := make(chan struct{}, 1)
	go func() {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		c.Read(make([]byte, 1)) // until the client closes
		c.Close()
		closed <- struct{}{}
	}()
	// A client on a port the script may pick (below the ephemeral range)
	// closes first, so its side, 127.0.0.1:port, is left in TIME_WAIT
	// once the server has closed its own.
	var client net.Conn
	var port int
	for p := 20000 + time.Now().Nanosecond()%5000; client == nil && p < 30000; p++ {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p}}
		if c, err := d.Dial("tcp", srv.Addr().String()); err == nil {
			client, port = c, p
		}
	}
	if client == nil {
		t.Fatal("could not dial from any local port in 20000-30000")
	}
	client.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not see the client close")
	}
	if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
		ln.Close()
		t.Fatalf("a listener could bind port %d while a client connection held it in TIME_WAIT; the test's premise does not hold on this kernel", port)
	}
	p := strconv.Itoa(port)
	if got, ok := freePort(t, "FREE_PORT_MIN="+p, "FREE_PORT_MAX="+p); ok {
		t.Fatalf("free-port.sh picked %d, which a client connection holds in TIME_WAIT: a listener cannot bind it", got)
	}
}
