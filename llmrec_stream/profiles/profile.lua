-- Apply one micro-batch of one user's events to that user's profile, atomically.
--
-- KEYS[1] profile hash  u:{uid}:p      (counters, spend, attributes, watermarks)
-- KEYS[2] recent list   u:{uid}:recent (newest first, bounded)
-- KEYS[3] bought zset   u:{uid}:bought (item -> ts, bounded; for seen-item filtering)
-- KEYS[4] vector state  u:{uid}:v      (string: t_ref, weights, text and behaviour vectors)
-- All four share the {uid} hash tag: one slot, so this also runs on Redis Cluster.
--
-- The vectors live in a string of their own so that the hash keeps only short fields, which
-- Redis stores compactly (a ziplist/listpack; a single 1.5 KB value would turn the whole hash
-- into a hashtable at ~4x the size). Layout, little endian: t_ref, w_text, w_beh (float64),
-- text scale, behaviour scale (float32), then dim int16 codes of text and dim of behaviour.
-- Component i is code[i] * scale with scale = max|v| / 32767 (rounded to float32), so each
-- rewrite moves a component by at most half a step: max|v| / 65534.
-- Profiles written before this layout (float32 "tv"/"bv" and "wt"/"wb"/"t_ref" hash fields)
-- are read from there and moved over on their next write.
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
-- Returns {applied flags "0101..", vector state (the KEYS[4] layout, or ""), w_text, w_beh,
--          bought items, recent items (newest first)}.

local p, recent, bought, vkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dim = tonumber(ARGV[1])
local half_life = tonumber(ARGV[2])
local recent_max = tonumber(ARGV[3])
local bought_max = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local fmt = "<" .. string.rep("f", dim)
local LN2 = math.log(2)

local QMAX = 32767
local qfmt = "<dddff" .. string.rep("h", 2 * dim)
local LEGACY = {"tv", "bv", "wt", "wb", "t_ref"}

local vblob = redis.call("GET", vkey)
local tv, bv, wt, wb, t_ref = {}, {}, 0.0, 0.0, nil
local legacy = false
if vblob then
  local vals = {struct.unpack(qfmt, vblob)}
  t_ref, wt, wb = vals[1], vals[2], vals[3]
  local t_scale, b_scale = vals[4], vals[5]
  for i = 1, dim do
    tv[i] = vals[5 + i] * t_scale
    bv[i] = vals[5 + dim + i] * b_scale
  end
else
  local old = redis.call("HMGET", p, unpack(LEGACY))
  for _, pair in ipairs({{tv, old[1]}, {bv, old[2]}}) do
    local v, blob = pair[1], pair[2]
    if blob then
      legacy = true
      local vals = {struct.unpack(fmt, blob)}
      for i = 1, dim do v[i] = vals[i] end
    else
      for i = 1, dim do v[i] = 0.0 end
    end
  end
  wt, wb, t_ref = tonumber(old[3]) or 0.0, tonumber(old[4]) or 0.0, tonumber(old[5])
end
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

-- int16 codes and the float32 scale they were computed with (the scale is rounded to
-- float32 first, so decoding q * scale anywhere gives back what was meant)
-- Adding then subtracting 1.5 * 2^52 rounds a double to the nearest integer (ties to even)
-- without a function call per component; |v * inv| <= 32767.5 is far inside its range.
local ROUND = 6755399441055744.0
local function quantize(v, codes)
  local m, n0 = 0.0, #codes
  for i = 1, dim do
    local a = v[i]
    if a < 0 then a = -a end
    if a > m then m = a end
  end
  local s = struct.unpack("<f", struct.pack("<f", m / QMAX))
  if s > 0 then
    local inv = 1.0 / s
    for i = 1, dim do
      local q = (v[i] * inv + ROUND) - ROUND
      if q > QMAX then q = QMAX elseif q < -QMAX then q = -QMAX end
      codes[n0 + i] = q
    end
  else
    for i = 1, dim do codes[n0 + i] = 0 end
  end
  return s
end

if dirty then
  local codes = {}
  local t_scale = quantize(tv, codes)
  local b_scale = quantize(bv, codes)
  vblob = struct.pack(qfmt, t_ref, wt, wb, t_scale, b_scale, unpack(codes))
  redis.call("SET", vkey, vblob)
  if legacy then redis.call("HDEL", p, unpack(LEGACY)) end
end
return {table.concat(flags), vblob or "", tostring(wt), tostring(wb),
        redis.call("ZRANGE", bought, 0, -1), redis.call("LRANGE", recent, 0, -1)}
