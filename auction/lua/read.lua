-- Everything a quote board needs, in one round trip.
-- KEYS[1]: the key prefix.  Returns {day, {market, fields..., buyers}..., quotes, settlements}
-- as: day or false; a flat list per market; the quotes hash; the settlements hash.
local p = KEYS[1]
local day = redis.call('GET', p .. ':day')
if not day then return {false, {}, {}, {}} end
local markets = {}
for _, market in ipairs(redis.call('SMEMBERS', p .. ':m:' .. day)) do
  local k = p .. ':s:' .. day .. ':' .. market
  local row = redis.call('HGETALL', k)
  table.insert(row, 'buyers')
  table.insert(row, tostring(redis.call('SCARD', k .. ':b')))
  table.insert(row, 'market')
  table.insert(row, market)
  table.insert(markets, row)
end
return {day, markets, redis.call('HGETALL', p .. ':q'), redis.call('HGETALL', p .. ':settle')}
