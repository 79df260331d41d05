package app

import (
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestComposeServicesConfigured: every airship service of compose.yaml,
// the split profile's included, sets only airship's environment variables,
// and with them its configuration is valid (each module has the backend
// and the module URLs it needs); the module URLs name services of the
// file.
func TestComposeServicesConfigured(t *testing.T) {
	raw, err := os.ReadFile("../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]struct {
			Profiles    []string          `yaml:"profiles"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	known := map[string]bool{}
	for _, k := range ConfigKeys() {
		known[EnvName(k)] = true
	}
	modules := map[string]bool{}
	for name, svc := range file.Services {
		if !strings.HasPrefix(strings.Join(keysOf(svc.Environment), " "), "AIRSHIP_") {
			continue // PostgreSQL, Redis
		}
		t.Run(name, func(t *testing.T) {
			for k := range svc.Environment {
				if !known[k] {
					t.Errorf("sets %s, which is not one of airship's settings", k)
				}
			}
			for _, k := range ConfigKeys() {
				t.Setenv(EnvName(k), "")
			}
			for k, v := range svc.Environment {
				t.Setenv(k, v)
			}
			cfg, err := loadFromEnv(t)
			if err != nil {
				t.Fatalf("its configuration is refused: %v", err)
			}
			modules[cfg.Modules] = true
			if cfg.Modules != ModulesAll && !slices.Contains(svc.Profiles, "split") {
				t.Errorf("runs modules %s outside the split profile", cfg.Modules)
			}
			for _, u := range []string{cfg.ProductsURL, cfg.OrdersURL} {
				host, _, _ := strings.Cut(strings.TrimPrefix(u, "http://"), ":")
				if _, ok := file.Services[host]; u != "" && !ok {
					t.Errorf("calls %s, which is no service of compose.yaml", u)
				}
			}
		})
	}
	for _, m := range []string{ModulesAll, ModuleGateway, ModuleProducts, ModuleOrders} {
		if !modules[m] {
			t.Errorf("no service of compose.yaml runs modules %s", m)
		}
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
