-- Creates a product unless its id is taken.
-- KEYS[1] product hash; ARGV: title, passenger_capacity, maximum_speed,
-- in_stock, incarnation. Returns 1 when created, 0 when the id is taken.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'title', ARGV[1], 'passenger_capacity', ARGV[2],
  'maximum_speed', ARGV[3], 'in_stock', ARGV[4], 'inc', ARGV[5])
return 1
