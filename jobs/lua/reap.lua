-- reap: settle a running job whose worker is gone. Acts only if the lease
-- has expired, or, given a worker, at once if that worker holds the job (it
-- heard its process die). Then fails it with the given error if any; else a
-- lost running job is cancelled if a cancel was asked for, queued again
-- while its attempts do not exceed the retries, failed with WorkerLost
-- otherwise. Each change comes with its status event (a job given back
-- emits "queued" again, with "reason": "worker_lost"). Prepended: emit.lua.
-- KEYS[1] the job hash, KEYS[2] the lease, KEYS[3] RUNNING, KEYS[4] REQUEUE,
-- KEYS[5] the events stream.
-- ARGV[1] the job id, ARGV[2] retries, ARGV[3] now (JSON), ARGV[4] the score
-- in REQUEUE, ARGV[5] worker ("" to act only if the lease has expired),
-- ARGV[6] the reason for the error message, ARGV[7] an error (JSON) to fail
-- the job with at once ("" for none).
-- Returns what was done: "alive" (nothing), "gone", "not_running",
-- "cancelled", "requeued" or "failed".
local current = redis.call('HGET', KEYS[1], 'status')
if not current then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 'gone'
end
if cjson.decode(current) ~= 'running' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 'not_running'
end
local raw = redis.call('HGET', KEYS[1], 'worker')
local worker = raw and cjson.decode(raw) or '?'
if ARGV[5] == '' then
  if redis.call('EXISTS', KEYS[2]) == 1 then return 'alive' end
elseif worker ~= ARGV[5] then
  return 'alive'
end
local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '1')
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[1], 'lease_token')
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'status', cjson.encode('failed'), 'finished_at', ARGV[3],
             'error', ARGV[7])
  local err = cjson.decode(ARGV[7])
  local shown = cjson.encode({type = err.type, message = err.message})
  emit_status(KEYS[1], KEYS[5], 'failed', ARGV[3], '"error":' .. shown)
  return 'failed'
end
if redis.call('HEXISTS', KEYS[1], 'cancel_requested') == 1 then
  redis.call('HSET', KEYS[1], 'status', cjson.encode('cancelled'), 'finished_at', ARGV[3])
  emit_status(KEYS[1], KEYS[5], 'cancelled', ARGV[3], '')
  return 'cancelled'
end
if attempt <= tonumber(ARGV[2]) then
  -- The reason, in the record and the event: a client that sees "queued"
  -- again knows its job was not just waiting.
  redis.call('HSET', KEYS[1], 'status', cjson.encode('queued'), 'requeued_at', ARGV[3],
             'requeue_reason', cjson.encode('worker_lost'))
  redis.call('HDEL', KEYS[1], 'started_at', 'worker', 'progress')
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
  emit_status(KEYS[1], KEYS[5], 'queued', ARGV[3], '"reason":"worker_lost"')
  return 'requeued'
end
local message = 'The worker running this job (' .. worker .. ') was lost: ' .. ARGV[6] ..
  '. It ran ' .. attempt .. ' time(s), the most allowed (SEQLAB_JOB_RETRIES=' .. ARGV[2] .. ').'
local err = cjson.encode({type = 'WorkerLost', message = message})
redis.call('HSET', KEYS[1], 'status', cjson.encode('failed'), 'finished_at', ARGV[3],
           'error', err)
emit_status(KEYS[1], KEYS[5], 'failed', ARGV[3], '"error":' .. err)
return 'failed'
