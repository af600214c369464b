-- Make ARGV[1] the current day; forget every earlier day's statistics.
-- KEYS[1]: the key prefix.
local p = KEYS[1]
local old = redis.call('GET', p .. ':day')
if old and old ~= ARGV[1] then
  for _, market in ipairs(redis.call('SMEMBERS', p .. ':m:' .. old)) do
    redis.call('DEL', p .. ':s:' .. old .. ':' .. market, p .. ':s:' .. old .. ':' .. market .. ':b')
  end
  redis.call('DEL', p .. ':m:' .. old)
end
redis.call('SET', p .. ':day', ARGV[1])
return 1
