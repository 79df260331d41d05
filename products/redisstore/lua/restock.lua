-- Gives stock back to one product, once per restock id.
-- KEYS[1] product hash, KEYS[2] the restock's marker; ARGV: quantity,
-- marker ttl (ms), incarnation ('' for any).
-- Stock goes back only if the product exists in that incarnation.
-- Returns 1 the first time, 0 when the marker says it was done.
if redis.call('SET', KEYS[2], 1, 'NX', 'PX', ARGV[2]) == false then return 0 end
local inc = redis.call('HGET', KEYS[1], 'inc')
if inc == false then
  if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
  inc = ''
end
if ARGV[3] == '' or ARGV[3] == inc then redis.call('HINCRBY', KEYS[1], 'in_stock', ARGV[1]) end
return 1
