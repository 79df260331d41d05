package app

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airshipltd/airship/internal/config"
	"go.yaml.in/yaml/v3"
)

// TestCFManifest checks manifest.yml (cf push) against airship: the
// binary buildpack runs the binary make build-linux writes, the health
// check asks /readyz over HTTP, every AIRSHIP_* variable is a real key,
// the address is left to $PORT, the shutdown fits in Cloud Foundry's 10s
// between SIGTERM and SIGKILL, and with PostgreSQL and Redis bound the
// configuration loads in production mode.
func TestCFManifest(t *testing.T) {
	b, err := os.ReadFile("../manifest.yml")
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Applications []struct {
			Name                    string            `yaml:"name"`
			Path                    string            `yaml:"path"`
			Buildpacks              []string          `yaml:"buildpacks"`
			Command                 string            `yaml:"command"`
			HealthCheckType         string            `yaml:"health-check-type"`
			HealthCheckHTTPEndpoint string            `yaml:"health-check-http-endpoint"`
			Env                     map[string]string `yaml:"env"`
			Services                []string          `yaml:"services"`
		} `yaml:"applications"`
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest.yml: %v", err)
	}
	if len(m.Applications) != 1 {
		t.Fatalf("manifest.yml has %d applications; want airship alone", len(m.Applications))
	}
	app := m.Applications[0]
	if !slices.Equal(app.Buildpacks, []string{"binary_buildpack"}) {
		t.Errorf("buildpacks %q; want [binary_buildpack]", app.Buildpacks)
	}
	if app.Path != "bin/linux-amd64" || !strings.Contains(string(makefile), "LINUX_BIN  := bin/linux-$(ARCH)/airship") {
		t.Errorf("path %q; want bin/linux-amd64, where make build-linux writes the binary", app.Path)
	}
	if app.Command != "./airship serve" {
		t.Errorf("command %q; want ./airship serve", app.Command)
	}
	if app.HealthCheckType != "http" || app.HealthCheckHTTPEndpoint != "/readyz" {
		t.Errorf("health check %s %s; want http /readyz", app.HealthCheckType, app.HealthCheckHTTPEndpoint)
	}
	if len(app.Services) != 2 {
		t.Errorf("services %q; want a PostgreSQL and a Redis service", app.Services)
	}

	keys := config.Keys()
	for k := range app.Env {
		if !strings.HasPrefix(k, "AIRSHIP_") || !slices.ContainsFunc(keys, func(key string) bool { return config.EnvName(key) == k }) {
			t.Errorf("env %s is no airship configuration key", k)
		}
	}
	for _, k := range []string{"AIRSHIP_ADDR", "AIRSHIP_POSTGRES_URL", "AIRSHIP_REDIS_URL", "AIRSHIP_DATA_DIR"} {
		if _, ok := app.Env[k]; ok {
			t.Errorf("env sets %s; leave it to $PORT and the bound services", k)
		}
	}

	// The instance's environment: the manifest's, PORT and bound services.
	t.Chdir(t.TempDir()) // what is pushed has no config.yaml
	for _, k := range keys {
		t.Setenv(config.EnvName(k), app.Env[config.EnvName(k)])
	}
	t.Setenv("PORT", "8080")
	t.Setenv("VCAP_SERVICES", vcapServices)
	cfg, err := LoadConfig("", nil)
	if err != nil {
		t.Fatalf("configuration on Cloud Foundry: %v", err)
	}
	if embedded := mustResolve(t, cfg).embedded; cfg.Addr != ":8080" || embedded {
		t.Errorf("on Cloud Foundry: addr %q, embedded %v; want :8080 on PostgreSQL + Redis", cfg.Addr, embedded)
	}
	if cfg.ShutdownTimeout >= 10*time.Second {
		t.Errorf("shutdown_timeout %s; Cloud Foundry kills the instance 10s after SIGTERM", cfg.ShutdownTimeout)
	}
}
