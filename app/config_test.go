package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte("addr: \":7000\"\nrequest_timeout: 3s\nproduct_image_root: http://file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AIRSHIP_REQUEST_TIMEOUT", "4s")
	t.Setenv("AIRSHIP_PRODUCT_IMAGE_ROOT", "http://env")
	t.Setenv("AIRSHIP_API_KEYS", "k1, k2")
	flags := pflag.NewFlagSet("test", pflag.ContinueOnError)
	flags.String("product-image-root", "", "")
	if err := flags.Parse([]string{"--product-image-root", "http://flag"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(file, flags)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":7000" || cfg.RequestTimeout != 4*time.Second || cfg.ProductImageRoot != "http://flag" {
		t.Fatalf("addr %q, request_timeout %s, image root %q; want file, env, flag values", cfg.Addr, cfg.RequestTimeout, cfg.ProductImageRoot)
	}
	if len(cfg.APIKeys) != 2 {
		t.Fatalf("api keys %q; want two", cfg.APIKeys)
	}
	if d := Defaults(); d.Addr != ":8000" || d.ProductImageRoot != "http://www.example.com/airship/images" {
		t.Fatalf("defaults %+v", d)
	}
}

func TestConfigNeedsBothBackends(t *testing.T) {
	t.Setenv("AIRSHIP_POSTGRES_URL", "postgres://localhost/x")
	_, err := LoadConfig(filepath.Join(t.TempDir(), "none.yaml"), nil)
	if err == nil {
		t.Fatal("config file that does not exist accepted")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	os.WriteFile(file, []byte("addr: \":1\"\n"), 0o600)
	_, err = LoadConfig(file, nil)
	if err == nil || !strings.Contains(err.Error(), "AIRSHIP_REDIS_URL is not set") {
		t.Fatalf("only PostgreSQL set: error %v; want one naming AIRSHIP_REDIS_URL", err)
	}
}

func TestMaskedHidesSecrets(t *testing.T) {
	c := Defaults()
	c.PostgresURL = "postgres://user:s3cret@db/airship?password=other"
	c.RedisURL = "redis://:hunter2@cache:6379/0"
	c.APIKeys = []string{"topsecret"}
	out := fmt.Sprint(c.Masked()...)
	for _, secret := range []string{"s3cret", "other", "hunter2", "topsecret"} {
		if strings.Contains(out, secret) {
			t.Fatalf("masked config %s shows %q", out, secret)
		}
	}
}
