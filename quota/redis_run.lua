-- redis_run.lua - the quota store's one script (see quota/store_redis.c,
-- which sends it with SCRIPT LOAD and runs it with EVALSHA): a run of
-- admissions, commits and releases, atomic on the server.
--
-- Embedded at build time: Makefile.am turns this file into the C string
-- REDIS_RUN_LUA (quota/redis_run.h in the build directory), dropping the
-- lines that are only comments.  store_redis.c puts in front of it the
-- constants it shares with the C code: BIN_TAG, BIN_HDR and BIN_HFMT (a
-- counter's binary value, store_redis_impl.h), OP_BYTES (the bytes of
-- one op in OPS), SWEEP_MAX (lapsed reservations refunded per script)
-- and SENTINEL (the member of outpost:rexp that never lapses).
--
-- Errors: a malformed counter reads as none; a reservation token in use
-- fails its call only; anything else raises a script error, which fails
-- the run (Redis does not roll back what the run did before it).
--
-- Helpers: the clock, exact integer division, the
-- counter encoding, the algorithms (below), saving a counter with its
-- TTL, refunding a reservation (settle) and the sweep of lapsed ones.  A
-- state is {t0 = ..., n = {...}} with n[0] of C at n[1], and no zero
-- entries (a missing bucket is 0).
local P = ARGV[1]
local OPF = '<ddddddddddd'
local function clock(a)
  if a ~= '' then return tonumber(a) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
local function fmt(x) return string.format('%d', x) end
local DF = {}
local function dfmt(k)
  local f = DF[k]
  if not f then f = '<' .. string.rep('d', k); DF[k] = f end
  return f
end
local function decode(v)
  if not v then return {t0 = 0, n = {}} end
  if #v < BIN_HDR or string.byte(v) ~= BIN_TAG then
    return {t0 = 0, n = {}}
  end
  local t0, first, k = struct.unpack(BIN_HFMT, v, 2)
  if first + k > 61 or #v ~= BIN_HDR + 8 * k then
    return {t0 = 0, n = {}}
  end
  if k == 0 then return {t0 = t0, n = {}} end
  local a = {struct.unpack(dfmt(k), v, BIN_HDR + 1)}
  a[k + 1] = nil
  if first == 0 then
    for j = 1, k do if a[j] == 0 then a[j] = nil end end
    return {t0 = t0, n = a}
  end
  local n = {}
  for j = 1, k do
    local x = a[j]
    if x ~= 0 then n[first + j] = x end
  end
  return {t0 = t0, n = n}
end
local TAG = string.char(BIN_TAG)
local function dense(n) return #n >= 8 end
local function encode(st)
  local n, lo, hi, c = st.n, 62, 0, 0
  if dense(n) then
    for i = 1, 61 do
      if n[i] then
        if lo == 62 then lo = i end
        hi, c = i, c + 1
      end
    end
  else
    for i in pairs(n) do
      if i < lo then lo = i end
      if i > hi then hi = i end
      c = c + 1
    end
  end
  if hi == 0 then return TAG .. struct.pack(BIN_HFMT, st.t0, 0, 0) end
  local k = hi - lo + 1
  local h = TAG .. struct.pack(BIN_HFMT, st.t0, lo - 1, k)
  if c == k then return h .. struct.pack(dfmt(k), unpack(n, lo, hi)) end
  local a = {}
  for j = 1, k do a[j] = n[lo + j - 1] or 0 end
  return h .. struct.pack(dfmt(k), unpack(a))
end

-- The algorithms: a transcription of quota/algo.c, function by function
-- (n[j] there is st.n[j + 1] here).  algo.c computes a rate limit's TAT
-- in 128-bit units of 1/L ms; doubles cannot hold now * L, so here the
-- same quantities are taken relative to now ("ahead" = TAT - now in
-- 1/L ms, bounded by (burst + 1) * period), which gives the same
-- integers.  State tables are sparse (no zero buckets); window_check
-- advances the state in place (algo.c advances a copy), which changes
-- nothing since charge() advances it the same way and a refused state is
-- not written back.  A limit: {k = kind (0 window, 1 calendar, 2 rate),
-- p = period ms, B = buckets (1..60), w = bucket ms, l = the limit (-1:
-- unlimited), burst, ps, pe = calendar period start and end, month}.
local function mklim(k, p, b, l, burst, ps, pe, month)
  if b < 1 then b = 1 elseif b > 60 then b = 60 end
  local w = idiv(p, b)
  if w < 1 then w = 1 end
  return {k = k, p = p, B = b, w = w, l = l, burst = burst, ps = ps,
    pe = pe, month = month}
