package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

const (
	key1 = "first-key-0123456789"
	key2 = "second-key-0123456789"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte("addr: \":7000\"\nrequest_timeout: 3s\nproduct_image_root: http://file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AIRSHIP_REQUEST_TIMEOUT", "4s")
	t.Setenv("AIRSHIP_PRODUCT_IMAGE_ROOT", "http://env")
	t.Setenv("AIRSHIP_API_KEYS", key1+", "+key2)
	flags := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(flags, true)
	if err := flags.Parse([]string{"--product-image-root", "http://flag", "--body-limit", "77"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadChecked(file, flags, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":7000" || cfg.RequestTimeout != 4*time.Second || cfg.ProductImageRoot != "http://flag" || cfg.BodyLimit != 77 {
		t.Fatalf("addr %q, request_timeout %s, image root %q, body limit %d; want file, env, flag, flag values",
			cfg.Addr, cfg.RequestTimeout, cfg.ProductImageRoot, cfg.BodyLimit)
	}
	if !slices.Equal(cfg.APIKeys, []string{key1, key2}) {
		t.Fatalf("api keys %q; want the two, trimmed", cfg.APIKeys)
	}
	if d := Defaults(); d.Addr != ":8000" || d.ProductImageRoot != "http://www.example.com/airship/images" ||
		d.RequestTimeout != 2*time.Second || d.BodyLimit != 1<<20 || len(d.APIKeys) != 0 {
		t.Fatalf("defaults %+v", d)
	}
}

// TestConfigRefusesBadValues: every rule names the key and the problem.
// API key lists with blank or short entries used to be accepted, logged as
// keys, and then ignored, leaving writes open.
func TestConfigRefusesBadValues(t *testing.T) {
	cases := []struct {
		env, value, want string
	}{
		{"AIRSHIP_API_KEYS", ",", "api_keys: entry 1 of 2 is blank"},
		{"AIRSHIP_API_KEYS", " ", "api_keys: entry 1 of 1 is blank"},
		{"AIRSHIP_API_KEYS", ", ,", "api_keys: entry 1 of 3 is blank"},
		{"AIRSHIP_API_KEYS", key1 + ",,", "api_keys: entry 2 of 3 is blank"},
		{"AIRSHIP_API_KEYS", "short", "api_keys: entry 1 of 1 is shorter than 16 characters"},
		{"AIRSHIP_API_KEYS", key1 + ",key with spaces inside", "entry 2 of 2 has a character other than visible ASCII"},
		{"AIRSHIP_REDIS_PREFIX", "shop[1]:", `redis_prefix: has '['`},
		{"AIRSHIP_REDIS_PREFIX", "shop*", `redis_prefix: has '*'`},
		{"AIRSHIP_REDIS_PREFIX", "{shop}:", `redis_prefix: has '{'`},
		{"AIRSHIP_BODY_LIMIT", "0", "body_limit must be positive"},
		{"AIRSHIP_REQUEST_TIMEOUT", "-1s", "request_timeout must be positive"},
		{"AIRSHIP_RESERVATION_TIMEOUT", "1s", "reservation_timeout must be longer than request_timeout"},
		{"AIRSHIP_LOG_FORMAT", "xml", `log_format must be one of json, text, not "xml"`},
		{"AIRSHIP_ACCESS_LOG", "sample:0", `access_log must be all, errors or sample:N with N at least 1, not "sample:0"`},
		{"AIRSHIP_ACCESS_LOG", "some", `access_log must be all, errors or sample:N with N at least 1, not "some"`},
		{"AIRSHIP_POSTGRES_URL", "mysql://u:pw@db/x", "postgres_url: must be a postgres:// URL"},
		{"AIRSHIP_POSTGRES_URL", "host=db password='unclosed", "postgres_url: is not a key=value connection string"},
		{"AIRSHIP_REDIS_URL", "http://cache", "redis_url: must be a redis://"},
		{"AIRSHIP_AMQP_URL", "http://u:pw@mq/", "amqp_url: must be an amqp:// or amqps:// URL"},
		{"AIRSHIP_EVENTS_BATCH_SIZE", "0", "events_batch_size must be positive"},
		{"AIRSHIP_EVENTS_BATCH_SIZE", "20000", "events_batch_size must be at most 10000"},
		{"AIRSHIP_EVENTS_INTERVAL", "0s", "events_interval must be positive"},
		{"AIRSHIP_ADDR", "8000", "addr: must be host:port or :port"},
		{"AIRSHIP_METRICS_ADDR", "nonsense", "metrics_addr: must be host:port or :port"},
		{"AIRSHIP_DEBUG_ADDR", "localhost:http", "debug_addr: must be host:port or :port"},
		{"AIRSHIP_PRODUCTS_URL", "http://u:pw@products:8001", "products_url: must not hold a user or password"},
	}
	for _, c := range cases {
		t.Run(c.env+"="+c.value, func(t *testing.T) {
			if strings.HasSuffix(c.env, "_URL") { // both set, so that only the form is wrong
				t.Setenv("AIRSHIP_POSTGRES_URL", "postgres://db/x")
				t.Setenv("AIRSHIP_REDIS_URL", "redis://cache")
			}
			t.Setenv(c.env, c.value)
			_, err := loadFromEnv(t)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v; want one containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "unclosed") {
				t.Fatalf("error %v quotes a secret", err)
			}
		})
	}
	t.Setenv("AIRSHIP_API_KEYS", key1+" ,"+key2)
	t.Setenv("AIRSHIP_POSTGRES_URL", "host=db user=airship password='s3 cret' dbname=airship")
	t.Setenv("AIRSHIP_REDIS_URL", "redis://:pw@cache:6379/0")
	t.Setenv("AIRSHIP_REDIS_PREFIX", "shop/1:")
	if _, err := loadFromEnv(t); err != nil {
		t.Fatalf("valid settings refused: %v", err)
	}
}

// TestMetricsAddrOff: metrics_addr defaults to :9464; an empty
// AIRSHIP_METRICS_ADDR turns the listener off, unless a flag sets it.
func TestMetricsAddrOff(t *testing.T) {
	c, err := loadFromEnv(t)
	if err != nil || c.MetricsAddr != ":9464" {
		t.Fatalf("default metrics_addr %q, %v; want :9464", c.MetricsAddr, err)
	}
	t.Setenv("AIRSHIP_METRICS_ADDR", "")
	if c, err = loadFromEnv(t); err != nil || c.MetricsAddr != "" {
		t.Fatalf("AIRSHIP_METRICS_ADDR empty: metrics_addr %q, %v; want empty", c.MetricsAddr, err)
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	AddFlags(fs, true)
	if err := fs.Parse([]string{"--metrics-addr=127.0.0.1:9999"}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(file, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = loadChecked(file, fs, nil); err != nil || c.MetricsAddr != "127.0.0.1:9999" {
		t.Fatalf("flag over an empty AIRSHIP_METRICS_ADDR: metrics_addr %q, %v", c.MetricsAddr, err)
	}
}

// loadFromEnv loads the configuration from the environment only.
func loadFromEnv(t *testing.T) (Config, error) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(file, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return loadChecked(file, nil, nil)
}

// TestMaskedHidesSecrets: no form of a secret reaches the start-up log.
func TestMaskedHidesSecrets(t *testing.T) {
	secrets := []string{"s3cret", "other", "hunter2", "sslsecret", "quoted secret", "tokenvalue", key1, "module-token-0123456789abcdef0123"}
	forms := []struct{ pg, redis string }{
		{"postgres://user:s3cret@db/airship?password=other", "redis://:hunter2@cache:6379/0"},
		{"postgresql://user@db/airship?sslpassword=sslsecret&password=other", "redis://user:hunter2@cache:6379/0?password=other"},
		{"host=db user=airship password=s3cret dbname=airship sslpassword=sslsecret", "rediss://default:hunter2@cache:6380/1"},
		{"host=db password='quoted secret' dbname=airship", "unix://:hunter2@/run/redis.sock?db=0"},
		{" password = s3cret  host=db", "redis://cache:6379/0?token=tokenvalue"},
		{"postgres://user:s3cret@db:notaport/airship", "redis://:hunter2@cache"},
		{"host=db password='unterminated s3cret", "redis://:hunter2@cache"},
	}
	for _, f := range forms {
		c := Defaults()
		c.PostgresURL, c.RedisURL, c.APIKeys = f.pg, f.redis, []string{key1}
		c.AMQPURL = "amqps://airship:hunter2@mq:5671/shop?password=other"
		c.ModuleToken = "module-token-0123456789abcdef0123"
		out := fmt.Sprint(c.Masked()...)
		for _, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Fatalf("masked config of %q and %q shows %q:\n%s", f.pg, f.redis, secret, out)
			}
		}
		if !strings.Contains(out, "db") && !strings.Contains(out, "hidden") {
			t.Fatalf("masked config %s hides everything", out)
		}
	}
}

var tableRow = regexp.MustCompile("(?m)^\\| `([a-z_]+)`[^|]*\\| `(AIRSHIP_[A-Z_]+)` \\| ([^|]*) \\|")

// TestConfigDocumented: config.yaml and the README's table name exactly
// the keys of Config, with their environment variables and defaults.
func TestConfigDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	var inFile []string
	for k := range file {
		inFile = append(inFile, k)
	}
	slices.Sort(inFile)
	if want := Keys(); !slices.Equal(inFile, want) {
		t.Errorf("config.yaml keys %v; want %v", inFile, want)
	}
	if _, err := loadChecked("../../config.yaml", nil, nil); err != nil {
		t.Errorf("config.yaml does not load: %v", err)
	}

	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defaults := map[string]string{}
	for _, f := range fields {
		defaults[f.key] = f.def
	}
	var inReadme []string
	for _, m := range tableRow.FindAllStringSubmatch(string(readme), -1) {
		key, env, def := m[1], m[2], strings.TrimSpace(m[3])
		inReadme = append(inReadme, key)
		if env != EnvName(key) {
			t.Errorf("README: %s has environment variable %s; want %s", key, env, EnvName(key))
		}
		want, ok := defaults[key]
		if !ok {
			continue
		}
		if want == "" {
			want = "–"
		} else {
			want = "`" + want + "`"
		}
		if def != want {
			t.Errorf("README: %s has default %s; want %s", key, def, want)
		}
	}
	slices.Sort(inReadme)
	if want := Keys(); !slices.Equal(inReadme, want) {
		t.Errorf("README table keys %v; want %v", inReadme, want)
	}
}

// loadWith loads the configuration with key set to text in one place: the
// config file (text written as YAML as it is, unquoted), the AIRSHIP_*
// variable or the flag.
func loadWith(t *testing.T, source, key, text string) (Config, error) {
	t.Helper()
	t.Chdir(t.TempDir()) // no ./config.yaml
	file := filepath.Join(t.TempDir(), "config.yaml")
	body := "{}\n"
	if source == "file" {
		body = key + ": " + text + "\n"
	}
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	AddFlags(flags, true)
	switch source {
	case "env":
		t.Setenv(EnvName(key), text)
	case "flag":
		// A typed flag refuses a value that is not of its type as the
		// command line is parsed: a usage error.
		if err := flags.Parse([]string{"--" + FlagName(key) + "=" + text}); err != nil {
			return Config{}, err
		}
	}
	return loadChecked(file, flags, nil)
}

// TestConfigSourcesAgree: a value means the same, and a wrong value is
// refused with the same message, whether it comes from config.yaml, an
// AIRSHIP_* variable or a flag (whose type refuses a value of the wrong
// form first, naming the flag). The file used to read a bare number as a
// duration in nanoseconds (request_timeout: 5 made every request 503)
// and to cut a fraction off a whole number (body_limit: 1.5 became 1),
// where the environment and the flags refused both.
func TestConfigSourcesAgree(t *testing.T) {
	cases := []struct {
		key, text string
		want      string            // the error, or "" when valid
		check     func(Config) bool // when valid
	}{
		{key: "request_timeout", text: "5", want: `request_timeout must be a duration with a unit, such as 5s or 1m, not "5"`},
		{key: "request_timeout", text: "1.5", want: `request_timeout must be a duration with a unit, such as 5s or 1m, not "1.5"`},
		{key: "request_timeout", text: "soon", want: `request_timeout must be a duration with a unit, such as 5s or 1m, not "soon"`},
		{key: "request_timeout", text: "-1s", want: "request_timeout must be positive"},
		{key: "request_timeout", text: "5s", check: func(c Config) bool { return c.RequestTimeout == 5*time.Second }},
		{key: "startup_timeout", text: "0", check: func(c Config) bool { return c.StartupTimeout == 0 }},
		{key: "body_limit", text: "1.5", want: `body_limit must be a whole number, not "1.5"`},
		{key: "body_limit", text: "true", want: `body_limit must be a whole number, not "true"`},
		{key: "body_limit", text: "0", want: "body_limit must be positive"},
		{key: "body_limit", text: "2048", check: func(c Config) bool { return c.BodyLimit == 2048 }},
		{key: "events_batch_size", text: "ten", want: `events_batch_size must be a whole number, not "ten"`},
		{key: "events_batch_size", text: "20000", want: "events_batch_size must be at most 10000"},
		{key: "api_keys", text: key1 + "," + key2, check: func(c Config) bool { return slices.Equal(c.APIKeys, []string{key1, key2}) }},
		{key: "api_keys", text: key1, check: func(c Config) bool { return slices.Equal(c.APIKeys, []string{key1}) }},
		{key: "api_keys", text: "short", want: "api_keys: entry 1 of 1 is shorter than 16 characters"},
		{key: "log_format", text: "xml", want: `log_format must be one of json, text, not "xml"`},
	}
	for _, c := range cases {
		for _, source := range []string{"file", "env", "flag"} {
			t.Run(source+"/"+c.key+"="+c.text, func(t *testing.T) {
				cfg, err := loadWith(t, source, c.key, c.text)
				switch {
				case c.want == "" && err != nil:
					t.Fatalf("%s %s=%s refused: %v", source, c.key, c.text, err)
				case c.want == "" && !c.check(cfg):
					t.Fatalf("%s %s=%s read as %v", source, c.key, c.text, cfg.Masked())
				case c.want != "" && source == "flag" && err != nil && strings.Contains(err.Error(), "invalid argument"):
					// The flag's type refused the form, naming the flag.
					if !strings.Contains(err.Error(), "--"+FlagName(c.key)) {
						t.Fatalf("flag %s=%s: error %v; want one naming --%s", c.key, c.text, err, FlagName(c.key))
					}
				case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
					t.Fatalf("%s %s=%s: error %v; want one containing %q", source, c.key, c.text, err, c.want)
				}
			})
		}
	}
}

// TestConfigFileRefusesMistakes: a key config.yaml does not know, a value
// of the wrong shape and a number where text is expected stop the start
// with a message naming the key; they used to be ignored (api_key: left
// writes open) or read as something else (redis_prefix: 0123 became "83").
func TestConfigFileRefusesMistakes(t *testing.T) {
	cases := []struct{ body, want string }{
		{"api_key: " + key1 + "\n", `unknown key "api_key" (did you mean api_keys?)`},
		{"api-keys: " + key1 + "\n", `unknown key "api-keys" (did you mean api_keys?)`},
		{"AIRSHIP_API_KEYS: " + key1 + "\n", `unknown key "airship_api_keys" (did you mean api_keys?)`},
		{"redis:\n  url: redis://cache:6379/0\n", `unknown key "redis"`},
		{"request_timeout: 5\n", `request_timeout must be a duration with a unit, such as 5s or 1m, not "5"`},
		{"request_timeout: [5s]\n", "request_timeout must be a duration with a unit, such as 5s or 1m, not a list"},
		{"body_limit: 1.5\n", `body_limit must be a whole number, not "1.5"`},
		{"body_limit: {bytes: 1}\n", "body_limit must be a whole number, not a mapping"},
		{"addr: 8000\n", "addr must be text, not a number: quote it"},
		{"redis_prefix: 0123\n", "redis_prefix must be text, not a number: quote it"},
		{"log_format: true\n", "log_format must be text, not true or false: quote it"},
		{"redis_url:\n  host: cache\n", "redis_url must be text, not a mapping"},
		{"log_level: [info]\n", "log_level must be text, not a list"},
		{"api_keys: {first: " + key1 + "}\n", "api_keys must be a list or a comma-separated string, not a mapping"},
		{"api_keys: [" + key1 + ", 12345678901234567]\n", "api_keys: entry 2 must be text, not a number: quote it"},
	}
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			t.Chdir(t.TempDir())
			file := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(file, []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadChecked(file, nil, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("config file %q: error %v; want one naming the file and containing %q", c.body, err, c.want)
			}
			if strings.Contains(strings.ReplaceAll(err.Error(), file, ""), key1) { // the path has the test's name
				t.Fatalf("error %v quotes an API key", err)
			}
		})
	}
	// A mistake in the file stops the start even where the environment
	// overrides the key.
	t.Run("overridden", func(t *testing.T) {
		t.Setenv("AIRSHIP_REQUEST_TIMEOUT", "3s")
		if _, err := loadWith(t, "file", "request_timeout", "5"); err == nil || !strings.Contains(err.Error(), "request_timeout") {
			t.Fatalf("request_timeout: 5 under AIRSHIP_REQUEST_TIMEOUT=3s: %v; want the file refused", err)
		}
	})
	// Lists, comma-separated strings and integral numbers are read as
	// before; a blank value leaves the default.
	for body, check := range map[string]func(Config) bool{
		"api_keys: [" + key1 + ", " + key2 + "]\n":   func(c Config) bool { return slices.Equal(c.APIKeys, []string{key1, key2}) },
		"api_keys: \"" + key1 + ", " + key2 + "\"\n": func(c Config) bool { return slices.Equal(c.APIKeys, []string{key1, key2}) },
		"api_keys: []\n":           func(c Config) bool { return len(c.APIKeys) == 0 },
		"body_limit: 1e6\n":        func(c Config) bool { return c.BodyLimit == 1_000_000 },
		"request_timeout:\n":       func(c Config) bool { return c.RequestTimeout == 2*time.Second },
		"redis_prefix: \"0123\"\n": func(c Config) bool { return c.RedisPrefix == "0123" },
	} {
		t.Run(body, func(t *testing.T) {
			t.Chdir(t.TempDir())
			file := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := loadChecked(file, nil, nil)
			if err != nil || !check(c) {
				t.Fatalf("config file %q: %v, %v", body, c.Masked(), err)
			}
		})
	}
}

