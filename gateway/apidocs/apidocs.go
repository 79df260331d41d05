// Package apidocs serves airship's API description and its interactive
// documentation: the OpenAPI document (openapi.yaml, also as JSON), Swagger
// UI at /docs and ReDoc at /redoc, every asset embedded in the binary.
package apidocs

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed" // the OpenAPI document and the ReDoc bundle
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/swaggest/swgui"
	"github.com/swaggest/swgui/v5emb"
	"go.yaml.in/yaml/v3"
)

// openAPIYAML is the hand-written OpenAPI 3.0.3 description of the API.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// redocBundle is bundles/redoc.standalone.js of the npm package redoc
// 2.5.4, vendored unmodified (MIT licence; sha256
// dcaf76612bc4a3fbcc923a8966dee2f6146a5f32e5ce1b6f02dd60cbbf89500b).
//
//go:embed assets/redoc.standalone.js
var redocBundle []byte

// YAML returns the OpenAPI document as it is published. The tests
// validate it (internal/apitest.LoadOpenAPI); serving needs no parser of
// OpenAPI.
func YAML() []byte { return bytes.Clone(openAPIYAML) }

// openAPIJSON is the document converted to JSON, once per process, with
// its keys in the order they are written (the order the docs show).
var openAPIJSON = sync.OnceValue(func() []byte {
	// A broken embedded document panics; the gateway tests catch it.
	var root yaml.Node
	if err := yaml.Unmarshal(openAPIYAML, &root); err != nil {
		panic(fmt.Sprintf("parse openapi.yaml: %v", err))
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, &root); err != nil {
		panic(fmt.Sprintf("openapi.yaml to JSON: %v", err))
	}
	return buf.Bytes()
})

// writeJSON writes a YAML node as JSON, keeping the order of mapping keys.
func writeJSON(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return fmt.Errorf("line %d: want one document", n.Line)
		}
		return writeJSON(buf, n.Content[0])
	case yaml.AliasNode:
		return writeJSON(buf, n.Alias)
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				buf.WriteByte(',')
			}
			key, err := json.Marshal(n.Content[i].Value)
			if err != nil {
				return err
			}
			buf.Write(key)
			buf.WriteByte(':')
			if err := writeJSON(buf, n.Content[i+1]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, item); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		buf.Write(b)
	default:
		return fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
	return nil
}

// The ReDoc bundle always renders a "powered by" logo fetched from
// cdn.redoc.ly; it is replaced by an inline image so that the docs load
// nothing from outside the server.
const (
	redocLogoURL    = "https://cdn.redoc.ly/redoc/logo-mini.svg"
	redocLogoInline = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E"
)

// asset is a static file served from memory, gzip-compressed when the
// client accepts it.
type asset struct {
	contentType string
	plain, gz   []byte
	etag        string
}

func newAsset(contentType string, body []byte) *asset {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(body) // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	sum := sha256.Sum256(body)
	return &asset{contentType: contentType, plain: body, gz: buf.Bytes(), etag: hex.EncodeToString(sum[:12])}
}

func (a *asset) serve(c echo.Context) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
	setDocsCSP(h)
	body, etag := a.plain, a.etag
	if strings.Contains(c.Request().Header.Get(echo.HeaderAcceptEncoding), "gzip") {
		h.Set(echo.HeaderContentEncoding, "gzip")
		body, etag = a.gz, a.etag+"-gz"
	}
	h.Set("ETag", `"`+etag+`"`)
	http.ServeContent(c.Response(), c.Request(), "", time.Time{}, bytes.NewReader(body))
	return nil
}

// setDocsCSP forbids the documentation pages to load or send anything
// outside the server.
func setDocsCSP(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; "+
		"style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "+
		"worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'self'")
}

const redocPage = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Airship shop API - ReDoc</title>
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
  <style>body { margin: 0; padding: 0; }</style>
