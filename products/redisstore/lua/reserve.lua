-- Takes one line's stock for a reservation, atomically.
-- KEYS[1] product hash, KEYS[2] its holds; ARGV: reservation id, quantity,
-- required incarnation ('' for any).
-- Returns {1, incarnation} when held (also when this reservation already
-- holds it), {-1} when the product (or that incarnation of it) does not
-- exist, and {-2 - available} when there is not enough stock.
local cur = redis.call('HMGET', KEYS[1], 'in_stock', 'inc')
local stock, inc = cur[1], cur[2] or ''
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {1, inc} end
if not stock then return {-1} end
if ARGV[3] ~= '' and ARGV[3] ~= inc then return {-1} end
stock = tonumber(stock)
local q = tonumber(ARGV[2])
if stock < q then return {-2 - stock} end
redis.call('HINCRBY', KEYS[1], 'in_stock', -q)
redis.call('HSET', KEYS[2], ARGV[1], q)
return {1, inc}
