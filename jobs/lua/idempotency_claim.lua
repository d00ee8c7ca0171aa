-- idempotency_claim: claim an Idempotency-Key for one request
-- (service/jobs/idempotency.py), unless another request holds it.
-- KEYS[1] the claim.
-- ARGV[1] the pending value, ARGV[2] its TTL (seconds).
-- Returns nil if this call claimed the key, else the value that holds it.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])
