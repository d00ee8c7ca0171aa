-- emit: the event functions, prepended to every script that changes a job's
-- state or progress. The event goes into the job's stream in the same atomic
-- step, and the stream expires when the record does. An event's data is JSON
-- built from JSON fragments (cjson would round numbers to 14 digits).
-- KEYS: none of its own; each function takes the job hash and its events
-- stream (the script's KEYS) as arguments.
-- ARGV: set_fields(job, stream, first) reads field/value pairs from
-- ARGV[first] to the end; emit and emit_status read none.
-- Returns nothing: defines emit, emit_status and set_fields. A stream keeps
-- about EVENTS_MAXLEN events, filled in when the script is composed.
local function emit(job, stream, kind, data)
  redis.call('XADD', stream, 'MAXLEN', '~', '{{EVENTS_MAXLEN}}', '*', 'event', kind, 'data', data)
  local ttl = redis.call('PTTL', job)
  if ttl > 0 then redis.call('PEXPIRE', stream, ttl) end
end
-- A status event; at: a JSON string, extra: JSON members to add ('' for none).
local function emit_status(job, stream, status, at, extra)
  local data = '{"status":' .. cjson.encode(status) .. ',"at":' .. at
  local attempt = redis.call('HGET', job, 'attempt')
  if attempt then data = data .. ',"attempt":' .. attempt end
  if extra ~= '' then data = data .. ',' .. extra end
  emit(job, stream, 'status', data .. '}')
end
-- Set field/value pairs from ARGV[first]; a progress write is an event too.
local function set_fields(job, stream, first)
  for i = first, #ARGV, 2 do
    redis.call('HSET', job, ARGV[i], ARGV[i + 1])
    if ARGV[i] == 'progress' then emit(job, stream, 'progress', ARGV[i + 1]) end
  end
end