// TestConfigUnknownEnvironment: an AIRSHIP_* variable a letter or two from
// a key's is taken for a typo and refused (AIRSHIP_API_KEY used to leave
// writes open); other unknown AIRSHIP_* variables are reported for a
// warning, except the ones Kubernetes sets for a Service named airship.
func TestConfigUnknownEnvironment(t *testing.T) {
	for name, want := range map[string]string{
		"AIRSHIP_API_KEY":          "AIRSHIP_API_KEY is not a setting of airship (did you mean AIRSHIP_API_KEYS?)",
		"AIRSHIP_REQUEST_TIMEOUTS": "AIRSHIP_REQUEST_TIMEOUTS is not a setting of airship (did you mean AIRSHIP_REQUEST_TIMEOUT?)",
		"AIRSHIP_DATADIR":          "AIRSHIP_DATADIR is not a setting of airship (did you mean AIRSHIP_DATA_DIR?)",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, key1)
			_, err := loadFromEnv(t)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("%s set: error %v; want one containing %q", name, err, want)
			}
			if strings.Contains(err.Error(), key1) {
				t.Fatalf("error %v quotes the value", err)
			}
		})
	}

	environ := []string{
		"AIRSHIP_ADDR=:8000", "AIRSHIP_TEST_POSTGRES_URL=postgres://x", "AIRSHIP_K8S_BIN=/bin",
		"AIRSHIP_PORT=tcp://10.0.0.1:8000", "AIRSHIP_PORT_8000_TCP=tcp://10.0.0.1:8000", "AIRSHIP_PORT_8000_TCP_ADDR=10.0.0.1",
		"AIRSHIP_PORT_8000_TCP_PORT=8000", "AIRSHIP_PORT_8000_TCP_PROTO=tcp", "AIRSHIP_SERVICE_HOST=10.0.0.1",
		"AIRSHIP_SERVICE_PORT=8000", "AIRSHIP_SERVICE_PORT_HTTP=8000", "AIRSHIP_PRODUCTS_SERVICE_HOST=10.0.0.2",
		"AIRSHIP_ORDERS_PORT_8002_TCP_ADDR=10.0.0.3", "PATH=/bin", "AIRSHIP_API_KEY=" + key1,
	}
	typos, unknown := UnknownEnv(environ)
	if want := []string{"AIRSHIP_K8S_BIN", "AIRSHIP_TEST_POSTGRES_URL"}; !slices.Equal(unknown, want) {
		t.Errorf("unknown variables %v; want %v (Kubernetes' service variables left out)", unknown, want)
	}
	if len(typos) != 1 || !strings.Contains(typos[0], "AIRSHIP_API_KEY ") {
		t.Errorf("typos %v; want AIRSHIP_API_KEY", typos)
	}

	// Unknown variables are not refused.
	t.Setenv("AIRSHIP_TEST_POSTGRES_URL", "postgres://x")
	t.Setenv("AIRSHIP_SERVICE_HOST", "10.0.0.1")
	if _, err := loadFromEnv(t); err != nil {
		t.Fatalf("unknown AIRSHIP_* variables refused: %v", err)
	}
}

