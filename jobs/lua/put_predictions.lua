-- put_predictions: store the predictions for the record's remaining lifetime
-- while the job runs under the token (a worker that lost its job writes
-- nothing). Prepended: holds.lua, set_for_record.lua.
-- KEYS[1] the job hash, KEYS[2] the predictions.
-- ARGV[1] the token, ARGV[2] the predictions (JSON).
-- Returns 1 if stored, else 0.
if not holds(KEYS[1], ARGV[1]) then return 0 end
if not set_for_record(KEYS[1], KEYS[2], ARGV[2]) then return 0 end
return 1
