-- Right to erasure for one user, atomically: delete everything personal, keep a marker.
--
-- KEYS[1] profile hash, KEYS[2..] every other key of the user (recent, bought, vectors, recs,
-- follows, shadow lists);
-- all share the {uid} hash tag (one slot: Redis Cluster runs it too).
-- ARGV[1] erased-at (the erasure event's ts, ms), ARGV[2] the erasure's watermark field
-- ("topic:partition"), ARGV[3] its offset.
--
-- What stays in the hash is no personal data: "x" the erased-at time, the per-(topic,
-- partition) offset watermarks "wm:...", "xo:..." a copy of them as they were at erasure, and
-- "enc" the encoder id. profile.lua refuses every event with ts <= x or an offset at or below
-- its xo, so a batch in flight or a replay from offset 0 never brings the user back; a later
-- event starts a fresh profile. The erasure's own watermark makes a replayed erasure a no-op
-- (it would otherwise wipe the fresh profile built after it).
-- Returns 1 when the user was erased, 0 when this erasure had been applied already.

local p = KEYS[1]
local ts = tonumber(ARGV[1])
local own = "wm:" .. ARGV[2]
local offset = tonumber(ARGV[3])
local done = tonumber(redis.call("HGET", p, own))
if done ~= nil and offset <= done then return 0 end

local kept = {}
local fields = redis.call("HGETALL", p)
local erased_at = ts
for i = 1, #fields, 2 do
  local f, v = fields[i], fields[i + 1]
  if f == "x" then
    erased_at = math.max(erased_at, tonumber(v))
  elseif string.sub(f, 1, 3) == "wm:" then
    kept[#kept + 1] = f
    kept[#kept + 1] = v
    if f ~= own then
      kept[#kept + 1] = "xo:" .. string.sub(f, 4)
      kept[#kept + 1] = v
    end
  elseif f == "enc" then
    kept[#kept + 1] = f
    kept[#kept + 1] = v
  end
end
redis.call("DEL", unpack(KEYS))
kept[#kept + 1] = own
kept[#kept + 1] = ARGV[3]
kept[#kept + 1] = "x"
-- %d: Lua's default number format keeps 14 significant digits only
kept[#kept + 1] = string.format("%d", erased_at)
redis.call("HSET", p, unpack(kept))
return 1
