package cfenv

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/airshipltd/airship/internal/config"
)

// VCAP_SERVICES documents as service brokers write them (names, hosts and
// passwords changed). Every password contains "pw-", which no error message
// may show.
const (
	elephantSQL = `"elephantsql": [{
		"name": "airship-db", "label": "elephantsql", "plan": "turtle", "instance_name": "airship-db",
		"binding_name": null, "provider": null, "syslog_drain_url": null, "volume_mounts": [],
		"tags": ["postgres", "postgresql", "relational"],
		"credentials": {"uri": "postgres://xkrgbqto:pw-elephant@rogue.db.elephantsql.com/xkrgbqto", "max_conns": "5"}}]`
	a9sPostgres = `"a9s-postgresql11": [{
		"name": "pg", "label": "a9s-postgresql11", "plan": "postgresql-single-small",
		"tags": ["sql", "database", "object-relational", "consistent"],
		"credentials": {"host": "pcsd7a1b2c3-psql-master-alias.node.dc1.a9ssvc", "hosts": ["pcsd7a1b2c3-pg-0.node.dc1.a9ssvc"],
			"name": "pcsd7a1b2c3", "password": "a9s-pw-postgres", "port": 5432,
			"uri": "postgres://a9s-brk-usr:a9s-pw-postgres@pcsd7a1b2c3-psql-master-alias.node.dc1.a9ssvc:5432/pcsd7a1b2c3",
			"username": "a9s-brk-usr"}}]`
	azurePostgres = `"azure-postgresql-10": [{
		"name": "orders-db", "label": "azure-postgresql-10", "plan": "basic",
		"tags": ["Azure", "PostgreSQL", "Database"],
		"credentials": {"host": "airship.postgres.database.azure.com", "port": 5432, "database": "airship",
			"username": "u@airship", "password": "pw-azure", "sslRequired": true}}]`
	tanzuRedis = `"p.redis": [{
		"name": "cache", "label": "p.redis", "plan": "cache-small", "instance_guid": "0b1f6c2e",
		"tags": ["redis", "pivotal", "on-demand"],
		"credentials": {"host": "q-s0.redis-instance.default.service-instance-0b1f6c2e.bosh", "password": "pw-tanzu", "port": 6379}}]`
	redisCloud = `"rediscloud": [{
		"name": "products-cache", "label": "rediscloud", "plan": "30mb",
		"tags": ["Data Stores", "Caching", "Key Value", "Cache"],
		"credentials": {"hostname": "redis-12345.c1.us-east-1-2.ec2.cloud.redislabs.com", "password": "pw-rediscloud", "port": "12345"}}]`
	userProvided = `"user-provided": [
		{"name": "my-pg", "label": "user-provided", "tags": ["postgres"], "credentials": {"uri": "postgresql://app:pw-cups@10.0.0.5:5432/shop?sslmode=verify-full"}},
		{"name": "my-redis", "label": "user-provided", "tags": ["redis"], "credentials": {"url": "rediss://:pw-cups-redis@10.0.0.6:6380/2"}},
		{"name": "syslog", "label": "user-provided", "tags": [], "credentials": {"url": "https://logs.example.com"}}]`
	awsRDSMySQL = `"aws-rds": [{
		"name": "legacy-db", "label": "aws-rds", "plan": "basic",
		"tags": ["database", "RDS", "postgresql", "mysql"],
		"credentials": {"uri": "mysql://admin:pw-mysql@legacy.rds.amazonaws.com:3306/legacy"}}]`
)

func vcap(entries ...string) string { return "{" + strings.Join(entries, ",") + "}" }

