-- Gives a reservation's held stock of one product back, once.
-- KEYS[1] product hash, KEYS[2] its holds; ARGV: reservation id.
-- Holds are deleted with their product, so stock never returns to another
-- incarnation. Returns 1 when stock returned, 0 when nothing was held.
local q = redis.call('HGET', KEYS[2], ARGV[1])
if not q then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'in_stock', q) end
return 1
