-- put_model_chunk: store one chunk (the second or a later one) of a model
-- file, for the record's remaining lifetime, before the step that stores the
-- first chunk with the outcome (finish_leased) or alone (put_model). With a
-- token, only while the job runs under it (a worker that lost its job writes
-- nothing); without one, only while the record exists. Prepended: holds.lua,
-- set_for_record.lua.
-- KEYS[1] the job hash, KEYS[2] the chunk (seqlab:job:<id>:model:<n>).
-- ARGV[1] the lease token ("" for none), ARGV[2] the chunk's bytes.
-- Returns 1 if stored, else 0.
if ARGV[1] ~= '' and not holds(KEYS[1], ARGV[1]) then return 0 end
if not set_for_record(KEYS[1], KEYS[2], ARGV[2]) then return 0 end
return 1
