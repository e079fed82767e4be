-- Apply one micro-batch of one user's events to that user's profile, atomically.
--
-- KEYS[1] profile hash  u:{uid}:p      (vectors, weights, counters, attributes, watermarks)
-- KEYS[2] recent list   u:{uid}:recent (newest first, bounded)
-- KEYS[3] bought zset   u:{uid}:bought (item -> ts, bounded; for seen-item filtering)
-- All three share the {uid} hash tag: one slot, so this also runs on Redis Cluster.
--
-- ARGV[1] dim, ARGV[2] half-life in ms, ARGV[3] recent max, ARGV[4] bought max,
-- ARGV[5] number of events, then 9 fields per event:
--   kind (c comment, k click, p purchase, u user attributes), watermark field ("topic:partition"),
--   offset, ts (ms), item id or "", text contribution (float32 LE bytes or ""),
--   behaviour contribution (float32 LE bytes or ""), amount, attributes (flat JSON object or "")
--
-- An event whose offset is at or below the stored watermark of its (topic, partition) is
-- skipped: replays after a crash never double-apply. Vectors are exponentially decayed sums
-- referenced to t_ref, the newest event time seen, so out-of-order events decay correctly.
-- Returns {applied flags "0101..", text vector bytes, behaviour vector bytes, w_text, w_beh,
--          bought items, recent items (newest first)}.

local p, recent, bought = KEYS[1], KEYS[2], KEYS[3]
local dim = tonumber(ARGV[1])
local half_life = tonumber(ARGV[2])
local recent_max = tonumber(ARGV[3])
local bought_max = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local fmt = "<" .. string.rep("f", dim)
local LN2 = math.log(2)

local state = redis.call("HMGET", p, "tv", "bv", "wt", "wb", "t_ref")
local function load(blob)
  local v = {}
  if blob then
    local vals = {struct.unpack(fmt, blob)}
    for i = 1, dim do v[i] = vals[i] end
  else
    for i = 1, dim do v[i] = 0.0 end
  end
  return v
end
local tv, bv = load(state[1]), load(state[2])
local wt, wb = tonumber(state[3]) or 0.0, tonumber(state[4]) or 0.0
local t_ref = tonumber(state[5])
local dirty = false

local function add(v, blob, f)
  local c = {struct.unpack(fmt, blob)}
  for i = 1, dim do v[i] = v[i] + f * c[i] end
end

local function scale(v, f)
  for i = 1, dim do v[i] = v[i] * f end
end

local flags = {}
for e = 0, n - 1 do
  local b = 5 + e * 9
  local kind, wm_field = ARGV[b + 1], "wm:" .. ARGV[b + 2]
  local offset, ts, item = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]), ARGV[b + 5]
  local tblob, bblob = ARGV[b + 6], ARGV[b + 7]
  local amount, attrs = ARGV[b + 8], ARGV[b + 9]
  local wm = tonumber(redis.call("HGET", p, wm_field))
  if wm ~= nil and offset <= wm then
    flags[#flags + 1] = "0"
  else
    flags[#flags + 1] = "1"
    redis.call("HSET", p, wm_field, ARGV[b + 3])
    if tblob ~= "" or bblob ~= "" then
      -- decay factor for this contribution, or for the stored state when time moves on
      local f = 1.0
      if t_ref == nil then
        t_ref = ts
      elseif ts > t_ref then
        local d = math.exp(-LN2 * (ts - t_ref) / half_life)
        scale(tv, d); scale(bv, d); wt = wt * d; wb = wb * d
        t_ref = ts
      else
        f = math.exp(-LN2 * (t_ref - ts) / half_life)
      end
      if tblob ~= "" then add(tv, tblob, f); wt = wt + f end
      if bblob ~= "" then add(bv, bblob, f); wb = wb + f end
      dirty = true
    end
    redis.call("HINCRBY", p, "n:" .. kind, 1)
    if item ~= "" then
      redis.call("LPUSH", recent, item)
      redis.call("LTRIM", recent, 0, recent_max - 1)
    end
    if kind == "p" then
      redis.call("HINCRBYFLOAT", p, "spend", amount)
      redis.call("ZADD", bought, ts, item)
      redis.call("ZREMRANGEBYRANK", bought, 0, -(bought_max + 1))
    elseif kind == "u" then
      for k, v in pairs(cjson.decode(attrs)) do redis.call("HSET", p, "a:" .. k, v) end
    end
    local last = tonumber(redis.call("HGET", p, "last_ts"))
    if last == nil or ts > last then redis.call("HSET", p, "last_ts", ARGV[b + 4]) end
  end
end

local tblob, bblob
if dirty then
  tblob = struct.pack(fmt, unpack(tv))
  bblob = struct.pack(fmt, unpack(bv))
  redis.call("HSET", p, "tv", tblob, "bv", bblob, "wt", tostring(wt), "wb", tostring(wb),
             "t_ref", string.format("%d", t_ref))
else
  tblob, bblob = state[1] or "", state[2] or ""
end
return {table.concat(flags), tblob, bblob, tostring(wt), tostring(wb),
        redis.call("ZRANGE", bought, 0, -1), redis.call("LRANGE", recent, 0, -1)}
