package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientDependsOnLittle: a program that imports the client compiles
// none of the server (no echo, no database driver, no other package of
// airship), only the client's own few modules.
func TestClientDependsOnLittle(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/airshipltd/airship/client").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	allowed := []string{
		"github.com/airshipltd/airship/client",
		"github.com/oapi-codegen/runtime", "github.com/apapsch/go-jsonmerge/v2", "github.com/google/uuid",
		"github.com/shopspring/decimal", "github.com/cenkalti/backoff/v5",
	}
	for _, pkg := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(pkg, "/")
		if !strings.Contains(first, ".") || first == "vendor" {
			continue // the standard library
		}
		ok := false
		for _, a := range allowed {
			ok = ok || pkg == a || strings.HasPrefix(pkg, a+"/")
		}
		if !ok {
			t.Errorf("the client depends on %s", pkg)
		}
	}
}
