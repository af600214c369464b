-- Add trade prints to their market's day, each at most once.
-- KEYS[1]: the key prefix.  ARGV: groups of 7: pos, day, market, price, kg, notional, buyer.
-- Returns -1 if the store is empty (no current day: rebuild), else how many were applied.
local p = KEYS[1]
local today = redis.call('GET', p .. ':day')
if not today then return -1 end
local applied = 0
for i = 1, #ARGV, 7 do
  local pos, day, market = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  local price = tonumber(ARGV[i + 3])
  if day == today then
    local k = p .. ':s:' .. day .. ':' .. market
    local held = tonumber(redis.call('HGET', k, 'pos') or '-1')
    if pos > held then
      if held < 0 then
        redis.call('HSET', k, 'open', ARGV[i + 3], 'high', ARGV[i + 3], 'low', ARGV[i + 3])
        redis.call('SADD', p .. ':m:' .. day, market)
      else
        if price > tonumber(redis.call('HGET', k, 'high')) then redis.call('HSET', k, 'high', ARGV[i + 3]) end
        if price < tonumber(redis.call('HGET', k, 'low')) then redis.call('HSET', k, 'low', ARGV[i + 3]) end
      end
      redis.call('HSET', k, 'last', ARGV[i + 3], 'pos', ARGV[i])
      redis.call('HINCRBY', k, 'volume', ARGV[i + 4])
      redis.call('HINCRBY', k, 'trades', 1)
      redis.call('HINCRBY', k, 'notional', ARGV[i + 5])
      redis.call('SADD', k .. ':b', ARGV[i + 6])
      applied = applied + 1
    end
  end
end
return applied