// TestConfigBoolValues: a boolean key (none yet) reads true and false from
// text and from the file, and refuses anything else.
func TestConfigBoolValues(t *testing.T) {
	to := reflect.ValueOf(new(bool)).Elem()
	for in, want := range map[any]bool{"true": true, "false": false, true: true, false: false} {
		if got, err := strictValue(reflect.ValueOf(in), to); err != nil || got != want {
			t.Errorf("%#v as a boolean: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []any{"yes please", 2, []any{true}} {
		if _, err := strictValue(reflect.ValueOf(in), to); err == nil || err.Error() != "must be true or false" {
			t.Errorf("%#v as a boolean: %v; want refused", in, err)
		}
	}
}

// loadChecked is Load followed by Validate, as airship uses them.
func loadChecked(file string, flags *pflag.FlagSet, platform Platform) (Config, error) {
	c, err := Load(file, flags, platform)
	if err != nil {
		return c, err
	}
	return c, c.Validate()
}

// TestWarnings: what is open to anyone who reaches the process is said,
// and nothing else.
func TestWarnings(t *testing.T) {
	apiKeys, optional, noToken := "AIRSHIP_API_KEYS is not set", "module_auth is optional", "AIRSHIP_MODULE_TOKEN is not set"
	for _, c := range []struct {
		name                    string
		cfg                     Config
		servesAPI, callsModules bool
		want                    []string
	}{
		{"API without keys", Config{}, true, false, []string{apiKeys}},
		{"API with keys", Config{APIKeys: []string{"k"}}, true, false, nil},
		{"module taking calls without a token", Config{ModuleAuth: ModuleAuthOptional, ModuleToken: "t"}, false, false, []string{optional}},
		{"module requiring the token", Config{ModuleToken: "t"}, false, false, nil},
		{"caller without a token", Config{APIKeys: []string{"k"}}, true, true, []string{noToken}},
		{"caller with a token", Config{APIKeys: []string{"k"}, ModuleToken: "t"}, true, true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.cfg.Warnings(c.servesAPI, c.callsModules)
			if len(got) != len(c.want) {
				t.Fatalf("warnings %q; want ones starting %q", got, c.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], c.want[i]) {
					t.Errorf("warning %q; want one starting %q", got[i], c.want[i])
				}
			}
		})
	}
}
