package app

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is airship's whole configuration. It is read once, from
// config.yaml, then AIRSHIP_* environment variables, then command-line
// flags, each overriding the one before.
type Config struct {
	// Addr is the API's listen address.
	Addr string `mapstructure:"addr"`
	// PostgresURL and RedisURL select the production backends; when both
	// are empty airship runs on the embedded store in DataDir.
	PostgresURL string `mapstructure:"postgres_url"`
	RedisURL    string `mapstructure:"redis_url"`
	// RedisPrefix starts every Redis key airship writes.
	RedisPrefix string `mapstructure:"redis_prefix"`
	// DataDir holds the embedded store.
	DataDir string `mapstructure:"data_dir"`
	// ProductImageRoot prefixes the image URL of every order line.
	ProductImageRoot string `mapstructure:"product_image_root"`

	BodyLimit       int64         `mapstructure:"body_limit"`
	RequestTimeout  time.Duration `mapstructure:"request_timeout"`
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// StartupTimeout is how long unreachable backends are retried at start.
	StartupTimeout time.Duration `mapstructure:"startup_timeout"`
	// BackendTimeout bounds dialing and each read or write to a backend.
	BackendTimeout time.Duration `mapstructure:"backend_timeout"`
	// ReservationTimeout is how long taken stock may wait for its order to
	// commit before the recovery sweep settles it.
	ReservationTimeout time.Duration `mapstructure:"reservation_timeout"`
	RecoveryInterval   time.Duration `mapstructure:"recovery_interval"`
	// IdempotencyTTL is how long an Idempotency-Key is remembered.
	IdempotencyTTL time.Duration `mapstructure:"idempotency_ttl"`
	// APIKeys, when not empty, are the bearer tokens that mutating
	// requests must present.
	APIKeys []string `mapstructure:"api_keys"`

	PostgresMaxConns int `mapstructure:"postgres_max_conns"`
	RedisPoolSize    int `mapstructure:"redis_pool_size"`

	LogLevel  string `mapstructure:"log_level"`
	LogFormat string `mapstructure:"log_format"`
	// DebugAddr, when set, serves pprof on a separate listener.
	DebugAddr string `mapstructure:"debug_addr"`
}

// defaults holds every key with its default value; viper only reads
// environment variables for keys it knows.
var defaults = map[string]any{
	"addr":                ":8000",
	"postgres_url":        "",
	"redis_url":           "",
	"redis_prefix":        "airship:",
	"data_dir":            "./data",
	"product_image_root":  "http://www.example.com/airship/images",
	"body_limit":          1 << 20,
	"request_timeout":     2 * time.Second,
	"shutdown_timeout":    15 * time.Second,
	"startup_timeout":     30 * time.Second,
	"backend_timeout":     time.Second,
	"reservation_timeout": time.Minute,
	"recovery_interval":   30 * time.Second,
	"idempotency_ttl":     24 * time.Hour,
	"api_keys":            "",
	"postgres_max_conns":  16,
	"redis_pool_size":     32,
	"log_level":           "info",
	"log_format":          "json",
	"debug_addr":          "",
}

// Defaults returns the configuration with every default value.
func Defaults() Config {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	var c Config
	_ = v.Unmarshal(&c) // the defaults above always decode
	return c
}

