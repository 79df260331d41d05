-- Gives a product written by an earlier version an incarnation.
-- KEYS[1] product hash; ARGV: a fresh incarnation.
-- A product deleted meanwhile is left alone (HSETNX alone would bring a
-- one-field hash back). Returns 1 when it set one, 0 otherwise.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], 'inc', ARGV[1])
