-- holds: whether the job runs under a lease token, prepended to the scripts
-- that a worker's writes run. How leases work: jobs/store.py, "leases".
-- KEYS: none of its own; holds(key, token) takes the job hash as an argument.
-- ARGV: none of its own; the token is an argument.
-- Returns nothing: defines holds(key, token), true if the job is running and
-- its record's lease_token is token.
local function holds(key, token)
  local current = redis.call('HGET', key, 'status')
  if not current or cjson.decode(current) ~= 'running' then return false end
  local held = redis.call('HGET', key, 'lease_token')
  return held ~= false and cjson.decode(held) == token
end
