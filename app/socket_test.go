package app_test

import (
	"net/http"
	"testing"

	"github.com/airshipltd/airship/internal/testbackend"
)

// airship serves on PostgreSQL and Redis reached over their Unix sockets
// (postgres_url with host=/var/run/postgresql, in both forms, and a
// unix:// redis_url): a product and an order go in and come back.
func TestServesOverUnixSockets(t *testing.T) {
	asURL, asKV := testbackend.PostgresSocketURLs(t)
	redisURL := testbackend.RedisSocketURL(t)
	for name, pg := range map[string]string{"url": asURL, "key=value": asKV} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.PostgresURL, cfg.RedisURL, cfg.RedisPrefix = pg, redisURL, testbackend.Name("sock_")+":"
			s := startWith(t, cfg)
			s.expect(s.do(http.MethodPost, "/products", `{"id":"sock1","title":"Socket","passenger_capacity":2,"maximum_speed":3,"in_stock":5}`), http.StatusOK, `{"id":"sock1"}`)
			s.expect(s.do(http.MethodGet, "/products/sock1", ""), http.StatusOK,
				`{"id":"sock1","title":"Socket","passenger_capacity":2,"maximum_speed":3,"in_stock":5}`)
			s.expect(s.do(http.MethodPost, "/orders", `{"order_details":[{"product_id":"sock1","price":"1.50","quantity":2}]}`), http.StatusOK, "")
			s.expect(s.do(http.MethodGet, "/products/sock1", ""), http.StatusOK,
				`{"id":"sock1","title":"Socket","passenger_capacity":2,"maximum_speed":3,"in_stock":3}`)
		})
	}
}
