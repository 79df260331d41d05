package app

import (
	"bufio"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airshipltd/airship/internal/config"
	"go.yaml.in/yaml/v3"
)

// composeFile is the part of a compose file that airship's checks read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

type composeService struct {
	Image    string   `yaml:"image"`
	Profiles []string `yaml:"profiles"`
	Secrets  []string `yaml:"secrets"`
	Build    *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Environment     envMap             `yaml:"environment"`
	Ports           []composePort      `yaml:"ports"`
	User            string             `yaml:"user"`
	ReadOnly        bool               `yaml:"read_only"`
	StopGracePeriod string             `yaml:"stop_grace_period"`
	Healthcheck     *composeHealth     `yaml:"healthcheck"`
	DependsOn       map[string]dependB `yaml:"depends_on"`
}

type composeHealth struct {
	Test     []string `yaml:"test"`
	Interval string   `yaml:"interval"`
	Timeout  string   `yaml:"timeout"`
}

type dependB struct {
	Condition string `yaml:"condition"`
}

// envMap reads compose's environment in either form: a map, or a list of
// KEY=VALUE.
type envMap map[string]string

func (e *envMap) UnmarshalYAML(n *yaml.Node) error {
	*e = envMap{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
		return nil
	}
	return n.Decode((*map[string]string)(e))
}

// composePort reads a published port in the short ("8000:8000",
// "127.0.0.1:8000:8000/tcp") or the long form; Target is the container's.
type composePort struct{ Published, Target string }

func (p *composePort) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s, _, _ := strings.Cut(n.Value, "/")
		parts := strings.Split(s, ":")
		p.Target = parts[len(parts)-1]
		if len(parts) > 1 {
			p.Published = parts[len(parts)-2]
		}
		return nil
	}
	var long struct {
		Target    string `yaml:"target"`
		Published string `yaml:"published"`
	}
	err := n.Decode(&long)
	p.Target, p.Published = long.Target, long.Published
	return err
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

// composeSecretDir is where compose mounts a service's secrets.
const composeSecretDir = "/run/secrets/"

// environment returns a service's environment as it reaches the
// container, with each variable that names a secret file (*_FILE) naming
// that file in the repository instead (an absolute path), so that airship's configuration
// loads here as it does in the container. Each must name a secret the
// service mounts, defined in the file by a file that exists.
func (c composeFile) environment(t *testing.T, name string) map[string]string {
	t.Helper()
	svc := c.Services[name]
	env := map[string]string{}
	for k, v := range svc.Environment {
		env[k] = v
		if !strings.HasSuffix(k, "_FILE") {
			continue
		}
		secret, ok := strings.CutPrefix(v, composeSecretDir)
		if !ok || !slices.Contains(svc.Secrets, secret) {
			t.Errorf("service %s: %s=%s is not a secret it mounts (%s of %v)", name, k, v, composeSecretDir, svc.Secrets)
			continue
		}
		def, ok := c.Secrets[secret]
		if !ok || def.File == "" {
			t.Errorf("service %s mounts secret %s, which the file does not define by a file", name, secret)
			continue
		}
		path, err := filepath.Abs(filepath.Join("..", def.File))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("secret %s: %v", secret, err)
		}
		env[k] = path
	}
	return env
}

