-- update_live: set fields only while the job exists and is not finished
-- (progress from a worker must not resurrect an expired job or overwrite a
-- final state). Prepended: emit.lua.
-- KEYS[1] the job hash, KEYS[2] its events stream.
-- ARGV[1..] field/value pairs to set (progress: an event too).
-- Returns 1 if the job was queued or running, else 0.
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return 0 end
local status = cjson.decode(current)
if status ~= 'queued' and status ~= 'running' then return 0 end
set_fields(KEYS[1], KEYS[2], 1)
return 1
