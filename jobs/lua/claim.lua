-- claim: move a queued job to running under a fresh lease, with its status
-- event. Prepended: emit.lua.
-- KEYS[1] the job hash, KEYS[2] the lease, KEYS[3] RUNNING, KEYS[4] REQUEUE,
-- KEYS[5] the events stream.
-- ARGV[1] the job id, ARGV[2] the token, ARGV[3] lease ms, ARGV[4]
-- started_at (JSON), ARGV[5] worker (JSON), ARGV[6] queue (JSON), ARGV[7]
-- the score in RUNNING.
-- Returns the attempt number (1 for a first run), 0 if the job is not queued.
local current = redis.call('HGET', KEYS[1], 'status')
if not current or cjson.decode(current) ~= 'queued' then return 0 end
local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0') + 1
redis.call('HSET', KEYS[1], 'status', cjson.encode('running'), 'started_at', ARGV[4],
           'worker', ARGV[5], 'queue', ARGV[6], 'attempt', tostring(attempt),
           'lease_token', cjson.encode(ARGV[2]))
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
emit_status(KEYS[1], KEYS[5], 'running', ARGV[4], '')
return attempt
