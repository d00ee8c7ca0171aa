-- update_leased: set fields (progress: an event too) while the job runs under
-- the token. Prepended: emit.lua, holds.lua.
-- KEYS[1] the job hash, KEYS[2] its events stream.
-- ARGV[1] the token, ARGV[2..] field/value pairs.
-- Returns 1, or 0 if the job is not ours.
if not holds(KEYS[1], ARGV[1]) then return 0 end
set_fields(KEYS[1], KEYS[2], 2)
return 1
