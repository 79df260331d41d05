package rpc

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	errsv1 "github.com/airshipltd/airship/api/airship/errs/v1"
)

// countWrites counts the writes on a connection.
type countWrites struct {
	net.Conn
	n *atomic.Int64
}

func (c countWrites) Write(b []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(b)
}

// echo serves a Connect procedure that answers the message it is sent (the
// wire form of an error serves as the message), and returns a client of
// it whose connections count their writes in writes.
func echo(t *testing.T, writes *atomic.Int64) *connect.Client[errsv1.Error, errsv1.Error] {
	t.Helper()
	const procedure = "/airship.test.v1.EchoService/Echo"
	mux := http.NewServeMux()
	mux.Handle(procedure, connect.NewUnaryHandler(procedure,
		func(_ context.Context, req *connect.Request[errsv1.Error]) (*connect.Response[errsv1.Error], error) {
			return connect.NewResponse(req.Msg), nil
		}, HandlerOptions(Limits{Request: 1 << 20, Reply: 1 << 20})...))
	srv := httptest.NewServer(mux)
	hc := NewHTTPClient(time.Second, 1)
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		srv.Close()
	})
	tr := hc.Transport.(oneWrite).next
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countWrites{c, writes}, nil
	}
	return connect.NewClient[errsv1.Error, errsv1.Error](hc, srv.URL+procedure, ClientOptions(nil)...)
}

// A module call's request leaves the caller in one write, headers and
// body together: a write of the headers alone would cost a system call
// here and a wake-up in the module, on every call.
func TestCallIsOneWrite(t *testing.T) {
	var writes atomic.Int64
	client := echo(t, &writes)
	for i, size := range []int{1, 100, 4000, maxOneWrite - 100} {
		msg := &errsv1.Error{Kind: "invalid", Message: strings.Repeat("x", size)}
		before := writes.Load()
		resp, err := client.CallUnary(t.Context(), connect.NewRequest(msg))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if resp.Msg.GetMessage() != msg.Message {
			t.Fatalf("call %d: answered a message of %d bytes, want the %d sent", i, len(resp.Msg.GetMessage()), size)
		}
		if n := writes.Load() - before; n != 1 {
			t.Errorf("call %d (message of %d bytes): the request took %d writes, want 1", i, size, n)
		}
	}
}

// A request body larger than what is sent with the headers, and one
// shorter than its length, are handled as net/http handles them.
func TestOneWriteLimits(t *testing.T) {
	var writes atomic.Int64
	client := echo(t, &writes)
	msg := &errsv1.Error{Kind: "invalid", Message: strings.Repeat("y", 2*maxOneWrite)}
	resp, err := client.CallUnary(t.Context(), connect.NewRequest(msg))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Msg.GetMessage() != msg.Message {
		t.Fatalf("answered a message of %d bytes, want the %d sent", len(resp.Msg.GetMessage()), len(msg.Message))
	}

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://127.0.0.1:1/", io.NopCloser(strings.NewReader("abc")))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 10
	if _, err := (oneWrite{&http.Transport{}}).RoundTrip(req); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a body of 3 bytes with a length of 10: %v, want %v", err, io.ErrUnexpectedEOF)
	}
}
