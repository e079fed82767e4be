-- Apply one micro-batch of one user's events to that user's profile, atomically.
--
-- KEYS[1] profile hash  u:{uid}:p      (counters, spend, attributes, watermarks, markers)
-- KEYS[2] old recent    u:{uid}:recent (the LIST of earlier versions; moved on first use)
-- KEYS[3] bought zset   u:{uid}:bought (item -> newest purchase ts, bounded; seen-item filter)
-- KEYS[4] state string  u:{uid}:v      (t_ref, weights, text and behaviour vectors, recent)
-- KEYS[5] follows zset  u:{uid}:f      (followee -> follow ts, at most ARGV[9]; social signals)
-- All five share the {uid} hash tag: one slot, so this also runs on Redis Cluster.
--
-- The vectors live in a string of their own so that the hash keeps only short fields, which
-- Redis stores compactly (a ziplist/listpack; a single 1.5 KB value would turn the whole hash
-- into a hashtable at ~4x the size). Layout, little endian: t_ref, w_text, w_beh (float64;
-- t_ref NaN before the first vector), text scale, behaviour scale (float32), then dim int16
-- codes of text and dim of behaviour, then the recent items (below).
-- Component i is code[i] * scale with scale = max|v| / 32767 (rounded to float32), so each
-- rewrite moves a component by at most half a step: max|v| / 65534.
-- Profiles written before this layout (float32 "tv"/"bv" and "wt"/"wb"/"t_ref" hash fields)
-- are read from there and moved over on their next write.
--
-- Recent items are ordered by event time, not by the order events happen to be applied in
-- (a worker interleaves a user's three topics by fetch timing, and a catch-up after a crash
-- interleaves them otherwise): each entry keeps its (ts, topic code, partition, offset), the
-- list is sorted newest first by that key and trimmed to recent_max, so it is the same
-- whatever the order of application; an event older than everything in a full list does not
-- enter. Equal times fall back to (topic, partition, offset), as the trainer orders them.
-- Layout after the vectors: varint count, then per entry (newest first) varint ts (the
-- first entry's ts; each next one's distance to the previous), a byte topic code * 32 +
-- partition (31 and a varint partition for partitions >= 31), varint offset, varint length
-- and the item id. Varints are LEB128. Sharing the vector string fills most of the size
-- class Redis allocates it in; a sorted set of its own would cost ~800 bytes more per user.
-- The LIST of earlier versions (newest first) is moved in on first use, scored with the
-- profile's last_ts, topic code 0, and ordered among itself as the list had it.
--
-- After the recent items, the last few comments (for explanations, llmrec_stream/explain.py),
-- in the recent items' layout and order with the comment's sketch in place of an item id:
-- sign bits of a fixed projection of the comment's text vector, a few bytes that estimate
-- its cosine to an item and say nothing readable of the text. At most ARGV[8] of them; a
-- state string without this section (earlier versions, or no comment yet) holds none.
--
-- After the comments (then written even when empty), the user's aspect scores
-- (llmrec_stream/sentiment.py): varint count, then that many int16 LE thousandths, in the
-- order of the artifact's aspect names. Each comment's deltas are added to the scores times
-- ASPECT_KEEP (older comments fade; |score| stays under max|delta| / (1 - ASPECT_KEEP)). They
-- live here, not in the hash, because the string's allocation has room for them: the 4 KB
-- per-user budget (tests/integration/test_profiles_redis.py) has none elsewhere.
--
-- Right to erasure (erase.lua) leaves a marker in the hash: "x" erased-at (ms) and, per
-- (topic, partition), "xo:..." the watermark at erasure. An event with ts <= x, or at or
-- below its xo offset, is refused ("x" flag): nothing up to the erasure is applied again,
-- in flight or on replay. Its offset still moves the watermark (offsets are not personal).
--
-- ARGV[1] dim, ARGV[2] half-life in ms, ARGV[3] recent max, ARGV[4] bought max,
-- ARGV[5] number of events, ARGV[6] encoder id ("" = unchecked), ARGV[7] max attribute keys,
-- ARGV[8] comments kept for explanations, ARGV[9] max follows, then 11 fields per event:
--   kind (c comment, k click, p purchase, u user attributes, f follow, n unfollow),
--   watermark field ("topic:partition"),
--   offset, ts (ms), item id or "", text contribution (float32 LE bytes or ""),
--   behaviour contribution (float32 LE bytes or ""), amount, attributes (flat JSON array
--   [name, value, ...] in name order, or ""; the followee id for f and n; for a comment
--   its aspect additions [delta, ...] in the heads' aspect order, or ""), topic code
--   (store.TOPIC_CODES; 0 for follows, which enter no recent list),
--   comment sketch (bytes, or "")
--
-- An event whose offset is at or below the stored watermark of its (topic, partition) is
-- skipped: replays after a crash never double-apply. Vectors are exponentially decayed sums
-- referenced to t_ref, the newest event time seen, so out-of-order events decay correctly.
-- A profile whose "enc" (the encoder id that wrote its vectors) differs from ARGV[6] is
-- refused with the error "ENCODER_MISMATCH <its id>" before any vector is read.
-- Returns {flags per event ("1" applied, "0" skipped, "x" refused by erasure),
--          state string (the KEYS[4] layout, or ""), w_text, w_beh,
--          bought items, recent items (newest first), attribute keys dropped,
--          followees (oldest follow first)}.
-- A follow past ARGV[9] followees evicts the oldest follow (by ts); follows carry no vector:
-- the worker reads the followees' own state strings at ranking time (llmrec_stream/social).

local p, recent, bought, vkey, follows = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local dim = tonumber(ARGV[1])
local half_life = tonumber(ARGV[2])
local recent_max = tonumber(ARGV[3])
local bought_max = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local encoder_id = ARGV[6]
local max_attrs = tonumber(ARGV[7])
local comments_max = tonumber(ARGV[8])
local follows_max = tonumber(ARGV[9])
local FIELDS = 11
local ASPECT_KEEP = 0.9
local ASPECT_MAX = 32.767  -- stored as int16 thousandths
local fmt = "<" .. string.rep("f", dim)
local LN2 = math.log(2)

-- before anything is unpacked: vectors of another encoder (or dimension) must not be mixed in
local enc = redis.call("HGET", p, "enc")
if encoder_id ~= "" and enc and enc ~= "" and enc ~= encoder_id then
  return redis.error_reply("ENCODER_MISMATCH " .. enc)
end

local function put_varint(buf, v)
  while v >= 128 do
    buf[#buf + 1] = string.char(v % 128 + 128)
    v = math.floor(v / 128)
  end
  buf[#buf + 1] = string.char(v)
end

local function get_varint(s, pos)
  local v, mul = 0, 1
  while true do
    local c = string.byte(s, pos)
    pos = pos + 1
    if c < 128 then return v + c * mul, pos end
    v = v + (c - 128) * mul
    mul = mul * 128
  end
end

-- newest first: (ts, topic code, partition, offset) descending
local function newer(a, b)
  if a[1] ~= b[1] then return a[1] > b[1] end
  if a[2] ~= b[2] then return a[2] > b[2] end
  if a[3] ~= b[3] then return a[3] > b[3] end
  return a[4] > b[4]
end

local function read_recent(s, pos, out)
  local count
  count, pos = get_varint(s, pos)
  local ts = 0
  for i = 1, count do
    local d, code, part, off, len
    d, pos = get_varint(s, pos)
    if i == 1 then ts = d else ts = ts - d end
    local cp = string.byte(s, pos)
    pos = pos + 1
    code, part = math.floor(cp / 32), cp % 32
    if part == 31 then part, pos = get_varint(s, pos) end
    off, pos = get_varint(s, pos)
    len, pos = get_varint(s, pos)
    out[i] = {ts, code, part, off, string.sub(s, pos, pos + len - 1)}
    pos = pos + len
  end
  return pos
end

local function write_recent(buf, entries)
  put_varint(buf, #entries)
  for i, en in ipairs(entries) do
    put_varint(buf, i == 1 and en[1] or entries[i - 1][1] - en[1])
    if en[3] < 31 then
      buf[#buf + 1] = string.char(en[2] * 32 + en[3])
    else
      buf[#buf + 1] = string.char(en[2] * 32 + 31)
      put_varint(buf, en[3])
    end
    put_varint(buf, en[4])
    put_varint(buf, #en[5])
    buf[#buf + 1] = en[5]
  end
end

local QMAX = 32767
local qfmt = "<dddff" .. string.rep("h", 2 * dim)
local LEGACY = {"tv", "bv", "wt", "wb", "t_ref"}

local vblob = redis.call("GET", vkey)
local tv, bv, wt, wb, t_ref = {}, {}, 0.0, 0.0, nil
local legacy = false
local entries = {}
local comments = {}  -- same entry shape as `entries`, the sketch in place of the item id
local aspects = {}  -- aspect scores, in the artifact's aspect order
local recent_dirty = false
if vblob then
  local vals = {struct.unpack(qfmt, vblob)}
  t_ref, wt, wb = vals[1], vals[2], vals[3]
  if t_ref ~= t_ref then t_ref = nil end  -- NaN: no vector yet
  local t_scale, b_scale = vals[4], vals[5]
  for i = 1, dim do
    tv[i] = vals[5 + i] * t_scale
    bv[i] = vals[5 + dim + i] * b_scale
  end
  local pos = vals[6 + 2 * dim]
  if pos <= #vblob then pos = read_recent(vblob, pos, entries) end
  if pos <= #vblob then pos = read_recent(vblob, pos, comments) end
  if pos <= #vblob then
    local count
    count, pos = get_varint(vblob, pos)
    for i = 1, count do
      aspects[i] = struct.unpack("<h", vblob, pos) / 1000
      pos = pos + 2
    end
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
if redis.call("TYPE", recent)["ok"] == "list" then
  local old = redis.call("LRANGE", recent, 0, -1)
  local score = tonumber(redis.call("HGET", p, "last_ts")) or 0
  for i, item in ipairs(old) do
    entries[#entries + 1] = {score, 0, 0, #old - i, item}
  end
  redis.call("DEL", recent)
  recent_dirty = true
end
local dirty = false
local erased_at = tonumber(redis.call("HGET", p, "x"))
local n_attrs = nil  -- attribute keys held, counted when the first update needs it
local dropped = 0

local function add(v, blob, f)
  local c = {struct.unpack(fmt, blob)}
  for i = 1, dim do v[i] = v[i] + f * c[i] end
end

local function scale(v, f)
  for i = 1, dim do v[i] = v[i] * f end
end

-- field by field: a name the update does not carry keeps its value; a new name enters while
-- the profile holds fewer than max_attrs keys (in the update's name order), else it is
-- dropped and counted, as is a name too long for the hash's compact encoding
local function merge_attributes(attrs)
  if n_attrs == nil then
    n_attrs = 0
    for _, f in ipairs(redis.call("HKEYS", p)) do
      if string.sub(f, 1, 2) == "a:" then n_attrs = n_attrs + 1 end
    end
  end
  local kv = cjson.decode(attrs)
  for i = 1, #kv, 2 do
    local f = "a:" .. kv[i]
    if #f > 32 then  -- fusion.MAX_ATTRIBUTE_FIELD_BYTES
      dropped = dropped + 1
    elseif redis.call("HEXISTS", p, f) == 1 then
      redis.call("HSET", p, f, kv[i + 1])
    elseif n_attrs < max_attrs then
      redis.call("HSET", p, f, kv[i + 1])
      n_attrs = n_attrs + 1
    else
      dropped = dropped + 1
    end
  end
end

local flags = {}
local wrote = false
for e = 0, n - 1 do
  local b = 9 + e * FIELDS
  local kind, tp = ARGV[b + 1], ARGV[b + 2]
  local wm_field = "wm:" .. tp
  local offset, ts, item = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]), ARGV[b + 5]
  local tblob, bblob = ARGV[b + 6], ARGV[b + 7]
  local amount, attrs, code = ARGV[b + 8], ARGV[b + 9], tonumber(ARGV[b + 10])
  local wm = tonumber(redis.call("HGET", p, wm_field))
  local refused = false
  if erased_at ~= nil then
    local xo = tonumber(redis.call("HGET", p, "xo:" .. tp))
    refused = ts <= erased_at or (xo ~= nil and offset <= xo)
  end
  if refused then
    flags[#flags + 1] = "x"
    if wm == nil or offset > wm then redis.call("HSET", p, wm_field, ARGV[b + 3]) end
  elseif wm ~= nil and offset <= wm then
    flags[#flags + 1] = "0"
  else
    flags[#flags + 1] = "1"
    wrote = true
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
      local part = tonumber(string.match(tp, ":(%d+)$"))
      entries[#entries + 1] = {ts, code, part, offset, item}
      recent_dirty = true
    end
    local sketch = ARGV[b + 11]
    if sketch ~= "" and comments_max > 0 then
      local part = tonumber(string.match(tp, ":(%d+)$"))
      comments[#comments + 1] = {ts, code, part, offset, sketch}
      recent_dirty = true
    end
    if kind == "p" then
      redis.call("HINCRBYFLOAT", p, "spend", amount)
      -- GT: an item keeps its newest purchase time whatever order purchases come in; the ts
      -- string, not the number (Lua would format it with 14 significant digits)
      redis.call("ZADD", bought, "GT", ARGV[b + 4], item)
      redis.call("ZREMRANGEBYRANK", bought, 0, -(bought_max + 1))
    elseif kind == "u" then
      merge_attributes(attrs)
    elseif kind == "f" then
      redis.call("ZADD", follows, ARGV[b + 4], attrs)
      redis.call("ZREMRANGEBYRANK", follows, 0, -(follows_max + 1))
    elseif kind == "n" then
      redis.call("ZREM", follows, attrs)
    elseif kind == "c" and attrs ~= "" then
      local deltas = cjson.decode(attrs)
      for i = 1, #deltas do
        local v = (aspects[i] or 0) * ASPECT_KEEP + deltas[i]
        if v > ASPECT_MAX then v = ASPECT_MAX elseif v < -ASPECT_MAX then v = -ASPECT_MAX end
        aspects[i] = v
      end
      recent_dirty = true
    end
    local last = tonumber(redis.call("HGET", p, "last_ts"))
    if last == nil or ts > last then redis.call("HSET", p, "last_ts", ARGV[b + 4]) end
  end
end
if dropped > 0 then redis.call("HINCRBY", p, "a_dropped", dropped) end
if wrote and encoder_id ~= "" and enc ~= encoder_id then redis.call("HSET", p, "enc", encoder_id) end

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

if recent_dirty then
  table.sort(entries, newer)
  for i = #entries, recent_max + 1, -1 do entries[i] = nil end
  table.sort(comments, newer)
  for i = #comments, comments_max + 1, -1 do comments[i] = nil end
end
if dirty or recent_dirty then
  local codes = {}
  local t_scale = quantize(tv, codes)
  local b_scale = quantize(bv, codes)
  local buf = {struct.pack(qfmt, t_ref or 0 / 0, wt, wb, t_scale, b_scale, unpack(codes))}
  write_recent(buf, entries)
  if #comments > 0 or #aspects > 0 then write_recent(buf, comments) end
  if #aspects > 0 then
    put_varint(buf, #aspects)
    for i = 1, #aspects do
      buf[#buf + 1] = struct.pack("<h", (aspects[i] * 1000 + ROUND) - ROUND)
    end
  end
  vblob = table.concat(buf)
  redis.call("SET", vkey, vblob)
  if legacy then redis.call("HDEL", p, unpack(LEGACY)) end
end
local items = {}
for i, en in ipairs(entries) do items[i] = en[5] end
return {table.concat(flags), vblob or "", tostring(wt), tostring(wb),
        redis.call("ZRANGE", bought, 0, -1), items, dropped, redis.call("ZRANGE", follows, 0, -1)}
