-- remove_finished: delete a finished job whole, its model file's chunks too.
-- Every key it deletes is one of its KEYS: the caller reads the record's
-- model_file first to name the chunks, and nothing is deleted if the field
-- changed since (the caller reads it again).
-- KEYS[1] the job hash, KEYS[2] data, KEYS[3] model (its first chunk),
-- KEYS[4] events, KEYS[5] predictions, KEYS[6..5 + ARGV[2]] the indexes
-- that list it, the rest: the model file's later chunks (model:1, model:2...).
-- ARGV[1] the job id, ARGV[2] how many indexes, ARGV[3] the record's
-- model_file field as the caller read it ("" for none), ARGV[4..] the final
-- statuses.
-- Returns the job's status (a live job is left as it is), nil if there is
-- no job, or 0 if model_file is no longer ARGV[3] (nothing deleted).
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return false end
local status = cjson.decode(current)
for i = 4, #ARGV do
  if status == ARGV[i] then
    if (redis.call('HGET', KEYS[1], 'model_file') or '') ~= ARGV[3] then return 0 end
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
    local indexes = 5 + tonumber(ARGV[2])
    for k = 6, indexes do redis.call('ZREM', KEYS[k], ARGV[1]) end
    for k = indexes + 1, #KEYS do redis.call('DEL', KEYS[k]) end
  end
end
return status
