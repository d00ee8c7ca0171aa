-- transition: move a job from an expected status to a new one, with its
-- status event. Prepended: emit.lua.
-- KEYS[1] the job hash, KEYS[2] its events stream.
-- ARGV[1] the expected status, ARGV[2] the new status, ARGV[3] the field of
-- its time, ARGV[4] the time (JSON), ARGV[5] the status event's extra
-- members ('' for none), ARGV[6..] field/value pairs to set.
-- Returns 1 if the job was in the expected status, else 0.
local current = redis.call('HGET', KEYS[1], 'status')
if not current or cjson.decode(current) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', cjson.encode(ARGV[2]), ARGV[3], ARGV[4])
set_fields(KEYS[1], KEYS[2], 6)
emit_status(KEYS[1], KEYS[2], ARGV[2], ARGV[4], ARGV[5])
return 1