func TestApplyPlatform(t *testing.T) {
	type want struct {
		addr, pg, redis string
		err             []string // substrings of the error; nil: no error
	}
	for _, tc := range []struct {
		name     string
		env      map[string]string
		explicit []string // keys set by file, AIRSHIP_* or flag
		need     *Need    // the backends the modules use; both when nil
		want     want
	}{
		{
			name: "nothing from the platform",
			want: want{addr: ":8000"},
		},
		{
			name: "PORT",
			env:  map[string]string{"PORT": "8080"},
			want: want{addr: ":8080"},
		},
		{
			name:     "AIRSHIP_ADDR wins over PORT",
			env:      map[string]string{"PORT": "8080"},
			explicit: []string{"addr"},
			want:     want{addr: ":8000"},
		},
		{
			name: "PORT not a number",
			env:  map[string]string{"PORT": "http"},
			want: want{err: []string{`PORT "http" is not a TCP port number`}},
		},
		{
			name: "PORT out of range",
			env:  map[string]string{"PORT": "70000"},
			want: want{err: []string{`PORT "70000"`}},
		},
		{
			name: "ElephantSQL uri and Tanzu Redis host/port/password",
			env:  map[string]string{"PORT": "8080", "VCAP_SERVICES": vcap(elephantSQL, tanzuRedis)},
			want: want{
				addr:  ":8080",
				pg:    "postgres://xkrgbqto:pw-elephant@rogue.db.elephantsql.com/xkrgbqto",
				redis: "redis://:pw-tanzu@q-s0.redis-instance.default.service-instance-0b1f6c2e.bosh:6379",
			},
		},
		{
			name: "a9s PostgreSQL by label, Redis Cloud hostname and string port",
			env:  map[string]string{"VCAP_SERVICES": vcap(a9sPostgres, redisCloud)},
			want: want{
				addr:  ":8000",
				pg:    "postgres://a9s-brk-usr:a9s-pw-postgres@pcsd7a1b2c3-psql-master-alias.node.dc1.a9ssvc:5432/pcsd7a1b2c3",
				redis: "redis://:pw-rediscloud@redis-12345.c1.us-east-1-2.ec2.cloud.redislabs.com:12345",
			},
		},
		{
			name: "Azure PostgreSQL fields only, tag in capitals",
			env:  map[string]string{"VCAP_SERVICES": vcap(azurePostgres, tanzuRedis)},
			want: want{
				addr:  ":8000",
				pg:    "postgres://u%40airship:pw-azure@airship.postgres.database.azure.com:5432/airship",
				redis: "redis://:pw-tanzu@q-s0.redis-instance.default.service-instance-0b1f6c2e.bosh:6379",
			},
		},
		{
			name: "user-provided services by tag, uri and url, other services ignored",
			env:  map[string]string{"VCAP_SERVICES": vcap(userProvided)},
			want: want{
				addr:  ":8000",
				pg:    "postgresql://app:pw-cups@10.0.0.5:5432/shop?sslmode=verify-full",
				redis: "rediss://:pw-cups-redis@10.0.0.6:6380/2",
			},
		},
		{
			name:     "explicit URLs win over bindings",
			env:      map[string]string{"VCAP_SERVICES": vcap(elephantSQL, tanzuRedis)},
			explicit: []string{"postgres_url", "redis_url"},
			want:     want{addr: ":8000"},
		},
		{
			name:     "explicit PostgreSQL URL, Redis from its binding",
			env:      map[string]string{"VCAP_SERVICES": vcap(tanzuRedis)},
			explicit: []string{"postgres_url"},
			want:     want{addr: ":8000", redis: "redis://:pw-tanzu@q-s0.redis-instance.default.service-instance-0b1f6c2e.bosh:6379"},
		},
		{
			name:     "nothing bound, embedded store asked for by data_dir",
			env:      map[string]string{"VCAP_SERVICES": `{}`},
			explicit: []string{"data_dir"},
			want:     want{addr: ":8000"},
		},
		{
			name: "nothing bound: no quiet start on the embedded store",
			env:  map[string]string{"VCAP_SERVICES": `{}`},
			want: want{err: []string{"binds no PostgreSQL service", "AIRSHIP_POSTGRES_URL", "binds no Redis service", "AIRSHIP_REDIS_URL"}},
		},
		{
			name: "PostgreSQL bound, Redis not",
			env:  map[string]string{"VCAP_SERVICES": vcap(elephantSQL)},
			want: want{err: []string{"binds no Redis service"}},
		},
		{
			name:     "Redis bound, PostgreSQL not, data_dir set all the same",
			env:      map[string]string{"VCAP_SERVICES": vcap(redisCloud)},
			explicit: []string{"data_dir"},
			want:     want{err: []string{"binds no PostgreSQL service"}},
		},
		{
			name: "two PostgreSQL services",
			env:  map[string]string{"VCAP_SERVICES": vcap(elephantSQL, a9sPostgres, tanzuRedis)},
			want: want{err: []string{`binds 2 PostgreSQL services ("airship-db", "pg")`}},
		},
		{
			name: "a database tagged postgresql whose URL is MySQL",
			env:  map[string]string{"VCAP_SERVICES": vcap(awsRDSMySQL, tanzuRedis)},
			want: want{err: []string{`PostgreSQL service "legacy-db" (label "aws-rds"): credentials.uri is a mysql:// URL`}},
		},
		{
			name: "credentials without any address",
			env: map[string]string{"VCAP_SERVICES": vcap(elephantSQL,
				`"redis": [{"name": "r", "tags": ["redis"], "credentials": {"password": "pw-nohost"}}]`)},
			want: want{err: []string{`Redis service "r" (label "redis"): credentials have no uri, url or host`}},
		},
		{
			name: "an unparsable uri",
			env: map[string]string{"VCAP_SERVICES": vcap(tanzuRedis,
				`"pg": [{"name": "p", "tags": ["postgres"], "credentials": {"uri": "postgres://u:pw-broken%zz@host/x"}}]`)},
			want: want{err: []string{"credentials.uri is not a URL"}},
		},
		{
			name: "a bad port",
			env: map[string]string{"VCAP_SERVICES": vcap(elephantSQL,
				`"redis": [{"name": "r", "tags": ["redis"], "credentials": {"host": "h", "port": "sixty", "password": "pw-port"}}]`)},
			want: want{err: []string{"credentials.port is not a TCP port number"}},
		},
		{
			name: "not JSON",
			env:  map[string]string{"VCAP_SERVICES": `{"elephantsql": [{"name": "airship-db", "credentials": {"uri": "postgres://u:pw-json@h/db"}`},
			want: want{err: []string{"VCAP_SERVICES is not a JSON object of service lists"}},
		},
		{
			name: "JSON of the wrong shape",
			env:  map[string]string{"VCAP_SERVICES": `["postgres://u:pw-shape@h/db"]`},
			want: want{err: []string{"VCAP_SERVICES is not a JSON object of service lists"}},
		},
		{
			name: "the gateway module takes no backend",
			env:  map[string]string{"VCAP_SERVICES": `{}`},
			need: &Need{},
			want: want{addr: ":8000"},
		},
		{
			name: "the orders module takes PostgreSQL only",
			env:  map[string]string{"VCAP_SERVICES": vcap(elephantSQL, tanzuRedis)},
			need: &Need{Postgres: true},
			want: want{addr: ":8000", pg: "postgres://xkrgbqto:pw-elephant@rogue.db.elephantsql.com/xkrgbqto"},
		},
		{
			name: "the products module takes Redis only",
			env:  map[string]string{"VCAP_SERVICES": vcap(tanzuRedis)},
			need: &Need{Redis: true},
			want: want{addr: ":8000", redis: "redis://:pw-tanzu@q-s0.redis-instance.default.service-instance-0b1f6c2e.bosh:6379"},
		},
		{
			name:     "bad VCAP_SERVICES is an error even with both URLs set",
			env:      map[string]string{"VCAP_SERVICES": `{oops`},
			explicit: []string{"postgres_url", "redis_url"},
			want:     want{err: []string{"VCAP_SERVICES is not a JSON object"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Defaults()
			need := Need{Postgres: true, Redis: true}
			if tc.need != nil {
				need = *tc.need
			}
			err := Apply(&c,
				func(k string) string { return tc.env[k] },
				func(k string) bool { return slices.Contains(tc.explicit, k) }, need)
			if tc.want.err != nil {
				if err == nil {
					t.Fatalf("no error; want one containing %q", tc.want.err)
				}
				for _, s := range tc.want.err {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				if strings.Contains(err.Error(), "pw-") {
					t.Errorf("error %q shows a password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Addr != tc.want.addr || c.PostgresURL != tc.want.pg || c.RedisURL != tc.want.redis {
				t.Fatalf("addr %q, postgres %q, redis %q\nwant addr %q, postgres %q, redis %q",
					c.Addr, c.PostgresURL, c.RedisURL, tc.want.addr, tc.want.pg, tc.want.redis)
			}
			if masked := fmt.Sprint(c.Masked()...); strings.Contains(masked, "pw-") {
				t.Errorf("start-up log shows a password: %s", masked)
			}
		})
	}
}
