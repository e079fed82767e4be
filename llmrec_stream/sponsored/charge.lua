-- Charge one impression to a campaign, atomically: check what it may spend now and spend it.
--
-- KEYS[1] the campaign's budget hash  sp:{<campaign id>}  (one slot per campaign: Cluster-safe)
--   fields: budget, bid (integer micro-units), start, end (ms), spent (micro-units),
--           exhausted ("1" once a bid no longer fits the budget)
-- ARGV[1] now (ms)
-- Budget pacing: by time t the campaign may have spent at most budget * (t - start) / (end -
-- start) before this impression (so spend follows the clock, at most one bid ahead of it),
-- and never more than the budget in all. Integers throughout: total spend <= budget exactly.
-- Returns {charged (1/0), why ("ok", "gone", "inactive", "paced", "exhausted"),
--          exhausted now by this call (1/0), bid}.
local c = redis.call("HMGET", KEYS[1], "budget", "bid", "start", "end", "spent")
if not c[1] then return {0, "gone", 0, 0} end
local budget, bid = tonumber(c[1]), tonumber(c[2])
local s, e, spent = tonumber(c[3]), tonumber(c[4]), tonumber(c[5]) or 0
local now = tonumber(ARGV[1])
if now < s or now >= e then return {0, "inactive", 0, bid} end
if spent + bid > budget then return {0, "exhausted", 0, bid} end
if spent > budget * (now - s) / (e - s) then return {0, "paced", 0, bid} end
spent = redis.call("HINCRBY", KEYS[1], "spent", bid)
local now_exhausted = 0
if spent + bid > budget then
  now_exhausted = redis.call("HSETNX", KEYS[1], "exhausted", "1")
end
return {1, "ok", now_exhausted, bid}
