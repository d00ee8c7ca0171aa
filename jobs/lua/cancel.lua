-- cancel: cancel a queued job, ask a running one to stop, leave a finished
-- one alone. Prepended: emit.lua.
-- KEYS[1] the job hash, KEYS[2] its events stream.
-- ARGV[1] finished_at (JSON).
-- Returns the outcome ("cancelled", "cancelling", "ended") and the record as
-- it is left (HGETALL), or nil if there is no job.
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return false end
local status = cjson.decode(current)
local outcome = 'ended'
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', cjson.encode('cancelled'), 'finished_at', ARGV[1])
  emit_status(KEYS[1], KEYS[2], 'cancelled', ARGV[1], '')
  outcome = 'cancelled'
elseif status == 'running' then
  redis.call('HSET', KEYS[1], 'cancel_requested', 'true')
  outcome = 'cancelling'
end
return {outcome, redis.call('HGETALL', KEYS[1])}
