-- reserve_dataset: hold one of a tenant's dataset slots for an upload, if
-- its live datasets and its uploads under way are fewer than the limit;
-- lapsed holds (an upload whose process died) and expired datasets are
-- pruned first, so that neither keeps a slot for ever.
-- KEYS[1] the tenant's datasets (sorted set, score: creation time),
-- KEYS[2] its uploads under way (sorted set, score: when the hold lapses).
-- ARGV[1] now (seconds), ARGV[2] the creation time before which a dataset
-- has expired, ARGV[3] the limit, ARGV[4] the hold's token, ARGV[5] the
-- seconds a hold lasts.
-- Returns 1 if the slot is held, 0 at the limit.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local taken = redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2])
if taken >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[5]), ARGV[4])
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[5])))
return 1