// LoadConfig reads the configuration. configFile may be empty: then
// ./config.yaml is read if it exists. flags, if not nil, override; each
// flag is named like its key with "-" for "_".
func LoadConfig(configFile string, flags *pflag.FlagSet) (Config, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	if configFile != "" {
		v.SetConfigFile(configFile)
	} else {
		v.SetConfigName("config")
		v.SetConfigType("yaml")
		v.AddConfigPath(".")
	}
	if err := v.ReadInConfig(); err != nil {
		var notFound viper.ConfigFileNotFoundError
		if configFile != "" || !errors.As(err, &notFound) {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
	}
	v.SetEnvPrefix("AIRSHIP")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if flags != nil {
		for k := range defaults {
			if f := flags.Lookup(strings.ReplaceAll(k, "_", "-")); f != nil {
				if err := v.BindPFlag(k, f); err != nil {
					return Config{}, err
				}
			}
		}
	}
	var c Config
	if err := v.Unmarshal(&c); err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	if err := applyPlatformEnv(&c, v, flags); err != nil {
		return Config{}, err
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var problems []string
	if (c.PostgresURL == "") != (c.RedisURL == "") {
		missing := "AIRSHIP_REDIS_URL"
		if c.PostgresURL == "" {
			missing = "AIRSHIP_POSTGRES_URL"
		}
		problems = append(problems, fmt.Sprintf(
			"%s is not set: set both AIRSHIP_POSTGRES_URL and AIRSHIP_REDIS_URL for the production backends, or neither for the embedded store", missing))
	}
	if c.BodyLimit < 1 {
		problems = append(problems, "body_limit must be positive")
	}
	for name, d := range map[string]time.Duration{
		"request_timeout": c.RequestTimeout, "shutdown_timeout": c.ShutdownTimeout,
		"backend_timeout": c.BackendTimeout, "reservation_timeout": c.ReservationTimeout,
		"recovery_interval": c.RecoveryInterval, "idempotency_ttl": c.IdempotencyTTL,
	} {
		if d <= 0 {
			problems = append(problems, name+" must be positive")
		}
	}
	if c.ReservationTimeout <= c.RequestTimeout {
		problems = append(problems, "reservation_timeout must be longer than request_timeout")
	}
	if c.PostgresMaxConns < 1 || c.RedisPoolSize < 1 {
		problems = append(problems, "postgres_max_conns and redis_pool_size must be positive")
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid configuration: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Embedded reports whether the configuration selects the embedded store.
func (c Config) Embedded() bool { return c.PostgresURL == "" && c.RedisURL == "" }

// Masked returns the configuration as key/value pairs for the start-up
// log, with passwords in URLs masked.
func (c Config) Masked() []any {
	return []any{
		"addr", c.Addr, "backend", c.backendName(),
		"postgres_url", maskURL(c.PostgresURL), "redis_url", maskURL(c.RedisURL),
		"redis_prefix", c.RedisPrefix, "data_dir", c.DataDir,
		"product_image_root", c.ProductImageRoot, "body_limit", c.BodyLimit,
		"request_timeout", c.RequestTimeout.String(), "shutdown_timeout", c.ShutdownTimeout.String(),
		"startup_timeout", c.StartupTimeout.String(), "backend_timeout", c.BackendTimeout.String(),
		"reservation_timeout", c.ReservationTimeout.String(), "recovery_interval", c.RecoveryInterval.String(),
		"postgres_max_conns", c.PostgresMaxConns, "redis_pool_size", c.RedisPoolSize,
		"idempotency_ttl", c.IdempotencyTTL.String(), "api_keys", maskKeys(c.APIKeys),
		"log_level", c.LogLevel, "debug_addr", c.DebugAddr,
	}
}

func (c Config) backendName() string {
	if c.Embedded() {
		return "embedded"
	}
	return "postgres+redis"
}

// maskURL hides the password of a URL, and any password=... parameter.
func maskURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// maskKeys shows how many API keys are set, never the keys.
func maskKeys(keys []string) string {
	if len(keys) == 0 {
		return "(none: writes are open)"
	}
	return fmt.Sprintf("(%d keys)", len(keys))
}

// ConfigKeys returns every configuration key, sorted. The environment
// variable of a key is EnvName(key).
func ConfigKeys() []string {
	keys := make([]string, 0, len(defaults))
	for k := range defaults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// EnvName is the environment variable that sets a configuration key.
func EnvName(key string) string { return "AIRSHIP_" + strings.ToUpper(key) }
