package config

import (
	"testing"

	"github.com/lib/pq"
)

// TestParseKVAgreesWithLibPQ: the key=value strings airship checks and
// masks are read as lib/pq, which connects with them, reads them.
func TestParseKVAgreesWithLibPQ(t *testing.T) {
	for _, s := range []string{
		"host=db user=airship password=s3cret dbname=airship",
		"host=db password='quoted secret' dbname=airship",
		`host=db password='it\'s \\ here' dbname=shop`,
		" password = s3cret  host=db port=6543",
		"host=/var/run/postgresql dbname=airship sslmode=disable",
		"user=a\\ b host=db",
	} {
		settings, err := parseKV(s)
		if err != nil {
			t.Errorf("parseKV(%q): %v", s, err)
			continue
		}
		want, err := pq.NewConfig(s)
		if err != nil {
			t.Errorf("lib/pq refuses %q: %v", s, err)
			continue
		}
		for _, kv := range settings {
			var got, libpq string
			switch kv.key {
			case "host":
				got, libpq = kv.value, want.Host
			case "user":
				got, libpq = kv.value, want.User
			case "password":
				got, libpq = kv.value, want.Password
			case "dbname":
				got, libpq = kv.value, want.Database
			default:
				continue
			}
			if got != libpq {
				t.Errorf("%q: %s is %q to airship, %q to lib/pq", s, kv.key, got, libpq)
			}
		}
	}
	for _, s := range []string{"host=db password='unterminated", "host"} {
		if _, err := parseKV(s); err == nil {
			t.Errorf("parseKV(%q) accepted it", s)
		}
		if _, err := pq.NewConfig(s); err == nil {
			t.Errorf("lib/pq accepts %q, which airship refuses", s)
		}
	}
}
