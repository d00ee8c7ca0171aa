-- finish_leased: end the job running under the token. The outcome, its event
-- and the model are stored together or not at all; the model for the
-- record's remaining lifetime. Prepended: emit.lua, holds.lua,
-- set_for_record.lua.
-- KEYS[1] the job hash, KEYS[2] the lease, KEYS[3] the model, KEYS[4]
-- RUNNING, KEYS[5] the events stream.
-- ARGV[1] the job id, ARGV[2] the token, ARGV[3] the final status, ARGV[4]
-- finished_at (JSON), ARGV[5] "1" with a model file in ARGV[6] (else "0",
-- ""), ARGV[7] the status event's extra members, ARGV[8..] field/value pairs.
-- Returns 1, or 0 (nothing written) if the job is not ours.
if not holds(KEYS[1], ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'status', cjson.encode(ARGV[3]), 'finished_at', ARGV[4])
set_fields(KEYS[1], KEYS[5], 8)
emit_status(KEYS[1], KEYS[5], ARGV[3], ARGV[4], ARGV[7])
if ARGV[5] == '1' then set_for_record(KEYS[1], KEYS[3], ARGV[6]) end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
