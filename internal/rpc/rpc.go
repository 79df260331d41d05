// Package rpc is what the modules' Connect adapters share: domain errors
// across the wire, retries of idempotent calls, the limits of messages,
// the module token (auth.go), the request id and trace context of each
// call and the log of its failures (observe.go), the HTTP client and
// server they run on, and the health endpoints of a module's process.
//
// Errors cross the wire in their portable form (errs.Portable) as the
// detail of a Connect error, and come back as the very domain error
// (errs.Decode), so that errors.Is and errors.As work on the caller's side
// as they do in one process. A module that cannot be reached is the
// caller's Unavailable error (503 at the gateway).
package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"

	errsv1 "github.com/airshipltd/airship/api/airship/errs/v1"
	"github.com/airshipltd/airship/internal/errs"
)

// codeOf is the Connect code of each kind, for generic clients (any gRPC
// client) that do not read the detail.
var codeOf = map[errs.Kind]connect.Code{
	errs.Invalid:         connect.CodeInvalidArgument,
	errs.LineNotFound:    connect.CodeInvalidArgument,
	errs.ProductNotFound: connect.CodeNotFound,
	errs.OrderNotFound:   connect.CodeNotFound,
	errs.ProductExists:   connect.CodeAlreadyExists,
	errs.OutOfStock:      connect.CodeFailedPrecondition,
	errs.KeyReused:       connect.CodeFailedPrecondition,
	errs.KeyInUse:        connect.CodeAborted,
	errs.Conflict:        connect.CodeAborted,
	errs.Unavailable:     connect.CodeUnavailable,
	errs.Exhausted:       connect.CodeResourceExhausted,
	errs.Internal:        connect.CodeInternal,
}

// Portable is the wire form of a portable error.
func Portable(p errs.Portable) *errsv1.Error {
	return &errsv1.Error{Kind: string(p.Kind), Message: p.Message, Fields: p.Fields}
}

// FromWire is the portable error a wire form carries.
func FromWire(e *errsv1.Error) errs.Portable {
	return errs.Portable{Kind: errs.Kind(e.GetKind()), Message: e.GetMessage(), Fields: e.GetFields()}
}

// ServerError turns what a module returned into a Connect error carrying
// its portable form, which is all the caller gets; the error itself stays
// with it for the module's log (see Observe). A request cut short by its
// deadline is DeadlineExceeded, so that the caller sees its own deadline.
func ServerError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	return &causedError{ce: wireError(ctx, err), cause: err}
}

// wireError is the Connect error the caller of a module gets for err.
func wireError(ctx context.Context, err error) *connect.Error {
	if ctx.Err() != nil && errs.Of(err) == errs.Internal {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return connect.NewError(connect.CodeDeadlineExceeded, ctx.Err())
		}
		return connect.NewError(connect.CodeCanceled, ctx.Err())
	}
	p := errs.Encode(err)
	code, ok := codeOf[p.Kind]
	if !ok {
		code = connect.CodeUnknown
	}
	ce := connect.NewError(code, errors.New(p.Message))
	if detail, derr := connect.NewErrorDetail(Portable(p)); derr == nil {
		ce.AddDetail(detail)
	}
	return ce
}

// Reply is a handler's answer: msg, or err as ServerError makes it.
func Reply[T any](ctx context.Context, msg *T, err error) (*connect.Response[T], error) {
	if err != nil {
		return nil, ServerError(ctx, err)
	}
	return connect.NewResponse(msg), nil
}

// ClientError turns the error of a call into the domain error the module
// returned; unavailable is the caller's error for a module that could not
// be reached or did not answer in time (for example products.ErrUnavailable).
func ClientError(err error, unavailable error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return fmt.Errorf("%w: %w", unavailable, err)
	}
	for _, d := range ce.Details() {
		if v, derr := d.Value(); derr == nil {
			if e, ok := v.(*errsv1.Error); ok {
				return errs.Decode(FromWire(e))
			}
		}
	}
	switch ce.Code() {
	case connect.CodeDeadlineExceeded:
		return fmt.Errorf("%w: %w", unavailable, context.DeadlineExceeded)
	case connect.CodeUnavailable, connect.CodeCanceled, connect.CodeResourceExhausted, connect.CodeAborted:
		return fmt.Errorf("%w: %w", unavailable, err)
	}
	return err
}

// Retries is how often a client retries an idempotent call that could not
// reach its module, with jittered exponential backoff from RetryBackoff,
// within the call's deadline.
const (
	Retries      = 2
	RetryBackoff = 20 * time.Millisecond
)

// retryIdempotent retries, with backoff, the calls whose method the schema
// marks idempotent (idempotency_level), when the module could not be
// reached (see unreachable) and the call's deadline leaves time. Other calls
// and other errors are returned at once: a retried Create could be
// refused for its own first attempt.
func retryIdempotent() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			resp, err := next(ctx, req)
			if req.Spec().IdempotencyLevel == connect.IdempotencyUnknown {
				return resp, err
			}
			backoff := RetryBackoff
			for attempt := 0; attempt < Retries && unreachable(err); attempt++ {
				wait := backoff/2 + rand.N(backoff/2+1)
				if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
					return resp, err
				}
				select {
				case <-ctx.Done():
					return resp, err
				case <-time.After(wait):
				}
				backoff *= 2
				resp, err = next(ctx, req)
			}
			return resp, err
		}
	}
}

