-- put_model: store the model file's first chunk (the whole file when it fits
-- in one; the others are stored first, by put_model_chunk) and its size in
-- the record, for the record's remaining lifetime, and not at all once the
-- record is gone (expired or deleted), so a late worker leaves no orphan
-- behind.
-- KEYS[1] the job hash, KEYS[2] the model (its first chunk).
-- ARGV[1] the first chunk, ARGV[2] the record's model_file field (JSON).
-- Returns 1 if stored, 0 if the record is gone.
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 0 end
if ttl == -1 then
  redis.call('SET', KEYS[2], ARGV[1])
else
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl)
end
redis.call('HSET', KEYS[1], 'model_file', ARGV[2])
return 1