// dockerfile returns the Dockerfile's instructions, each with its
// arguments (continuation lines joined), by keyword.
func dockerfile(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	var line string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		s := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(s, "#") || (s == "" && line == "") {
			continue
		}
		if strings.HasSuffix(s, `\`) {
			line += strings.TrimSuffix(s, `\`) + " "
			continue
		}
		line += s
		keyword, args, _ := strings.Cut(line, " ")
		out[strings.ToUpper(keyword)] = append(out[strings.ToUpper(keyword)], strings.TrimSpace(args))
		line = ""
	}
	return out
}

// portOf returns the port of a listen address.
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("addr %q: %v", addr, err)
	}
	return port
}

// TestComposeFile checks compose.yaml against airship's configuration and
// its Dockerfile, as far as can be done without a Docker engine.
func TestComposeFile(t *testing.T) {
	c, df := readCompose(t), dockerfile(t)
	keys := config.Keys()
	for name, svc := range c.Services {
		for k := range svc.Environment {
			if strings.HasPrefix(k, "AIRSHIP_") && !slices.ContainsFunc(keys, func(key string) bool { return config.EnvName(key) == k }) &&
				!slices.ContainsFunc(config.SecretKeys(), func(key string) bool { return config.FileEnvName(key) == k }) {
				t.Errorf("service %s sets %s, which is no airship configuration key", name, k)
			}
		}
		for _, s := range svc.Secrets {
			if _, ok := c.Secrets[s]; !ok {
				t.Errorf("service %s mounts secret %s, which the file does not define", name, s)
			}
		}
		for dep, d := range svc.DependsOn {
			other, ok := c.Services[dep]
			if !ok {
				t.Errorf("service %s depends on %s, which is not in the file", name, dep)
			} else if d.Condition == "service_healthy" && other.Healthcheck == nil {
				t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		if h := svc.Healthcheck; h != nil {
			for _, d := range []string{h.Interval, h.Timeout} {
				if _, err := time.ParseDuration(d); d != "" && err != nil {
					t.Errorf("service %s: healthcheck duration %q: %v", name, d, err)
				}
			}
		}
	}

	air, ok := c.Services["airship"]
	if !ok {
		t.Fatal("compose.yaml has no airship service")
	}
	if air.Build == nil || air.Build.Context != "." || (air.Build.Dockerfile != "" && air.Build.Dockerfile != "Dockerfile") {
		t.Errorf("airship is not built from the repository's Dockerfile: %+v", air.Build)
	}

	// The configuration the container gets must load, in production mode.
	env, pgEnv := c.environment(t, "airship"), c.environment(t, "postgres")
	t.Chdir(t.TempDir()) // no ./config.yaml
	for _, k := range keys {
		t.Setenv(config.EnvName(k), env[config.EnvName(k)])
	}
	for _, k := range config.SecretKeys() {
		t.Setenv(config.FileEnvName(k), env[config.FileEnvName(k)])
	}
	t.Setenv("PORT", "")
	t.Setenv("VCAP_SERVICES", "")
	cfg, err := LoadConfig("", nil)
	if err != nil {
		t.Fatalf("airship's environment in compose.yaml: %v", err)
	}
	if mustResolve(t, cfg).embedded {
		t.Error("airship runs on the embedded store in compose.yaml; want PostgreSQL + Redis")
	}

	// Ports: published = the port airship listens on = the image's EXPOSE,
	// which also names the metrics port.
	port := portOf(t, cfg.Addr)
	if len(air.Ports) == 0 {
		t.Error("airship publishes no port")
	}
	for _, p := range air.Ports {
		if p.Target != port {
			t.Errorf("airship publishes container port %s; it listens on %s", p.Target, cfg.Addr)
		}
	}
	expose := strings.Fields(strings.Join(df["EXPOSE"], " "))
	if want := []string{portOf(t, config.Defaults().Addr), portOf(t, config.Defaults().MetricsAddr)}; !slices.Equal(expose, want) || want[0] != port {
		t.Errorf("Dockerfile EXPOSE %q; airship listens on %s (default %s) and serves metrics on %s",
			expose, cfg.Addr, config.Defaults().Addr, config.Defaults().MetricsAddr)
	}

	// Health checks: both the Dockerfile's and compose's run `airship
	// healthcheck` by the entrypoint's path, with time for its own timeout.
	entrypoint := strings.Trim(strings.TrimSpace(strings.Join(df["ENTRYPOINT"], "")), `[]"`)
	if air.Healthcheck == nil || !slices.Equal(air.Healthcheck.Test, []string{"CMD", entrypoint, "healthcheck"}) {
		t.Errorf("airship's healthcheck %+v; want [CMD %s healthcheck]", air.Healthcheck, entrypoint)
	} else {
		own := config.HealthcheckTimeout
		if d, _ := time.ParseDuration(air.Healthcheck.Timeout); d <= own {
			t.Errorf("airship's healthcheck timeout %s; want more than airship healthcheck's own %s", air.Healthcheck.Timeout, own)
		}
	}
	if hc := strings.Join(df["HEALTHCHECK"], ""); !strings.Contains(hc, `CMD ["`+entrypoint+`", "healthcheck"]`) {
		t.Errorf("Dockerfile HEALTHCHECK %q does not run %s healthcheck", hc, entrypoint)
	}

	// Shutdown: the stop grace period covers shutdown_timeout.
	if grace, err := time.ParseDuration(air.StopGracePeriod); err != nil || grace <= cfg.ShutdownTimeout {
		t.Errorf("airship's stop_grace_period %q; want more than shutdown_timeout %s", air.StopGracePeriod, cfg.ShutdownTimeout)
	}
	if air.User != "65532:65532" || !air.ReadOnly {
		t.Errorf("airship runs as %q, read_only %v; want 65532:65532 on a read-only root, as the image is tested", air.User, air.ReadOnly)
	}

	// The backends: airship's URLs name the services, with their
	// credentials, and their health checks ask the same servers.
	pg, rd := c.Services["postgres"], c.Services["redis"]
	pgURL, err := url.Parse(cfg.PostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := pgURL.User.Password()
	if f := pg.Environment["POSTGRES_PASSWORD_FILE"]; f != "" {
		b, err := os.ReadFile(pgEnv["POSTGRES_PASSWORD_FILE"])
		if err != nil {
			t.Fatalf("postgres password file %s: %v", f, err)
		}
		pg.Environment["POSTGRES_PASSWORD"] = strings.TrimRight(string(b), "\r\n") // as the postgres image reads it
	}
	if pgURL.Hostname() != "postgres" || pgURL.Port() != "5432" || pgURL.User.Username() != pg.Environment["POSTGRES_USER"] ||
		pw != pg.Environment["POSTGRES_PASSWORD"] || strings.TrimPrefix(pgURL.Path, "/") != pg.Environment["POSTGRES_DB"] {
		t.Errorf("AIRSHIP_POSTGRES_URL %s does not match the postgres service %v", config.RedactConnString(cfg.PostgresURL), pg.Environment)
	}
	if pg.Healthcheck == nil || !slices.Contains(pg.Healthcheck.Test, "pg_isready") ||
		!strings.Contains(strings.Join(pg.Healthcheck.Test, " "), "-U "+pg.Environment["POSTGRES_USER"]) {
		t.Errorf("postgres healthcheck %+v; want pg_isready -U %s", pg.Healthcheck, pg.Environment["POSTGRES_USER"])
	}
	rdURL, err := url.Parse(cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	if rdURL.Hostname() != "redis" || rdURL.Port() != "6379" {
		t.Errorf("AIRSHIP_REDIS_URL %s does not name the redis service", cfg.RedisURL)
	}
	if rd.Healthcheck == nil || !slices.Equal(rd.Healthcheck.Test, []string{"CMD", "redis-cli", "ping"}) {
		t.Errorf("redis healthcheck %+v; want [CMD redis-cli ping]", rd.Healthcheck)
	}
}

// TestComposeServicesConfigured: every airship service of compose.yaml,
// the split profile's included, sets only airship's environment variables,
// and with them its configuration is valid (each module has the backend
// and the module URLs it needs); the module URLs name services of the
// file, and the split profile's services share one module token.
func TestComposeServicesConfigured(t *testing.T) {
	file := readCompose(t)
	known := map[string]bool{}
	for _, k := range config.Keys() {
		known[config.EnvName(k)] = true
	}
	for _, k := range config.SecretKeys() {
		known[config.FileEnvName(k)] = true
	}
	modules := map[string]bool{}
	tokens := map[string]bool{} // the module tokens of the split profile
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
			for k := range known {
				t.Setenv(k, "")
			}
			for k, v := range file.environment(t, name) {
				t.Setenv(k, v)
			}
			cfg, err := loadFromEnv(t)
			if err != nil {
				t.Fatalf("its configuration is refused: %v", err)
			}
			modules[strings.Join(cfg.Modules, ",")] = true
			if !slices.Equal(cfg.Modules, []string{allModules}) {
				tokens[cfg.ModuleToken] = true
			}
			if !slices.Equal(cfg.Modules, []string{allModules}) && !slices.Contains(svc.Profiles, "split") {
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
	for _, m := range []string{allModules, gatewayModule, productsModule, ordersModule} {
		if !modules[m] {
			t.Errorf("no service of compose.yaml runs modules %s", m)
		}
	}
	// Every module calls the others with the token they require.
	if len(tokens) != 1 || tokens[""] {
		t.Errorf("the split profile's services have %d module tokens (empty among them: %v); want one, the same for all", len(tokens), tokens[""])
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