end
local function trunc_div(a, b)
  if a >= 0 then return idiv(a, b) end
  return -idiv(-a, b)
end
local function window_advance(lim, st, now)
  local B, w = lim.B, lim.w
  local cb = idiv(now, w) * w
  local empty = true
  for i in pairs(st.n) do
    if i <= B + 1 then empty = false; break end
  end
  if empty then st.t0 = cb - B * w; return end
  local cur = st.t0 + B * w
  if cb <= cur then return end
  local shift = idiv(cb - cur, w)
  local n = {}
  if shift <= B then
    for i, x in pairs(st.n) do
      if i > B + 1 then n[i] = x
      elseif i > shift then n[i - shift] = x end
    end
  end
  st.n = n
  st.t0 = cb - B * w
end
local function window_check(lim, st, amount, eff, now)
  window_advance(lim, st, now)
  local n, used = st.n, 0
  if dense(n) then
    for i = 1, lim.B + 1 do used = used + (n[i] or 0) end
  else
    for i, x in pairs(n) do
      if i <= lim.B + 1 then used = used + x end
    end
  end
  if eff < 0 or (amount <= eff and used <= eff - amount) then
    return 1, used, 0
  end
  if amount > eff then return 0, used, 0 end
  local left = used
  for k = 0, lim.B do
    left = left - (st.n[k + 1] or 0)
    if left <= eff - amount then
      local at = st.t0 + (k + lim.B + 1) * lim.w
      if at > now then return 0, used, at - now end
      return 0, used, 0
    end
  end
  return 0, used, 0
end
local function calendar_check(lim, st, amount, eff, now)
  local used = 0
  if st.t0 == lim.ps then used = st.n[1] or 0 end
  if eff < 0 or (amount <= eff and used <= eff - amount) then
    return 1, used, 0
  end
  if amount <= eff and lim.pe > now then return 0, used, lim.pe - now end
  return 0, used, 0
end
local function rate_ahead(st, L, now)
  if st.t0 < now then return 0 end
  local r = st.n[1] or 0
  return (st.t0 - now) * L + r - idiv(r, L) * L
end
local function rate_check(lim, st, amount, eff, now)
  local p = lim.p
  if eff < 0 or eff == 0 or p == 0 then
    if eff == 0 then return 0, 0, 0 end
    return 1, 0, 0
  end
  local ahead = rate_ahead(st, eff, now)
  local used = 0
  if ahead > 0 then used = idiv(ahead + p - 1, p) end
  local need = ahead + amount * p
  local room = (lim.burst + 1) * p
  if need <= room then return 1, used, 0 end
  if amount * p > room then return 0, used, 0 end
  return 0, used, idiv(need - room + eff - 1, eff)
end
local function check(lim, st, amount, eff, now)
  if lim.k == 0 then return window_check(lim, st, amount, eff, now) end
  if lim.k == 1 then return calendar_check(lim, st, amount, eff, now) end
  return rate_check(lim, st, amount, eff, now)
end
local function rate_store(st, base, x, L)
  local d = idiv(x, L)
  st.t0 = base + d
  st.n = {}
  if x ~= d * L then st.n[1] = x - d * L end
end
local function add(st, i, x)
  x = (st.n[i] or 0) + x
  if x ~= 0 then st.n[i] = x else st.n[i] = nil end
end
local function take(st, i, amount)
  local x = st.n[i] or 0
  if amount < x then x = amount end
  add(st, i, -x)
end
local function charge(lim, st, amount, now)
  if lim.k == 0 then
    window_advance(lim, st, now)
    add(st, lim.B + 1, amount)
  elseif lim.k == 1 then
    if st.t0 ~= lim.ps then st.n = {}; st.t0 = lim.ps end
    add(st, 1, amount)
  elseif lim.l > 0 then
    rate_store(st, now, rate_ahead(st, lim.l, now) + amount * lim.p,
      lim.l)
  end
