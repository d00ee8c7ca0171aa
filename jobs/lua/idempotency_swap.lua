-- idempotency_swap: change a request's own Idempotency-Key claim
-- (service/jobs/idempotency.py): confirm it, or release it.
-- KEYS[1] the claim.
-- ARGV[1] the value it must hold, ARGV[2] the new value ("": delete the
-- claim), ARGV[3] the new value's TTL (seconds).
-- Returns 1 if the claim held ARGV[1] and was changed, else 0.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return 1
