-- Applies a partial update to an existing product.
-- KEYS[1] product hash; ARGV: field, value, field, value, ...
-- Returns the product's fields (as HMGET of title, passenger_capacity,
-- maximum_speed, in_stock, inc), or false when it does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if #ARGV > 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return redis.call('HMGET', KEYS[1], 'title', 'passenger_capacity', 'maximum_speed', 'in_stock', 'inc')