end
local function refund(lim, st, amount, charged, now)
  if lim.k == 0 then
    window_advance(lim, st, now)
    local idx = trunc_div(idiv(charged, lim.w) * lim.w - st.t0, lim.w)
    if idx < 0 then return end
    if idx > lim.B then idx = lim.B end
    take(st, idx + 1, amount)
  elseif lim.k == 1 then
    if st.t0 ~= lim.ps or charged < lim.ps or charged >= lim.pe then
      return
    end
    take(st, 1, amount)
  elseif lim.l > 0 then
    local ahead = rate_ahead(st, lim.l, now)
    local a2 = ahead - amount * lim.p
    if a2 < 0 then a2 = 0 end
    if st.t0 >= now and a2 < ahead then rate_store(st, now, a2, lim.l) end
  end
end
local function expires(lim, st)
  if lim.k == 0 then
    local n, hi = st.n, 0
    for i = lim.B + 1, 1, -1 do
      if n[i] then hi = i; break end
    end
    if hi == 0 then return 0 end
    return st.t0 + (hi + lim.B) * lim.w
  elseif lim.k == 1 then
    if (st.n[1] or 0) == 0 then return 0 end
    if st.t0 == lim.ps then return lim.pe end
    if st.t0 < lim.ps then return lim.ps end
    if lim.month == 1 then return st.t0 + 32 * 86400000 end
    return st.t0 + 2 * 86400000
  end
  if (st.n[1] or 0) ~= 0 then return st.t0 + 1 end
  return st.t0
end
local function save(key, lim, st, now)
  local ttl = expires(lim, st) - now
  if ttl <= 0 then
    redis.call('DEL', key)
    return 0
  end
  redis.call('SET', key, encode(st), 'PX', fmt(ttl))
  return ttl
end
local function refund_rec(v, now)
  local charged, at = struct.unpack('<d', v)
  while at + 2 + OP_BYTES <= #v + 1 do
    local kl = struct.unpack('<H', v, at)
    if at + 2 + kl + OP_BYTES > #v + 1 then break end
    local key = string.sub(v, at + 2, at + 1 + kl)
    local k, p, b, l, burst, ps, pe, month, _, amount =
      struct.unpack(OPF, v, at + 2 + kl)
    at = at + 2 + kl + OP_BYTES
    local cur = redis.call('GET', key)
    if cur then
      local lim = mklim(k, p, b, l, burst, ps, pe, month)
      local st = decode(cur)
      refund(lim, st, amount, charged, now)
      save(key, lim, st, now)
    end
  end
end
local function settle(tok, now, refund_it)
  if refund_it then
    local v = redis.call('HGET', P .. 'res', tok)
    if v then
      refund_rec(v, now)
      redis.call('HDEL', P .. 'res', tok)
    end
  else
    redis.call('HDEL', P .. 'res', tok)
  end
  redis.call('ZREM', P .. 'rexp', tok)
end
local function sweep(now)
  local due = redis.call('ZRANGEBYSCORE', P .. 'rexp', '-inf', fmt(now),
    'LIMIT', 0, SWEEP_MAX)
  for _, tok in ipairs(due) do settle(tok, now, true) end
  return #due
end

