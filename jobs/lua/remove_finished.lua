-- remove_finished: delete a finished job whole, its model file's chunks too.
-- KEYS[1] the job hash, KEYS[2] data, KEYS[3] model, KEYS[4] events,
-- KEYS[5] predictions, KEYS[6..] the indexes that list it.
-- ARGV[1] the job id, ARGV[2..] the final statuses.
-- Returns the job's status (a live job is left as it is), or nil if there is
-- no job.
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return false end
local status = cjson.decode(current)
for i = 2, #ARGV do
  if status == ARGV[i] then
    -- The chunks after the first live at <model>:<n>; the record says how
    -- many (none recorded: a model of one value, or none).
    local info = redis.call('HGET', KEYS[1], 'model_file')
    if info then
      local chunks = tonumber(cjson.decode(info).chunks) or 1
      for n = 1, chunks - 1 do redis.call('DEL', KEYS[3] .. ':' .. n) end
    end
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
    for k = 6, #KEYS do redis.call('ZREM', KEYS[k], ARGV[1]) end
  end
end
return status
