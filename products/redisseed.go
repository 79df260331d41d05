package products

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Seed writes products in bulk, one HSET each, in a single pipeline: one
// round trip for the whole batch (two on a cluster, where the ids enter
// the index in a round trip of their own, before the products). Unlike Create it overwrites products that
// exist. It is for loading test data (airship seed), not for serving
// requests.
func (s *RedisStore) Seed(ctx context.Context, ps []Product) error {
	if len(ps) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	ids := make([]redis.Z, len(ps))
	for i, p := range ps {
		ids[i] = redis.Z{Member: p.ID}
	}
	pipe.ZAdd(ctx, s.idIndex(), ids...) // before the products, as Create does
	if s.cluster {
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("seed %d products: %w", len(ps), redisErr(err))
		}
		pipe = s.rdb.Pipeline()
	}
	for _, p := range ps {
		pipe.HSet(ctx, s.productKey(p.ID),
			"title", p.Title,
			"passenger_capacity", strconv.FormatInt(p.PassengerCapacity, 10),
			"maximum_speed", strconv.FormatInt(p.MaximumSpeed, 10),
			"in_stock", strconv.FormatInt(p.InStock, 10),
			"inc", p.IncarnationOrNew())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("seed %d products: %w", len(ps), redisErr(err))
	}
	return nil
}
