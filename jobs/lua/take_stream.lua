-- take_stream: take one of a tenant's event stream slots, under a lease
-- that lapses unless renewed (a killed API process leaks no slot for long).
-- KEYS[1] the tenant's open streams: a sorted set of members scored by the
-- expiry of their lease (ms, Redis's clock).
-- ARGV[1] the stream's member, ARGV[2] lease ms, ARGV[3] the cap.
-- Returns {1} if taken, else {0, members} (the streams holding the slots).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return {0, redis.call('ZRANGE', KEYS[1], 0, -1)}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
-- Every lease is as long: the newest outlives the others, and so the key.
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1}