-- run: a run of calls, each made as if alone, in order, all in one
-- atomic script.  KEYS = the counters of the admissions, in order;
-- ARGV = prefix, now ('' = server clock), then for each call:
--   admit:   'A', token ('0' = none), OPS
--   commit:  'C', token, OPS (what was reserved: admitted again, as
--            'A' with token '0', when the reservation does not stand)
--   release: 'R', token
-- OPS is binary, little-endian doubles (struct.unpack): the reservation
-- lifetime in ms, then NARG_OP for each op: kind, period ms, buckets,
-- limit (-1 unlimited), burst, calendar period start, end, month (0/1),
-- effective limit (-1 unlimited), amount, warn only (0/1); the number of
-- ops is (#OPS - 8) / OP_BYTES, each taking the next key of KEYS.
-- Returns {now, then for each call: admit, commit: admitted (0/1) and
-- admit, used, retry ms for each op (a commit whose reservation stood:
-- 1, then 1, 0, 0 for each op), or -1 and a message (token in use);
-- release: 1 if the token was known, else 0}.
-- A reservation is a field TOKEN of outpost:res: the time of the charge
-- (a double), then for each op the length of its counter key (2 bytes),
-- the key and the op's NARG_OP numbers as OPS carries them.
local now = clock(ARGV[2])
local swept = sweep(now) < SWEEP_MAX
local rexp = P .. 'rexp'
local out = {now}
local ki, i, nargv = 0, 3, #ARGV
local lims, sts, amts, limc = {}, {}, {}, {}
local skiplist, lastttl, lapse = false
local function admit(tok, ops, n)
  local rttl = struct.unpack('<d', ops)
  local inuse = false
  if tok ~= '0' then
    if n == 0 then inuse = redis.call('ZSCORE', rexp, tok) ~= false
    else
      if not skiplist then
        redis.call('ZADD', rexp, 'NX', '+inf', SENTINEL)
        skiplist = true
      end
      if rttl ~= lastttl then lastttl, lapse = rttl, fmt(now + rttl) end
      inuse = redis.call('ZADD', rexp, 'NX', lapse, tok) == 0
    end
  end
  if inuse then
    out[#out + 1] = -1
    out[#out + 1] = 'reservation token ' .. tok .. ' in use'
    return
  end
  local head, ok = #out + 1, true
  out[head] = 0
  for j = 1, n do
    local k, p, b, l, burst, ps, pe, month, eff, amount, warn =
      struct.unpack(OPF, ops, j * OP_BYTES - OP_BYTES + 9)
    local lk = string.sub(ops, j * OP_BYTES - OP_BYTES + 9,
      j * OP_BYTES - 16)
    local lim = limc[lk]
    if not lim then
      lim = mklim(k, p, b, l, burst, ps, pe, month)
      limc[lk] = lim
    end
    local st = decode(redis.call('GET', KEYS[ki + j]))
    local a, used, retry = check(lim, st, amount, eff, now)
    if a == 0 and warn ~= 1 then ok = false end
    out[#out + 1] = a
    out[#out + 1] = used
    out[#out + 1] = retry
    lims[j], sts[j], amts[j] = lim, st, amount
  end
  if ok then
    out[head] = 1
    for j = 1, n do
      charge(lims[j], sts[j], amts[j], now)
      save(KEYS[ki + j], lims[j], sts[j], now)
    end
    if tok ~= '0' and n > 0 then
      local r = {struct.pack('<d', now)}
      for j = 1, n do
        local key = KEYS[ki + j]
        r[j + 1] = struct.pack('<H', #key) .. key ..
          string.sub(ops, j * OP_BYTES - OP_BYTES + 9, j * OP_BYTES + 8)
      end
      redis.call('HSET', P .. 'res', tok, table.concat(r))
    end
  elseif tok ~= '0' and n > 0 then
    redis.call('ZREM', rexp, tok)
  end
end
local function stands(tok)
  if swept and redis.call('HDEL', P .. 'res', tok) == 1 then
    redis.call('ZREM', rexp, tok)
    return true
  end
  local sc = redis.call('ZSCORE', rexp, tok)
  if not sc then return false end
  local lapsed = tonumber(sc) <= now
  settle(tok, now, lapsed)
  return not lapsed
end
while i <= nargv do
  local kind, tok = ARGV[i], ARGV[i + 1]
  if kind == 'R' then
    i = i + 2
    if redis.call('ZSCORE', rexp, tok) then
      settle(tok, now, true)
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
  else
    local ops = ARGV[i + 2]
    i = i + 3
    local n = (#ops - 8) / OP_BYTES
    if kind == 'C' and stands(tok) then
      out[#out + 1] = 1
      for j = 1, n do
        out[#out + 1] = 1
        out[#out + 1] = 0
        out[#out + 1] = 0
      end
    elseif kind == 'C' then admit('0', ops, n)
    else admit(tok, ops, n) end
    ki = ki + n
  end
end
return out
