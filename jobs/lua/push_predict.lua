-- push_predict: hand a prediction request to the predictors of a queue
-- (worker/predictor.py), if one of them is live; else write nothing, and the
-- API sends the Celery task instead (workers from before predictors).
-- KEYS[1] the queue's predictor presence (a key that each live predictor
-- sets again every second, with a TTL of a few), KEYS[2] the queue's
-- request list; optional: KEYS[3] the job's hash (pushed only while its
-- status is succeeded, the status a record keeps until it goes), KEYS[4] the
-- request's reply list (where nothing is pushed, an empty reply goes on it,
-- kept ARGV[3] ms, so that a BLPOP on it sent with this call returns at once).
-- ARGV[1] the request (JSON), ARGV[2] the list's TTL in ms, never
-- shortened (a list that no predictor reads any more goes with its
-- requests once the last wait is over), ARGV[3] (with KEYS[4]) the empty
-- reply's TTL in ms.
-- Returns 1 if pushed, 0 if no predictor is live, -1 if the job is gone
-- or not succeeded.
local declined = nil
if KEYS[3] and redis.call('HGET', KEYS[3], 'status') ~= '"succeeded"' then
  declined = -1
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  declined = 0
end
if declined then
  if KEYS[4] then
    redis.call('RPUSH', KEYS[4], '')
    redis.call('PEXPIRE', KEYS[4], ARGV[3])
  end
  return declined
end
redis.call('RPUSH', KEYS[2], ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
