// Command eventlatency measures how long airship's order_created events
// take from the commit of their order to a consumer: it binds a durable
// queue to the events exchange, consumes until SIGINT or SIGTERM, then
// reads each received order's created_at from PostgreSQL (the start of
// the transaction that wrote the order, a little before its commit) and
// prints the count and the p50, p90, p99 and maximum of receive time −
// created_at. Used by scripts/perf-events.sh.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	amqpURL := flag.String("amqp", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ URL")
	pgURL := flag.String("postgres", "", "PostgreSQL URL of airship's database")
	exchange := flag.String("exchange", "orders.events", "events exchange")
	queue := flag.String("queue", "perf-event-latency", "queue to bind and consume")
	ready := flag.String("ready", "", "file to create once the queue is bound")
	flag.Parse()

	conn, err := amqp.Dial(*amqpURL)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		log.Fatal(err)
	}
	must(ch.ExchangeDeclare(*exchange, amqp.ExchangeTopic, true, false, false, false, nil))
	_, err = ch.QueueDeclare(*queue, true, false, false, false, nil)
	must(err)
	must(ch.QueueBind(*queue, "order_created", *exchange, false, nil))
	must(ch.Qos(100, 0, false))
	deliveries, err := ch.Consume(*queue, "", false, false, false, false, nil)
	must(err)
	if *ready != "" {
		must(os.WriteFile(*ready, nil, 0o644))
	}

	received := map[int64]time.Time{}
	duplicates := 0
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case d, ok := <-deliveries:
			if !ok {
				log.Fatal("the broker closed the channel")
			}
			at := time.Now()
			var b struct {
				Order struct{ ID int64 } `json:"order"`
			}
			if err := json.Unmarshal(d.Body, &b); err != nil {
				log.Fatalf("body %s: %v", d.Body, err)
			}
			if _, dup := received[b.Order.ID]; dup {
				duplicates++
			} else {
				received[b.Order.ID] = at
			}
			must(d.Ack(false))
		}
	}
	if *pgURL == "" || len(received) == 0 {
		fmt.Printf("events %d duplicates %d\n", len(received), duplicates)
		return
	}
	db, err := sqlx.Open("postgres", *pgURL)
	must(err)
	defer db.Close()
	ids := make([]int64, 0, len(received))
	for id := range received {
		ids = append(ids, id)
	}
	var rows []struct {
		ID        int64     `db:"id"`
		CreatedAt time.Time `db:"created_at"`
	}
	must(db.Select(&rows, `SELECT id, created_at FROM orders WHERE id = ANY($1)`, pq.Int64Array(ids)))
	lat := make([]time.Duration, 0, len(rows))
	for _, r := range rows {
		lat = append(lat, received[r.ID].Sub(r.CreatedAt))
	}
	if len(lat) == 0 {
		fmt.Printf("events %d, but none of their orders is in the database: no latency to report\n", len(received))
		os.Exit(1)
	}
	slices.Sort(lat)
	q := func(p float64) string {
		return fmt.Sprintf("%.2fms", float64(lat[int(p*float64(len(lat)-1))].Microseconds())/1000)
	}
	fmt.Printf("events %d (orders found %d) duplicates %d p50 %s p90 %s p99 %s max %s\n",
		len(received), len(rows), duplicates, q(0.50), q(0.90), q(0.99), q(1))
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
