-- Loads a product (airship import, import-legacy) unless it is there.
-- KEYS[1] product hash; ARGV: title, passenger_capacity, maximum_speed,
-- in_stock, incarnation, mode ("create" or "overwrite"), same ("1": an
-- equal product must also have this incarnation), dry ("1": write nothing).
-- Returns 1 created, 2 equal, 3 conflicting (left as it is), 4 overwritten
-- (fields replaced, incarnation kept); with dry, what it would do.
local cur = redis.call('HMGET', KEYS[1], 'title', 'passenger_capacity', 'maximum_speed', 'in_stock', 'inc')
if not cur[1] then
  if ARGV[8] ~= '1' then
    redis.call('HSET', KEYS[1], 'title', ARGV[1], 'passenger_capacity', ARGV[2],
      'maximum_speed', ARGV[3], 'in_stock', ARGV[4], 'inc', ARGV[5])
  end
  return 1
end
if cur[1] == ARGV[1] and cur[2] == ARGV[2] and cur[3] == ARGV[3] and cur[4] == ARGV[4]
    and (ARGV[7] ~= '1' or cur[5] == ARGV[5]) then
  return 2
end
if ARGV[6] ~= 'overwrite' then return 3 end
if ARGV[8] == '1' then return 4 end
redis.call('HSET', KEYS[1], 'title', ARGV[1], 'passenger_capacity', ARGV[2],
  'maximum_speed', ARGV[3], 'in_stock', ARGV[4])
return 4
