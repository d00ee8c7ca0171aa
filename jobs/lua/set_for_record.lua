-- set_for_record: the one way a job's companion value (its model file or a
-- chunk of it, its predictions) is stored, prepended to the scripts that
-- store one. The value lives exactly as long as the record: it takes the
-- record's remaining lifetime, no lifetime if the record has none, and is
-- not stored at all once the record is gone (expired or deleted), so that a
-- late write leaves no orphan behind.
-- KEYS: none of its own; set_for_record(record, key, value) takes the job
-- hash and the value's key as arguments.
-- ARGV: none of its own; the value is an argument.
-- Returns nothing: defines set_for_record(record, key, value), true if
-- stored, false if the record is gone.
local function set_for_record(record, key, value)
  local ttl = redis.call('PTTL', record)
  if ttl == -2 then return false end
  if ttl > 0 then
    redis.call('SET', key, value, 'PX', ttl)
  else
    redis.call('SET', key, value)
  end
  return true
end
