package rpc

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"

	"github.com/airshipltd/airship/internal/bearer"
)

// Module calls are authenticated with a secret the modules share (the
// module_token setting): every client sends it as "Authorization: Bearer
// <token>" (SendToken), and every module's handler refuses a call that
// does not carry it (authenticate) before reading its message, in every
// protocol the handler speaks (Connect, gRPC, gRPC-Web), with
// Unauthenticated.

// SendToken is the client option that sends token with every call, as a
// bearer token; a client without a token (token "") sends none.
func SendToken(token string) connect.ClientOption {
	return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if token != "" {
				req.Header().Set(bearer.Header, bearer.Value(token))
			}
			return next(ctx, req)
		}
	}))
}

// Auth says which calls a module's handler accepts.
type Auth struct {
	// Token is the bearer token a call must carry; "" when the module has
	// none (then only Optional lets calls in).
	Token string
	// Optional also accepts calls that carry no token at all: for a
	// rolling upgrade from a release whose callers send none. A call
	// with a token other than Token is refused all the same.
	Optional bool
}

// errWrongToken and errNoToken are the refusals' messages: they tell the
// caller what to fix and nothing about the token.
var (
	errNoToken    = errors.New("module call refused: it carries no module token (Authorization: Bearer <module_token>)")
	errWrongToken = errors.New("module call refused: its module token is not this module's")
)

// authenticate refuses the calls to next that a does not accept, with
// Unauthenticated in the caller's protocol; the refusal is logged.
func authenticate(next http.Handler, a Auth, log *slog.Logger) http.Handler {
	keys := bearer.NewKeys()
	if a.Token != "" {
		keys = bearer.NewKeys(a.Token)
	}
	errw := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, present, ok := bearer.Token(r.Header.Values(bearer.Header))
		var refusal error
		switch {
		case !present && a.Optional:
		case !present:
			refusal = errNoToken
		case !ok || !keys.Match(token):
			refusal = errWrongToken
		}
		if refusal == nil {
			next.ServeHTTP(w, r)
			return
		}
		log.InfoContext(r.Context(), "module call refused", "procedure", r.URL.Path, "remote", r.RemoteAddr, "err", refusal)
		w.Header().Set("WWW-Authenticate", `Bearer realm="airship-modules"`)
		_ = errw.Write(w, r, connect.NewError(connect.CodeUnauthenticated, refusal))
	})
}