// unreachable reports whether a call failed without an answer of the
// module: a module's own errors (its backend down included) carry their
// portable form and are answers, not retried.
func unreachable(err error) bool {
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeUnavailable {
		return false
	}
	for _, d := range ce.Details() {
		if d.Type() == string((&errsv1.Error{}).ProtoReflect().Descriptor().FullName()) {
			return false
		}
	}
	return true
}

// ClientOptions are the options of every module client: retries of
// idempotent calls, the request id and trace context sent with every
// call (propagate), no compression (modules talk over a fast network, and
// gzip costs more CPU than it saves there), and counting every call when
// counter is not nil.
func ClientOptions(counter func(procedure string)) []connect.ClientOption {
	opts := []connect.ClientOption{
		connect.WithInterceptors(retryIdempotent(), propagate()),
		connect.WithAcceptCompression("gzip", nil, nil),
	}
	if counter != nil {
		opts = append(opts, connect.WithInterceptors(connect.UnaryInterceptorFunc(
			func(next connect.UnaryFunc) connect.UnaryFunc {
				return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
					counter(req.Spec().Procedure)
					return next(ctx, req)
				}
			})))
	}
	return opts
}

// Limits bound the messages of a module's calls, in bytes, on both sides
// of the wire: a handler reads requests of at most Request bytes and sends
// replies of at most Reply; its clients send and read the same. A message
// over its limit is not read whole: the call fails with ResourceExhausted
// (the caller's Unavailable, 503 at the gateway). Each module sizes them
// from its largest legitimate message.
type Limits struct{ Request, Reply int }

// HandlerOptions are the options of every module's handler: its limits,
// and compressed responses, for a client that asks for them (a gRPC
// client may), only for messages large enough to be worth it.
func HandlerOptions(l Limits) []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithCompressMinBytes(16 << 10),
		connect.WithReadMaxBytes(l.Request),
		connect.WithSendMaxBytes(l.Reply),
	}
}

// LimitOptions are the options of a module's clients that hold calls to
// its limits.
func LimitOptions(l Limits) []connect.ClientOption {
	return []connect.ClientOption{connect.WithReadMaxBytes(l.Reply), connect.WithSendMaxBytes(l.Request)}
}

// LimitBodies bounds the bytes read from the body of each request to h,
// whatever it declares (a chunked body declares nothing): a request's
// limit, and the framing of a gRPC envelope. Connect refuses a larger
// message too, but then reads the rest of it, to keep the connection.
func LimitBodies(h http.Handler, l Limits) http.Handler {
	const framing = 1 << 10
	return http.MaxBytesHandler(h, int64(l.Request)+framing)
}

// NewHTTPClient returns the HTTP client of module calls: HTTP/1.1 with a
// pool of keep-alive connections as large as the callers' concurrency
// (a call's deadline travels in its headers), connecting within dial, and
// each call's request sent in one write (see oneWrite).
func NewHTTPClient(dial time.Duration, conns int) *http.Client {
	return &http.Client{Transport: oneWrite{&http.Transport{
		DialContext:           (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // the call's deadline bounds it
		DisableCompression:    true,
		WriteBufferSize:       2 * maxOneWrite, // a request of maxOneWrite, and its headers
	}}}
}

// maxOneWrite is the largest request body oneWrite sends with its headers:
// any call of the modules but those carrying hundreds of order lines.
const maxOneWrite = 8 << 10

// oneWrite sends a request whose body is at most maxOneWrite bytes in one
// write with its headers. net/http writes the headers of a request on
// their own, before the body, unless it knows the body to be in memory
// (a *bytes.Reader, for example), and a Connect call's body is not one it
// knows: every call would cost the caller a second system call, and the
// module a second wake-up to read the body.
type oneWrite struct{ next *http.Transport }

func (t oneWrite) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody || req.ContentLength <= 0 || req.ContentLength > maxOneWrite {
		return t.next.RoundTrip(req)
	}
	body := make([]byte, req.ContentLength)
	_, err := io.ReadFull(req.Body, body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	r := *req // RoundTrip must not change req: a shallow copy with the body
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return t.next.RoundTrip(&r)
}

// CloseIdleConnections closes the transport's idle connections (what
// http.Client.CloseIdleConnections calls).
func (t oneWrite) CloseIdleConnections() { t.next.CloseIdleConnections() }

// Server is how a module's process serves its Connect service.
type Server struct {
	// Ready reports whether what the process cannot do without answers:
	// its backend (its /readyz).
	Ready func(context.Context) error
	// Auth says which calls the service accepts.
	Auth Auth
	// Log receives the refused calls.
	Log *slog.Logger
}

// Mux returns the handler of a module's process: its modules' Connect
// services (path → service), for the calls s.Auth accepts, each in a
// context with its caller's request id and trace context; /healthz (the
// process runs) and /readyz (s.Ready), open to every caller.
func Mux(s Server, services map[string]http.Handler) http.Handler {
	ready := s.Ready
	mux := http.NewServeMux()
	for path, service := range services {
		mux.Handle(path, incoming(authenticate(service, s.Auth, s.Log)))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status": "ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, `{"status": "unavailable"}`)
			return
		}
		fmt.Fprintln(w, `{"status": "ready"}`)
	})
	return mux
}

// Protocols are the HTTP protocols a module's server speaks: HTTP/1.1 for
// the Connect protocol, and HTTP/2 without TLS (h2c) for gRPC clients.
func Protocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return p
}

// Ready asks a module's process whether it is ready (its /readyz), and
// fails with unavailable if it is not or cannot be reached.
func Ready(ctx context.Context, client *http.Client, baseURL string, unavailable error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", unavailable, baseURL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s/readyz answered %d", unavailable, baseURL, resp.StatusCode)
	}
	return nil
}
