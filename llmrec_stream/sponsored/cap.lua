-- Count sponsored impressions against a user's frequency cap, in the user's own profile hash.
--
-- KEYS[1] u:{uid}:p (the user's slot; erasure removes these fields with everything else)
-- ARGV[1] the current window's number (now // window length), ARGV[2..] campaigns just shown
-- A field "ad:<campaign>" holds "<impressions>:<window>". Fields of an earlier window are
-- deleted first, so a user holds one field per campaign seen in the current window at most.
local w = ARGV[1]
local fields = redis.call("HGETALL", KEYS[1])
for i = 1, #fields, 2 do
  local f, v = fields[i], fields[i + 1]
  if string.sub(f, 1, 3) == "ad:" and string.match(v, ":(%d+)$") ~= w then
    redis.call("HDEL", KEYS[1], f)
  end
end
for i = 2, #ARGV do
  local f = "ad:" .. ARGV[i]
  local v = redis.call("HGET", KEYS[1], f)
  local n = 0
  if v then n = tonumber(string.match(v, "^(%d+):")) end
  redis.call("HSET", KEYS[1], f, tostring(n + 1) .. ":" .. w)
end
return 1