</head>
<body>
  <div id="redoc-container"></div>
  <script src="/redoc/redoc.standalone.js"></script>
  <script>
    var systemFont = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
    Redoc.init('/openapi.json', {
      expandResponses: '200',
      theme: {
        typography: {
          fontFamily: systemFont,
          headings: { fontFamily: systemFont },
          code: { fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace' }
        }
      }
    }, document.getElementById('redoc-container'));
  </script>
</body>
</html>
`

// Routes are the documentation's routes, served beside the API.
var Routes = []string{
	"GET " + docsPathYAML, "GET " + docsPathJSON, "GET " + docsPathUI, "GET " + docsPathUI + "/*",
	"GET " + docsPathRedoc, "GET " + docsPathRedoc + "/redoc.standalone.js",
}

// Documentation paths.
const (
	docsPathYAML  = "/openapi.yaml"
	docsPathJSON  = "/openapi.json"
	docsPathUI    = "/docs"
	docsPathRedoc = "/redoc"
)

// The documents and pages are built once per process, on first use.
var (
	yamlAsset  = sync.OnceValue(func() *asset { return newAsset("application/yaml; charset=utf-8", openAPIYAML) })
	jsonAsset  = sync.OnceValue(func() *asset { return newAsset(echo.MIMEApplicationJSON, openAPIJSON()) })
	redocAsset = sync.OnceValue(func() *asset { return newAsset(echo.MIMETextHTMLCharsetUTF8, []byte(redocPage)) })
	redocJS    = sync.OnceValue(func() *asset {
		js := bytes.ReplaceAll(redocBundle, []byte(redocLogoURL), []byte(redocLogoInline))
		return newAsset(echo.MIMEApplicationJavaScriptCharsetUTF8, js)
	})
)

func serveAsset(a func() *asset) echo.HandlerFunc {
	return func(c echo.Context) error { return a().serve(c) }
}

// Register serves the OpenAPI document and its interactive documentation
// with get, which registers a GET route: Swagger UI at /docs and ReDoc at
// /redoc. Every asset is embedded in the binary; nothing is loaded from
// outside the server. A page the UI does not have is echo.ErrNotFound.
func Register(get func(path string, h echo.HandlerFunc)) {
	openAPIJSON() // a broken document fails at start, not on first request

	get(docsPathYAML, serveAsset(yamlAsset))
	get(docsPathJSON, serveAsset(jsonAsset))
	get(docsPathRedoc, serveAsset(redocAsset))
	get(docsPathRedoc+"/redoc.standalone.js", serveAsset(redocJS))

	ui := echo.WrapHandler(v5emb.NewHandlerWithConfig(swgui.Config{
		Title:       "Airship shop API",
		SwaggerJSON: docsPathJSON,
		BasePath:    docsPathUI,
		SettingsUI: map[string]string{
			"defaultModelsExpandDepth": "1",
			"displayRequestDuration":   "true",
		},
	}))
	withCSP := func(c echo.Context) error {
		setDocsCSP(c.Response().Header())
		// The UI's own 404 is plain text; answer the API's JSON error instead.
		catcher := &notFoundCatcher{ResponseWriter: c.Response().Writer}
		c.Response().Writer = catcher
		err := ui(c)
		c.Response().Writer = catcher.ResponseWriter
		if catcher.notFound {
			c.Response().Committed = false
			return echo.ErrNotFound
		}
		return err
	}
	get(docsPathUI, withCSP)
	get(docsPathUI+"/*", withCSP)
}

// notFoundCatcher swallows a 404 answer so that the caller can send its
// own, and names the charset of HTML pages, which the UI's handler leaves
// out.
type notFoundCatcher struct {
	http.ResponseWriter
	notFound, wrote bool
}

func (w *notFoundCatcher) WriteHeader(code int) {
	w.wrote = true
	if code == http.StatusNotFound {
		w.notFound = true
		w.Header().Del("Content-Type")
		return
	}
	if ct := w.Header().Get(echo.HeaderContentType); strings.EqualFold(ct, echo.MIMETextHTML) {
		w.Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *notFoundCatcher) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.notFound {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}
