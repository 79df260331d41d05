package events

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// memOutbox is an outbox in memory that hands out, as the stores do, only
// the first pending event of each order in a round.
type memOutbox struct {
	mu      sync.Mutex
	pending []Event
}

func (o *memOutbox) DispatchEvents(ctx context.Context, limit int, publish DispatchFunc) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var batch []Event
	seen := map[int64]bool{}
	for _, e := range o.pending {
		if !seen[e.OrderID] && len(batch) < limit {
			batch = append(batch, e)
		}
		seen[e.OrderID] = true
	}
	if len(batch) == 0 {
		return 0, nil
	}
	n, err := publish(ctx, batch)
	for _, e := range batch[:n] {
		for i, p := range o.pending {
			if p.ID == e.ID {
				o.pending = append(o.pending[:i], o.pending[i+1:]...)
				break
			}
		}
	}
	return n, err
}

func (o *memOutbox) EventBacklog(context.Context) (int, time.Time, error) { return 0, time.Time{}, nil }

func (o *memOutbox) PurgeEvents(context.Context, time.Time) (int64, error) { return 0, nil }

type memPublisher struct {
	mu        sync.Mutex
	published []int64
	all       chan struct{}
	want      int
}

func (p *memPublisher) Publish(_ context.Context, events []Event) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range events {
		p.published = append(p.published, e.ID)
	}
	if len(p.published) == p.want {
		close(p.all)
	}
	return len(events), nil
}

func (p *memPublisher) Close() error { return nil }

// TestRelayPublishesAnOrdersEventsInOneGo: the events of one order that
// wait together (created, updated, deleted) are all published at once,
// one round after the other, not one per Interval.
func TestRelayPublishesAnOrdersEventsInOneGo(t *testing.T) {
	outbox := &memOutbox{pending: []Event{
		{ID: 1, OrderID: 7, Type: "order_created"},
		{ID: 2, OrderID: 7, Type: "order_updated"},
		{ID: 3, OrderID: 7, Type: "order_deleted"},
	}}
	pub := &memPublisher{all: make(chan struct{}), want: 3}
	r := NewRelay(outbox, pub, Config{BatchSize: 100, Interval: time.Hour}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	select {
	case <-pub.all:
	case <-time.After(30 * time.Second):
		pub.mu.Lock()
		defer pub.mu.Unlock()
		t.Fatalf("published %v within 30 s; want events 1, 2 and 3 (the next Interval is an hour away)", pub.published)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if len(pub.published) != 3 || pub.published[0] != 1 || pub.published[1] != 2 || pub.published[2] != 3 {
		t.Fatalf("published %v, want [1 2 3] in order", pub.published)
	}
}

// countingOutbox is an outbox with two events pending for ten minutes,
// which records the purges asked of it.
type countingOutbox struct {
	memOutbox
	mu     sync.Mutex
	purges []time.Time
}

func (o *countingOutbox) EventBacklog(context.Context) (int, time.Time, error) {
	return 2, time.Now().Add(-10 * time.Minute), nil
}

func (o *countingOutbox) PurgeEvents(_ context.Context, before time.Time) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.purges = append(o.purges, before)
	return 0, nil
}

// TestRelayMaintain: the upkeep logs the backlog every 30 seconds, as a
// warning when the oldest event is stale, and purges what was published
// longer ago than Retention every hour, from the start, until its context
// ends.
func TestRelayMaintain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		outbox := &countingOutbox{}
		var logs bytes.Buffer // read once Maintain has returned
		r := NewRelay(outbox, &memPublisher{}, Config{Retention: 24 * time.Hour}, slog.New(slog.NewTextHandler(&logs, nil)))
		start := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { r.Maintain(ctx); close(done) }()
		time.Sleep(time.Hour + time.Second)
		synctest.Wait()
		cancel()
		<-done

		if len(outbox.purges) != 2 || !outbox.purges[0].Equal(start.Add(-24*time.Hour)) || !outbox.purges[1].Equal(start.Add(-23*time.Hour)) {
			t.Errorf("purges before %v; want at the start and an hour later, of what is older than a day", outbox.purges)
		}
		if n := strings.Count(logs.String(), "level=WARN msg=\"events: outbox backlog\" pending=2"); n != 121 {
			t.Errorf("%d backlog warnings in an hour; want 121, one every 30 s from the start:\n%.500s", n, logs.String())
		}
	})
}
