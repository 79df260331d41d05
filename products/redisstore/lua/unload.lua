-- Deletes a product that a load created, unless it changed since
-- (airship import undoing a failed load). KEYS[1] product hash, KEYS[2]
-- its holds; ARGV: title, passenger_capacity, maximum_speed, in_stock,
-- incarnation ("": any). Returns 1 deleted, 2 not there, 3 left as it is:
-- changed (fields, or stock an order took), another incarnation, or stock
-- held for an order in flight.
local cur = redis.call('HMGET', KEYS[1], 'title', 'passenger_capacity', 'maximum_speed', 'in_stock', 'inc')
if not cur[1] then return 2 end
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] or cur[3] ~= ARGV[3] or cur[4] ~= ARGV[4] then return 3 end
if ARGV[5] ~= '' and cur[5] ~= ARGV[5] then return 3 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 3 end
redis.call('DEL', KEYS[1])
return 1
