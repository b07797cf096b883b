-- Sluice counter store: the admissions and settlements of one or many
-- requests in one atomic script call.
-- See src/store/redis_counter.rs for the key layout and the contract, and
-- src/store/counter_batch.rs for how calls are batched.
--
-- The arguments arrive as one MessagePack array of strings in ARGV[1]
-- (one value to send and parse instead of five per item); below, ARGV is
-- that array, read exactly as Redis's own ARGV would be.
local ARGV = cmsgpack.unpack(ARGV[1])
--
-- Items: five ARGV values each (kind, p1, p2, p3, p4), one KEYS entry each.
--   admit  'W' fixed window    limit, window_ms, cost
--          'S' sliding window  limit, window_ms, cost
--          'B' token bucket    rate_per_sec, burst, cost
--          'C' concurrency     limit, lease_ms, lease_id
--          'T' token budget    limit, window_ms (0 = calendar month), need, want
--          'U' money budget    the same, in micro-USD (its grant is apart from tokens')
--   settle 'R' release lease   lease_id
--          'K' token delta     window_ms, window_start_ms, delta (also a
--                              fixed window's count: the same hash)
--          'A' log admissions  window_ms, count (a sliding window's, at now)
--          'L' spend ledger    entry, micros, ttl_ms (KEYS[i] is the day's hash)
--
-- ARGV[1] is the mode, 'batch' (the only one):
--   'batch'   ARGV[2] = s settlement items, ARGV[3] = their group's
--             sequence number (0 when s = 0; KEYS[1] then holds the last
--             group the instance applied, so that a retried group is never
--             applied twice), then the s settlement items, then per request
--             its check count c followed by its c items. KEYS: the sequence
--             key (when s > 0), the settlement keys, then every request's
--             check keys in order. Settlements apply first; requests are
--             admitted one after another, each against the state the ones
--             before it left. Returns {applied (-1: already applied), then
--             per request: admitted, then per check: passed, remaining,
--             retry_after_ms, reset_ms, granted, window_start_ms} (the
--             limit is the caller's own).
--
-- One admission evaluates every check on its own against the state before
-- it and commits all of them or none (see store.rs in sluice-filters for the
-- contract; LocalCounterStore implements the same formulas).
-- Time is the Redis server's (TIME), shared by every gateway instance.
-- Numbers are Lua doubles: the gateway clamps its inputs so that every value
-- stays an exact integer (< 2^53). Numbers handed to Redis go through
-- string.format('%d') because tostring() would print 14 significant digits.

if redis.replicate_commands then
  redis.replicate_commands()
end

local floor = math.floor
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)

-- The window of a token budget holding `at`: start and length in ms;
-- window 0 is the calendar month (UTC), as budget_window in store.rs.
local function budget_window(at, window)
  if window ~= 0 then
    return at - at % window, window
  end
  local day = 86400000
  local days = floor(at / day)
  local z = days + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then
    y = y + 1
  end
  local len = 31
  if m == 4 or m == 6 or m == 9 or m == 11 then
    len = 30
  elseif m == 2 then
    if (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 then
      len = 29
    else
      len = 28
    end
  end
  return (days - (d - 1)) * day, len * day
end

local function s(x)
  return string.format('%d', x)
end

local function ceil_div(a, b)
  return floor((a + b - 1) / b)
end

local function clamp0(x)
  if x < 0 then
    return 0
  end
  return floor(x)
end

-- k-th (1-based) smallest score of the zset members scored above `above`.
local function kth_score(key, above, k)
  local r = redis.call('ZRANGEBYSCORE', key, '(' .. s(above), '+inf', 'WITHSCORES', 'LIMIT', s(k - 1), '1')
  if r[2] then
    return tonumber(r[2])
  end
  return nil
end

-- The largest score of a zset (nil when empty).
local function max_score(key)
  local r = redis.call('ZRANGE', key, '-1', '-1', 'WITHSCORES')
  if r[2] then
    return tonumber(r[2])
  end
  return nil
end

-- Used count of an aligned window stored as a hash {s = window start, n = count}.
local function window_used(key, ws)
  local h = redis.call('HMGET', key, 's', 'n')
  if h[1] and tonumber(h[1]) == ws and h[2] then
    return tonumber(h[2])
  end
  return 0
end

-- Applies the settlement items KEYS[k0 + i], ARGV[a0 + (i-1)*5 ..] for
-- i = 1..n; returns how many applied.
local function settle(k0, a0, n)
  local applied = 0
  for i = 1, n do
    local b = a0 + (i - 1) * 5
    local kind = ARGV[b]
    local key = KEYS[k0 + i]
    if kind == 'R' then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', s(now))
      applied = applied + redis.call('ZREM', key, ARGV[b + 1])
    elseif kind == 'K' then
      local window = tonumber(ARGV[b + 1])
      local ws = tonumber(ARGV[b + 2])
      local delta = tonumber(ARGV[b + 3])
      -- Only the current window is adjusted; an expired one is left alone.
      local current, len = budget_window(now, window)
      window = len
      if ws == current then
        local used = window_used(key, ws) + delta
        if used < 0 then
          used = 0
        end
        redis.call('HSET', key, 's', s(ws), 'n', s(used))
        redis.call('PEXPIRE', key, s(ws + window - now))
        applied = applied + 1
      end
    elseif kind == 'A' then
      -- Admissions made elsewhere (a stand-in), counted now: members as
      -- an admission's, so they stay unique.
      local window = tonumber(ARGV[b + 1])
      local count = tonumber(ARGV[b + 2])
      redis.call('ZREMRANGEBYSCORE', key, '-inf', s(now - window))
      local seq = redis.call('ZCOUNT', key, s(now), s(now))
      for j = 0, count - 1 do
        redis.call('ZADD', key, s(now), s(now) .. '-' .. s(seq + j))
      end
      redis.call('PEXPIRE', key, s(window))
      applied = applied + 1
    elseif kind == 'L' then
      redis.call('HINCRBY', key, ARGV[b + 1], ARGV[b + 2])
      redis.call('PEXPIRE', key, ARGV[b + 3])
      applied = applied + 1
    end
  end
  return applied
end

-- Milli-tokens in a bucket now (full when unknown or expired).
local function bucket_level(key, rate, cap)
  local h = redis.call('HMGET', key, 't', 'ts')
  if h[1] and h[2] then
    local elapsed = now - tonumber(h[2])
    if elapsed < 0 then
      elapsed = 0
    end
    local tokens = tonumber(h[1]) + elapsed * rate
    if tokens > cap then
      tokens = cap
    end
    return tokens
  end
  return cap
end

-- Admits one request: its checks are KEYS[k0 + i], ARGV[a0 + (i-1)*5 ..]
-- for i = 1..n. Appends admitted, then per check passed, remaining, retry,
-- reset, granted, window start to `out`.
local function admit(k0, a0, n, out)
  -- admit, phase 0: parse every check.
  local cs = {}
  for i = 1, n do
    local b = a0 + (i - 1) * 5
    local c = { kind = ARGV[b], key = KEYS[k0 + i], ws = 0 }
    local kind = c.kind
    if kind == 'W' or kind == 'S' then
      c.limit, c.window, c.cost = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
      if kind == 'W' then
        c.ws = now - now % c.window
      end
    elseif kind == 'B' then
      c.rate, c.limit, c.cost = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
      c.cap = c.limit * 1000
    elseif kind == 'C' then
      c.limit, c.lease, c.lease_id = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), ARGV[b + 3]
    elseif kind == 'T' or kind == 'U' then
      -- 'U' is a money budget (micro-USD): graded apart from token budgets.
      c.money = kind == 'U'
      c.kind = 'T'
      c.limit, c.window = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
      c.need, c.want = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
      c.ws, c.window = budget_window(now, c.window)
    else
      return error('sluice counter script: unknown check kind ' .. tostring(kind))
    end
    cs[i] = c
  end

  -- admit, phase 1: evaluate every check on its own against the state before
  -- the call (checks of one call sharing a key do not see each other; the
  -- plan never sends such calls).
  local all_passed = true
  -- The common grant of token budgets and, apart, of money budgets.
  local grants = {}
  for i = 1, n do
    local c = cs[i]
    local kind, key = c.kind, c.key
    if kind == 'W' then
      local used = window_used(key, c.ws)
      local total = used + c.cost
      c.passed = total <= c.limit
      c.left_now = c.limit - used
      c.left_after = c.limit - total
      c.reset = c.ws + c.window - now
      c.reset_after = c.reset
      c.retry = c.reset
    elseif kind == 'S' then
      local count = redis.call('ZCOUNT', key, '(' .. s(now - c.window), '+inf')
      local total = count + c.cost
      c.passed = total <= c.limit
      c.left_now = c.limit - count
      c.left_after = c.limit - total
      local newest = nil
      if count > 0 then
        newest = max_score(key)
      end
      c.reset = newest and (newest + c.window - now) or 0
      c.reset_after = c.window
      -- The oldest `count + cost - limit` admissions must leave the window.
      local k = total - c.limit
      local kth = nil
      if k >= 1 and k <= count then
        kth = kth_score(key, now - c.window, k)
      end
      c.retry = kth and (kth + c.window - now) or c.window
    elseif kind == 'B' then
      local tokens = bucket_level(key, c.rate, c.cap)
      local need = c.cost * 1000
      c.passed = tokens >= need
      c.left_now = floor(tokens / 1000)
      c.left_after = floor(math.max(0, tokens - need) / 1000)
      c.level_after = math.max(0, tokens - need)
      if c.rate > 0 then
        c.reset = ceil_div(c.cap - tokens, c.rate)
        c.reset_after = ceil_div(c.cap - tokens + need, c.rate)
        if need <= c.cap then
          c.retry = ceil_div(math.max(0, need - tokens), c.rate)
        else
          c.retry = 0
        end
      else
        c.reset, c.reset_after, c.retry = 0, 0, 0
      end
    elseif kind == 'C' then
      local count = redis.call('ZCOUNT', key, '(' .. s(now), '+inf')
      local total = count + 1
      c.passed = total <= c.limit
      c.left_now = c.limit - count
      c.left_after = c.limit - total
      local last = nil
      if count > 0 then
        last = max_score(key)
      end
      c.reset = last and (last - now) or 0
      if last and last > now + c.lease then
        c.reset_after = last - now
      else
        c.reset_after = c.lease
      end
      -- The earliest `count + 1 - limit` live leases must expire.
      local k = total - c.limit
      local kth = nil
      if k >= 1 and k <= count then
        kth = kth_score(key, now, k)
      end
      c.retry = kth and (kth - now) or c.lease
    else -- 'T'
      local avail = c.limit - window_used(key, c.ws)
      if avail < 0 then
        avail = 0
      end
      local offer = math.min(c.want, avail)
      c.passed = offer >= c.need
      c.left_now = avail
      c.reset = c.ws + c.window - now
      c.reset_after = c.reset
      c.retry = c.reset
      local g = grants[c.money]
      if g == nil or offer < g then
        grants[c.money] = offer
      end
    end
    if not c.passed then
      all_passed = false
    end
  end

  -- Every token budget grants the same amount, the minimum offer, which must
  -- still cover each budget's `need`; money budgets likewise among
  -- themselves.
  for i = 1, n do
    local c = cs[i]
    if c.kind == 'T' then
      c.grant = grants[c.money]
      if c.grant < c.need then
        c.passed = false
        all_passed = false
      end
      c.left_after = c.left_now - c.grant
    end
  end

  -- admit, phase 2: commit all checks, or none. Counts of checks sharing a
  -- key add up; a bucket keeps the level of the last such check.
  if all_passed then
    for i = 1, n do
      local c = cs[i]
      local key = c.key
      if c.kind == 'W' then
        redis.call('HSET', key, 's', s(c.ws), 'n', s(window_used(key, c.ws) + c.cost))
        redis.call('PEXPIRE', key, s(c.ws + c.window - now))
      elseif c.kind == 'S' then
        redis.call('ZREMRANGEBYSCORE', key, '-inf', s(now - c.window))
        local seq = redis.call('ZCOUNT', key, s(now), s(now))
        for j = 0, c.cost - 1 do
          redis.call('ZADD', key, s(now), s(now) .. '-' .. s(seq + j))
        end
        redis.call('PEXPIRE', key, s(c.window))
      elseif c.kind == 'B' then
        local left = c.level_after
        redis.call('HSET', key, 't', s(left), 'ts', s(now))
        -- Expire when full again (a bucket that never refills: after a day).
        local ttl = 86400000
        if c.rate > 0 then
          ttl = ceil_div(c.cap - left, c.rate)
        end
        redis.call('PEXPIRE', key, s(math.max(1, ttl)))
      elseif c.kind == 'C' then
        redis.call('ZREMRANGEBYSCORE', key, '-inf', s(now))
        redis.call('ZADD', key, s(now + c.lease), c.lease_id)
        local last = max_score(key) or (now + c.lease)
        redis.call('PEXPIRE', key, s(math.max(1, last - now)))
      else -- 'T'
        redis.call('HSET', key, 's', s(c.ws), 'n', s(window_used(key, c.ws) + c.grant))
        redis.call('PEXPIRE', key, s(c.ws + c.window - now))
      end
    end
  end

  out[#out + 1] = all_passed and 1 or 0
  for i = 1, n do
    local c = cs[i]
    local remaining, reset, retry, granted = c.left_now, c.reset, 0, 0
    if all_passed then
      remaining, reset = c.left_after, c.reset_after
      if c.kind == 'T' then
        granted = c.grant
      end
    end
    if not c.passed then
      retry = c.retry
    end
    local o = #out
    out[o + 1] = c.passed and 1 or 0
    out[o + 2] = clamp0(remaining)
    out[o + 3] = clamp0(retry)
    out[o + 4] = clamp0(reset)
    out[o + 5] = clamp0(granted)
    out[o + 6] = clamp0(c.ws)
  end
end

local mode = ARGV[1]
if mode == 'batch' then
  local s_n = tonumber(ARGV[2])
  local k, a = 0, 4
  local out = { 0 }
  local seq = tonumber(ARGV[3])
  if seq > 0 then
    -- KEYS[1]: the last settlement group this instance applied. Groups go
    -- in increasing order, one at a time: a retried group already applied
    -- is skipped.
    k = 1
    local last = tonumber(redis.call('GET', KEYS[1]) or '0')
    if seq > last then
      redis.call('SET', KEYS[1], s(seq), 'PX', '86400000')
      out[1] = settle(k, a, s_n)
    else
      out[1] = -1
    end
  end
  k, a = k + s_n, a + s_n * 5
  while a <= #ARGV do
    local c = tonumber(ARGV[a])
    admit(k, a + 1, c, out)
    k, a = k + c, a + 1 + c * 5
  end
  return out
end
return redis.error_reply('sluice counter script: unknown mode ' .. tostring(mode))
