-- Set published prices, each only if newer than what its slot holds.
-- KEYS[1]: the key prefix.  ARGV: groups of 3: slot, pos, the quote as JSON.
-- Returns -1 if the store is empty (no current day: rebuild), else how many were applied.
local p = KEYS[1]
if redis.call('EXISTS', p .. ':day') == 0 then return -1 end
local applied = 0
for i = 1, #ARGV, 3 do
  local held = tonumber(redis.call('HGET', p .. ':qpos', ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) > held then
    redis.call('HSET', p .. ':qpos', ARGV[i], ARGV[i + 1])
    redis.call('HSET', p .. ':q', ARGV[i], ARGV[i + 2])
    applied = applied + 1
  end
end
return applied
