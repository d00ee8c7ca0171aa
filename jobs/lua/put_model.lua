-- put_model: store the model file's first chunk (the whole file when it fits
-- in one; the others are stored first, by put_model_chunk) and its size in
-- the record, for the record's remaining lifetime, and not at all once the
-- record is gone (expired or deleted), so a late worker leaves no orphan
-- behind. Prepended: set_for_record.lua.
-- KEYS[1] the job hash, KEYS[2] the model (its first chunk).
-- ARGV[1] the first chunk, ARGV[2] the record's model_file field (JSON).
-- Returns 1 if stored, 0 if the record is gone.
if not set_for_record(KEYS[1], KEYS[2], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'model_file', ARGV[2])
return 1
