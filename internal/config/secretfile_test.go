package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// writeSecret writes body to a file of its own and returns its path.
func writeSecret(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSecretFromFile: every secret key reads from the file its
// AIRSHIP_<KEY>_FILE variable names, as Docker and Kubernetes mount
// secrets, without the file's trailing line end.
func TestSecretFromFile(t *testing.T) {
	const token = "module-token-0123456789abcdef0123"
	values := map[string]struct {
		body  string
		check func(Config) bool
	}{
		"postgres_url": {"postgres://airship:s3cret@db/airship\n", func(c Config) bool { return c.PostgresURL == "postgres://airship:s3cret@db/airship" }},
		"redis_url":    {"redis://:hunter2@cache:6379/0\r\n", func(c Config) bool { return c.RedisURL == "redis://:hunter2@cache:6379/0" }},
		"amqp_url":     {"amqp://airship:pw@mq:5672/", func(c Config) bool { return c.AMQPURL == "amqp://airship:pw@mq:5672/" }},
		"module_token": {token + "\n", func(c Config) bool { return c.ModuleToken == token }},
		"api_keys":     {key1 + "," + key2 + "\n", func(c Config) bool { return slices.Equal(c.APIKeys, []string{key1, key2}) }},
	}
	for _, key := range SecretKeys() {
		v, ok := values[key]
		if !ok {
			t.Errorf("secret key %s has no case here", key)
			continue
		}
		t.Run(key, func(t *testing.T) {
			t.Chdir(t.TempDir())
			t.Setenv(FileEnvName(key), writeSecret(t, v.body))
			c, err := loadFromEnv(t)
			if err != nil || !v.check(c) {
				t.Fatalf("%s from a file: %v, %v", key, c.Masked(), err)
			}
		})
	}
	// An API key list may also hold one key a line.
	t.Run("api_keys one a line", func(t *testing.T) {
		t.Chdir(t.TempDir())
		t.Setenv(FileEnvName("api_keys"), writeSecret(t, key1+"\n"+key2+"\n"))
		c, err := loadFromEnv(t)
		if err != nil || !slices.Equal(c.APIKeys, []string{key1, key2}) {
			t.Fatalf("api keys one a line: %v, %v", c.APIKeys, err)
		}
	})
	if want := []string{"amqp_url", "api_keys", "module_token", "postgres_url", "redis_url"}; !slices.Equal(SecretKeys(), want) {
		t.Errorf("secret keys %v; want %v", SecretKeys(), want)
	}
}

// TestSecretFileRefused: a key set both as a value (config file,
// environment or flag) and through a file is refused, naming both; so are
// an unreadable file, naming its path, and an empty one. No message quotes
// what a file holds.
func TestSecretFileRefused(t *testing.T) {
	const secret = "postgres://airship:s3cret@db/airship"
	for _, source := range []string{"file", "env", "flag"} {
		t.Run("both by "+source, func(t *testing.T) {
			t.Setenv(FileEnvName("postgres_url"), writeSecret(t, secret))
			_, err := loadWith(t, source, "postgres_url", "postgres://db/other")
			other := map[string]string{"file": "postgres_url in the config file", "env": "AIRSHIP_POSTGRES_URL", "flag": "--postgres-url"}[source]
			if err == nil || !strings.Contains(err.Error(), other+" and AIRSHIP_POSTGRES_URL_FILE are both set") {
				t.Fatalf("postgres_url by %s and by a file: %v; want both named", source, err)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "other") {
				t.Fatalf("error %v quotes a value", err)
			}
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "no-such-secret")
		t.Setenv(FileEnvName("redis_url"), missing)
		_, err := loadFromEnv(t)
		if err == nil || !strings.Contains(err.Error(), "AIRSHIP_REDIS_URL_FILE: cannot read "+missing+": ") {
			t.Fatalf("missing secret file: %v; want the variable and the path named", err)
		}
		if strings.Count(err.Error(), missing) != 1 {
			t.Fatalf("error %v names the path more than once", err)
		}
	})
	t.Run("a directory", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv(FileEnvName("api_keys"), dir)
		if _, err := loadFromEnv(t); err == nil || !strings.Contains(err.Error(), "AIRSHIP_API_KEYS_FILE: cannot read "+dir) {
			t.Fatalf("directory as secret file: %v; want the path named", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		path := writeSecret(t, "\n")
		t.Setenv(FileEnvName("module_token"), path)
		if _, err := loadFromEnv(t); err == nil || !strings.Contains(err.Error(), "AIRSHIP_MODULE_TOKEN_FILE: "+path+" is empty") {
			t.Fatalf("empty secret file: %v; want refused", err)
		}
	})
	t.Run("invalid value", func(t *testing.T) {
		t.Setenv(FileEnvName("api_keys"), writeSecret(t, "short-s3cret\n"))
		_, err := loadFromEnv(t)
		if err == nil || !strings.Contains(err.Error(), "api_keys: entry 1 of 1 is shorter than 16 characters") || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("short API key from a file: %v; want refused without the key", err)
		}
	})
}

// TestSecretFileFlagHelp: the help of a secret key's flag names its file
// variable; other keys' help does not.
func TestSecretFileFlagHelp(t *testing.T) {
	flags := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	AddFlags(flags, true)
	if u := flags.Lookup("postgres-url").Usage; !strings.Contains(u, "env AIRSHIP_POSTGRES_URL (or a file: AIRSHIP_POSTGRES_URL_FILE)") {
		t.Errorf("--postgres-url help %q; want the file variable named", u)
	}
	if u := flags.Lookup("addr").Usage; strings.Contains(u, "_FILE") {
		t.Errorf("--addr help %q names a file variable", u)
	}
}

// TestSecretFileUnknownEnvironment: a secret key's file variable is known;
// one of a key that is not secret is refused as a typo.
func TestSecretFileUnknownEnvironment(t *testing.T) {
	typos, unknown := UnknownEnv([]string{
		"AIRSHIP_POSTGRES_URL_FILE=/run/secrets/pg", "AIRSHIP_API_KEYS_FILE=/k", "AIRSHIP_MODULE_TOKEN_FILE=/t",
		"AIRSHIP_ADDR_FILE=/a", "AIRSHIP_METRICS_ADDR_FILE=/m", "AIRSHIP_NOTHING_FILE=/n",
	})
	if len(typos) != 2 || !strings.HasPrefix(typos[0], "AIRSHIP_ADDR_FILE is not a setting of airship: only secret settings are read from files (") ||
		!strings.HasPrefix(typos[1], "AIRSHIP_METRICS_ADDR_FILE is not a setting") || !strings.Contains(typos[0], "AIRSHIP_POSTGRES_URL_FILE") {
		t.Errorf("typos %q; want AIRSHIP_ADDR_FILE and AIRSHIP_METRICS_ADDR_FILE", typos)
	}
	if !slices.Equal(unknown, []string{"AIRSHIP_NOTHING_FILE"}) {
		t.Errorf("unknown %q; want AIRSHIP_NOTHING_FILE", unknown)
	}
	t.Setenv("AIRSHIP_ADDR_FILE", "/a")
	if _, err := loadFromEnv(t); err == nil || !strings.Contains(err.Error(), "AIRSHIP_ADDR_FILE is not a setting of airship") {
		t.Fatalf("AIRSHIP_ADDR_FILE set: %v; want refused", err)
	}
}

// TestSecretFileIsExplicit: a key read from a file counts as set, so a
// platform (Cloud Foundry's bound services) does not replace it.
func TestSecretFileIsExplicit(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv(FileEnvName("postgres_url"), writeSecret(t, "postgres://db/airship\n"))
	var sawPG, sawRedis bool
	_, err := Load("", nil, func(_ *Config, explicitlySet func(string) bool) error {
		sawPG, sawRedis = explicitlySet("postgres_url"), explicitlySet("redis_url")
		return nil
	})
	if err != nil || !sawPG || sawRedis {
		t.Fatalf("explicitly set: postgres_url %v, redis_url %v (%v); want true, false", sawPG, sawRedis, err)
	}
}
