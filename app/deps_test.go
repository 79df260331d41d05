package app_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDefaultBuildHasNoRPC: only a build with -tags remote links the
// Connect adapters; the default binary holds no RPC code at all: no
// Connect, no module schema, no adapter. (Protocol Buffers themselves are
// linked by the OTLP trace exporter in every build.)
func TestDefaultBuildHasNoRPC(t *testing.T) {
	rpc := []string{"connectrpc.com/", "github.com/airshipltd/airship/api/",
		"github.com/airshipltd/airship/internal/rpc", "github.com/airshipltd/airship/products/productsrpc",
		"github.com/airshipltd/airship/orders/ordersrpc"}
	deps := func(tags string) string {
		out, err := exec.Command("go", "list", "-tags", tags, "-deps", "github.com/airshipltd/airship").CombinedOutput()
		if err != nil {
			t.Fatalf("go list -tags %q -deps: %v\n%s", tags, err, out)
		}
		return string(out)
	}
	def := deps("")
	for _, p := range rpc {
		if strings.Contains(def, p) {
			t.Errorf("the default build depends on %s", p)
		}
	}
	remote := deps("remote")
	for _, p := range rpc {
		if !strings.Contains(remote, p) {
			t.Errorf("the remote build does not depend on %s", p)
		}
	}
}
