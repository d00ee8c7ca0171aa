-- renew: renew the lease (setting it again if it lapsed while no reaper
-- came). Prepended: holds.lua.
-- KEYS[1] the job hash, KEYS[2] the lease.
-- ARGV[1] the token, ARGV[2] lease ms.
-- Returns 1, or 0 if the job is not ours.
if not holds(KEYS[1], ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
