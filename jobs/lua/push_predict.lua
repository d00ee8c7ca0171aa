-- push_predict: hand a prediction request to the predictors of a queue
-- (worker/predictor.py), if one of them is live; else write nothing, and the
-- API sends the Celery task instead (workers from before predictors).
-- KEYS[1] the queue's predictor presence (a key that each live predictor
-- sets again every second, with a TTL of a few), KEYS[2] the queue's
-- request list.
-- ARGV[1] the request (JSON), ARGV[2] the list's TTL in ms, never
-- shortened (a list that no predictor reads any more goes with its
-- requests once the last wait is over).
-- Returns 1 if pushed, 0 if no predictor is live.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('RPUSH', KEYS[2], ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
