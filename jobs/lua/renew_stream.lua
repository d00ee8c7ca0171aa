-- renew_stream: renew the lease of an open event stream (taking its slot
-- again if the lease lapsed meanwhile).
-- KEYS[1] the tenant's open streams (see take_stream.lua).
-- ARGV[1] the stream's member, ARGV[2] lease ms.
-- Returns 1.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
