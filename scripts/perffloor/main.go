// Command perffloor is the floor airship's hot paths are measured against
// (scripts/perf-floor.sh, make perf-floor): the least a Go server does to
// answer GET /products/{id}, GET /orders/{id} and POST /orders on
// airship's own PostgreSQL database and Redis keys, with the same backend
// statements and round trips and the same response bodies, byte for byte.
//
// It is net/http's ServeMux, go-redis and lib/pq (the versions in
// airship's go.mod) and nothing else: no request ids, log lines, metrics,
// traces, timeouts, limits or security headers, no validation beyond what
// it needs to build its statements, no idempotency keys. The difference
// between its throughput and airship's is the cost of what airship does
// besides the backend work. It is a benchmark baseline, not a server to
// run for anyone.
//
// It needs a database migrated by airship and Redis keys written by it
// (airship serve on the same URLs and prefix). Usage:
//
//	perffloor -addr 127.0.0.1:8090 -postgres URL -redis URL [-redis-prefix airship:]
//
// Both URLs may name a Unix socket: PostgreSQL as host=/var/run/postgresql
// (in a key=value string, or ?host= in a URL), Redis as
// unix:///path/redis.sock?db=N.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var cfg config
	addr := flag.String("addr", "127.0.0.1:8090", "listen address of the API")
	debugAddr := flag.String("debug-addr", "", "serve pprof on this address (off when empty)")
	flag.StringVar(&cfg.postgresURL, "postgres", "", "PostgreSQL URL or key=value connection string of airship's database")
	flag.StringVar(&cfg.redisURL, "redis", "", "Redis URL (redis:// or unix://) of airship's products")
	flag.StringVar(&cfg.redisPrefix, "redis-prefix", "airship:", "prefix of airship's Redis keys")
	flag.StringVar(&cfg.imageRoot, "image-root", "http://www.example.com/airship/images", "URL prefix of the image of every order line (airship's product_image_root)")
	flag.DurationVar(&cfg.hold, "hold", time.Minute, "how long a reservation waits for its order (airship's reservation_timeout)")
	flag.IntVar(&cfg.postgresConns, "postgres-max-conns", 16, "PostgreSQL pool size (airship's postgres_max_conns)")
	flag.IntVar(&cfg.redisPool, "redis-pool-size", 32, "Redis pool size (airship's redis_pool_size)")
	flag.Parse()
	if cfg.postgresURL == "" || cfg.redisURL == "" {
		fmt.Fprintln(os.Stderr, "perffloor: -postgres and -redis are required")
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, *addr, *debugAddr); err != nil {
		log.Fatalf("perffloor: %v", err)
	}
}

// run serves the floor on addr until ctx ends.
func run(ctx context.Context, cfg config, addr, debugAddr string) error {
	f, err := newFloor(ctx, cfg)
	if err != nil {
		return err
	}
	defer f.close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if debugAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		dln, err := net.Listen("tcp", debugAddr)
		if err != nil {
			ln.Close()
			return err
		}
		go http.Serve(dln, mux) //nolint:errcheck // ends with the process
	}
	srv := &http.Server{Handler: f.handler()}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Printf("perffloor: serving on %s", ln.Addr())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
