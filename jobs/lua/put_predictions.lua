-- put_predictions: store the predictions for the record's remaining lifetime
-- while the job runs under the token (a worker that lost its job writes
-- nothing). Prepended: holds.lua.
-- KEYS[1] the job hash, KEYS[2] the predictions.
-- ARGV[1] the token, ARGV[2] the predictions (JSON).
-- Returns 1 if stored, else 0.
if not holds(KEYS[1], ARGV[1]) then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[2], ARGV[2])
end
return 1
