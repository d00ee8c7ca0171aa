-- put_model: store the model file for the record's remaining lifetime, and
-- not at all once the record is gone (expired or deleted), so a late worker
-- leaves no orphan behind.
-- KEYS[1] the job hash, KEYS[2] the model.
-- ARGV[1] the file.
-- Returns 1 if stored, 0 if the record is gone.
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 0 end
if ttl == -1 then
  redis.call('SET', KEYS[2], ARGV[1])
else
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl)
end
return 1
