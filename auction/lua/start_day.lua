-- Make ARGV[1] the current day; forget every earlier day's statistics.
-- KEYS[1]: the key prefix.  ARGV[2] = "create": also when the store is empty (a rebuild);
-- otherwise an empty store (flushed, restarted) answers -1 and stays empty.
local p = KEYS[1]
local old = redis.call('GET', p .. ':day')
if not old and ARGV[2] ~= 'create' then return -1 end
if old and old ~= ARGV[1] then
  for _, market in ipairs(redis.call('SMEMBERS', p .. ':m:' .. old)) do
    redis.call('DEL', p .. ':s:' .. old .. ':' .. market, p .. ':s:' .. old .. ':' .. market .. ':b')
  end
  redis.call('DEL', p .. ':m:' .. old)
end
redis.call('SET', p .. ':day', ARGV[1])
return 1
