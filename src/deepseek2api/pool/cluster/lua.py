"""The coordinator's Lua scripts: every shared state change is one of these, run atomically by Redis.

Each script is a shared prelude (key names, Redis's clock, housekeeping, grant and dispatch) plus a
short body. Scripts read the time with `TIME` (never a client clock: replicas' clocks disagree) and
answer with one JSON document so the Python side decodes every reply the same way. KEYS[1] is the
namespace's `epoch` key; every other key is derived from it and shares its hash tag, so the scripts
also run on Redis Cluster. Numbers that must stay exact (fences) travel as decimal strings.
"""

from __future__ import annotations

PRELUDE = r"""
local P = string.sub(KEYS[1], 1, -6)
local function k(name) return P .. name end
local tnow = redis.call('TIME')
local NOW = tonumber(tnow[1]) * 1000 + math.floor(tonumber(tnow[2]) / 1000)
local USEC = tonumber(tnow[2])

local C = redis.call('HMGET', k('cfg'), 'cap', 'ttl', 'grace', 'qsize', 'pq_failures', 'pq_ms', 'strategy', 'hold0',
                     'hb')
local CAP = tonumber(C[1]) or 1
local TTL = tonumber(C[2]) or 15000
local GRACE = tonumber(C[3]) or 5000
local QSIZE = tonumber(C[4]) or 64
local PQ_FAILURES = tonumber(C[5]) or 3
local PQ_MS = tonumber(C[6]) or 60000
local STRATEGY = C[7] or 'least_used'
local HOLD0 = tonumber(C[8]) or 5000
local HB = tonumber(C[9]) or 15000

local TIMED = {cooling = true, muted = true}
local DEAD = {banned = true, bad_credentials = true, needs_token = true, disabled = true}

local function fstr(n) return string.format('%d', n) end

local function decode_set(json)
  local out = {}
  if json and json ~= '' then
    for _, v in ipairs(cjson.decode(json)) do out[v] = true end
  end
  return out
end

-- status as it stands now: a timed state whose deadline has passed is ready again
local function effective(acct)
  local a = redis.call('HMGET', k('A:' .. acct), 'status', 'until')
  local st = a[1]
  if not st then return nil, nil end
  local u = tonumber(a[2])
  if TIMED[st] and u and u <= NOW then return 'ready', nil end
  return st, u
end

-- keep `ready` (usable accounts with a free slot, scored by last grant) true for one account
local function refresh(acct)
  local st = effective(acct)
  if st == 'ready' and redis.call('ZCARD', k('L:' .. acct)) < CAP then
    local lru = tonumber(redis.call('HGET', k('A:' .. acct), 'lru')) or 0
    redis.call('ZADD', k('ready'), lru, acct)
  else
    redis.call('ZREM', k('ready'), acct)
  end
end

local function proxy_unuse(pid)
  if pid and pid ~= '' and redis.call('ZSCORE', k('P'), pid) then
    local n = tonumber(redis.call('ZINCRBY', k('P'), -1, pid))
    if n < 0 then redis.call('ZADD', k('P'), 0, pid) end
  end
end

local function quarantined(pid)
  local u = tonumber(redis.call('ZSCORE', k('PQ'), pid))
  return u ~= nil and u > NOW
end

-- least-used (fewest live leases) non-quarantined exit, or the sticky one; '' = none from the pool
local function pick_proxy(acct)
  if redis.call('HGET', k('A:' .. acct), 'fixed') == '1' then return '' end
  local all = redis.call('ZRANGE', k('P'), 0, -1, 'WITHSCORES')
  if #all == 0 then return '' end
  local avail = {}
  for i = 1, #all, 2 do
    if not quarantined(all[i]) then avail[#avail + 1] = {all[i], tonumber(all[i + 1])} end
  end
  local chosen = nil
  if STRATEGY == 'sticky' then
    local sid = redis.call('HGET', k('S'), acct)
    if not sid or not redis.call('ZSCORE', k('P'), sid) then
      local best, bestn = nil, nil
      local pool = avail
      if #pool == 0 then
        pool = {}
        for i = 1, #all, 2 do pool[#pool + 1] = {all[i], 0} end
      end
      for _, e in ipairs(pool) do
        local n = tonumber(redis.call('HGET', k('SA'), e[1])) or 0
        if bestn == nil or n < bestn then best, bestn = e[1], n end
      end
      sid = best
      redis.call('HSET', k('S'), acct, sid)
      redis.call('HINCRBY', k('SA'), sid, 1)
    end
    if not quarantined(sid) then chosen = sid end
  end
  if not chosen then
    if #avail == 0 then
      -- every exit quarantined: the one quarantined first comes back first
      local bests = nil
      for i = 1, #all, 2 do
        local s = tonumber(redis.call('HGET', k('PS'), all[i])) or 0
        if bests == nil or s < bests then chosen, bests = all[i], s end
      end
    else
      local low = avail[1][2]
      local ties = {}
      for _, e in ipairs(avail) do if e[2] == low then ties[#ties + 1] = e[1] end end
      chosen = ties[(USEC % #ties) + 1]
    end
  end
  redis.call('ZINCRBY', k('P'), 1, chosen)
  redis.call('HINCRBY', k('PK'), chosen, 1)
  return chosen
end

local function proxy_report(pid, result)
  if not pid or pid == '' or not redis.call('ZSCORE', k('P'), pid) then return end
  if result == 'ok' then
    redis.call('HSET', k('PF'), pid, 0)
    redis.call('ZREM', k('PQ'), pid)
  elseif result == 'fail' then
    local n = tonumber(redis.call('HINCRBY', k('PF'), pid, 1))
    if n >= PQ_FAILURES and not quarantined(pid) then
      redis.call('ZADD', k('PQ'), NOW + PQ_MS, pid)
      redis.call('HSET', k('PS'), pid, NOW)
    end
  end
end

-- merge a health report into the shared state (a cool-down never overrides a ban, never shortens a mute)
local function set_health(acct, status, reason, untilms, force)
  local key = k('A:' .. acct)
  if redis.call('EXISTS', key) == 0 then return 'unknown' end
  local cur, cu = effective(acct)
  if not force then
    if cur == 'disabled' then return 'ignored' end
    if TIMED[status] then
      if DEAD[cur] then return 'ignored' end
      if cur == 'muted' and status == 'cooling' and cu and untilms and cu >= untilms then return 'ignored' end
      if cur == status and cu and untilms and cu > untilms then untilms = cu end
    end
  end
  if TIMED[status] then
    redis.call('HSET', key, 'status', status, 'reason', reason, 'until', untilms, 'updated', NOW)
    redis.call('ZADD', k('cool'), untilms, acct)
  else
    redis.call('HSET', key, 'status', status, 'reason', reason, 'updated', NOW)
    redis.call('HDEL', key, 'until')
    redis.call('ZREM', k('cool'), acct)
  end
  refresh(acct)
  return 'applied'
end

local function split_member(m)
  local i = string.find(m, ':', 1, true)
  return string.sub(m, i + 1), string.sub(m, 1, i - 1)
end

-- remove one lease; an expiry (holder gone silent) cools the account briefly so a cut-off holder
-- has time to notice and stop before anyone else streams on it
local function drop_lease(m, why)
  local acct, fence = split_member(m)
  redis.call('ZREM', k('exp'), m)
  redis.call('ZREM', k('L:' .. acct), fence)
  local info = redis.call('HGET', k('LI'), m)
  redis.call('HDEL', k('LI'), m)
  local d = nil
  if info then
    d = cjson.decode(info)
    proxy_unuse(d.p)
    if d.q and d.q ~= '' then redis.call('DEL', k('G:' .. d.q)) end
  end
  if why == 'expired' then
    redis.call('HINCRBY', k('stats'), 'reaped', 1)
    local st = effective(acct)
    if st == 'ready' and GRACE > 0 then
      set_health(acct, 'cooling', 'lease expired: its holder stopped renewing', NOW + GRACE, false)
    end
  end
  refresh(acct)
  return d
end

local function lease_reply(m, rid)
  local acct, fence = split_member(m)
  local exp = tonumber(redis.call('ZSCORE', k('exp'), m))
  local info = cjson.decode(redis.call('HGET', k('LI'), m))
  local tok = redis.call('HMGET', k('A:' .. acct), 'token', 'tver')
  return {s = 'granted', account = acct, fence = fence, proxy = info.p, ttl = exp - NOW, now = NOW,
          token = tok[1] or '', tver = tonumber(tok[2]) or 0, rid = rid}
end

local function grant(acct, rid, replica)
  local fk = k('F:' .. acct)
  if redis.call('EXISTS', fk) == 0 then
    -- fences start from the server clock so they keep rising across a Redis restart
    redis.call('SET', fk, fstr(math.floor(NOW / 1000) * 1000))
  end
  local fence = fstr(redis.call('INCR', fk))
  local m = fence .. ':' .. acct
  local exp = NOW + TTL
  redis.call('ZADD', k('L:' .. acct), exp, fence)
  redis.call('ZADD', k('exp'), exp, m)
  local seq = redis.call('INCR', k('seq'))
  redis.call('HSET', k('A:' .. acct), 'lru', seq)
  redis.call('HINCRBY', k('A:' .. acct), 'requests', 1)
  local pid = pick_proxy(acct)
  redis.call('HSET', k('LI'), m, cjson.encode({r = replica, p = pid, q = rid, g = NOW}))
  redis.call('SET', k('G:' .. rid), m, 'PX', TTL)
  refresh(acct)
  return lease_reply(m, rid)
end

-- the first usable account with a free slot, least recently granted first, not in `excl`
local function choose(excl)
  local n = 0
  for _ in pairs(excl) do n = n + 1 end
  local ids = redis.call('ZRANGE', k('ready'), 0, n)
  for _, id in ipairs(ids) do
    if not excl[id] then return id end
  end
  return nil
end

local function drop_ticket(rid)
  redis.call('ZREM', k('Q'), rid)
  redis.call('ZREM', k('QD'), rid)
  redis.call('DEL', k('T:' .. rid))
end

-- hand free slots to waiting tickets in FIFO order (bounded scan); tell each owner replica
local function dispatch()
  if redis.call('ZCARD', k('ready')) == 0 then return end
  local tickets = redis.call('ZRANGE', k('Q'), 0, 63)
  for _, rid in ipairs(tickets) do
    if redis.call('ZCARD', k('ready')) == 0 then return end
    local t = redis.call('HMGET', k('T:' .. rid), 'replica', 'exclude')
    local beat = t[1] and tonumber(redis.call('ZSCORE', k('H'), t[1]))
    if not t[1] or not beat or NOW - beat > HB then
      -- no ticket, or its replica stopped beating: nobody would claim the slot
      drop_ticket(rid)
    else
      local acct = choose(decode_set(t[2]))
      if acct then
        drop_ticket(rid)
        grant(acct, rid, t[1])
        redis.call('PUBLISH', k('W:' .. t[1]), rid)
      end
    end
  end
end

-- bounded housekeeping done by every state-changing script
local function housekeeping()
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', k('exp'), '-inf', NOW, 'LIMIT', 0, 64)) do
    drop_lease(m, 'expired')
  end
  for _, acct in ipairs(redis.call('ZRANGEBYSCORE', k('cool'), '-inf', NOW, 'LIMIT', 0, 64)) do
    redis.call('ZREM', k('cool'), acct)
    local a = redis.call('HGET', k('A:' .. acct), 'status')
    if a and TIMED[a] then
      redis.call('HSET', k('A:' .. acct), 'status', 'ready', 'reason', '', 'updated', NOW)
      redis.call('HDEL', k('A:' .. acct), 'until')
    end
    refresh(acct)
  end
  redis.call('ZREMRANGEBYSCORE', k('PQ'), '-inf', NOW)
  redis.call('ZREMRANGEBYSCORE', k('H'), '-inf', NOW - 3600000)  -- forget replicas gone for an hour
  for _, rid in ipairs(redis.call('ZRANGEBYSCORE', k('QD'), '-inf', NOW, 'LIMIT', 0, 64)) do
    drop_ticket(rid)
  end
end

-- why waiting until `deadline` cannot help (nil when it can)
local function verdict(excl, deadline)
  local soonest = nil
  local tried, usable, total = 0, 0, 0
  for _, acct in ipairs(redis.call('SMEMBERS', k('accounts'))) do
    total = total + 1
    local st, u = effective(acct)
    if excl[acct] then
      if st == 'ready' then tried = tried + 1 end
    elseif st == 'ready' then
      usable = usable + 1
    elseif TIMED[st] and u then
      if u <= deadline then usable = usable + 1 end
      if soonest == nil or u < soonest then soonest = u end
    end
  end
  if usable > 0 then return nil, usable end
  if soonest then return {s = 'exhausted', reason = 'all_cooling', retry = soonest - NOW}, 0 end
  if total == 0 then return {s = 'exhausted', reason = 'none_usable', retry = 60000, detail = 'no accounts'}, 0 end
  if tried > 0 then return {s = 'exhausted', reason = 'none_usable', retry = 1000, detail = 'all tried'}, 0 end
  return {s = 'exhausted', reason = 'none_usable', retry = 60000, detail = 'none usable'}, 0
end

-- expected wait for a slot: typical hold time times the queue ahead, per usable slot
local function busy_retry(usable)
  local hold = tonumber(redis.call('HGET', k('stats'), 'hold_ms')) or HOLD0
  local ahead = redis.call('ZCARD', k('Q')) + 1
  local slots = math.max(1, usable * CAP)
  return math.floor(hold * math.ceil(ahead / slots))
end

local function next_wake()
  local w = nil
  local c = redis.call('ZRANGE', k('cool'), 0, 0, 'WITHSCORES')
  if c[2] then w = tonumber(c[2]) end
  local e = redis.call('ZRANGE', k('exp'), 0, 0, 'WITHSCORES')
  if e[2] and (w == nil or tonumber(e[2]) < w) then w = tonumber(e[2]) end
  if w then return math.max(0, w - NOW) end
  return -1
end

-- nil when this replica's view of the namespace is current; else what it must do first
local function epoch_problem(client_epoch)
  local e = redis.call('GET', KEYS[1])
  if not e or e ~= client_epoch then return cjson.encode({s = 'reseed'}) end
  return nil
end
"""

SEED = r"""
-- ARGV: candidate epoch, recovery window ms, cfg json, accounts json, proxies json, replica id
local created = false
local e = redis.call('GET', KEYS[1])
if not e then
  e = ARGV[1]
  redis.call('SET', KEYS[1], e)
  created = true
  if tonumber(ARGV[2]) > 0 then redis.call('SET', k('recovering'), e, 'PX', tonumber(ARGV[2])) end
end
local cfg = cjson.decode(ARGV[3])
for key, value in pairs(cfg) do redis.call('HSET', k('cfg'), key, value) end
CAP = tonumber(cfg.cap) or CAP
for _, a in ipairs(cjson.decode(ARGV[4])) do
  local key = k('A:' .. a.id)
  redis.call('SADD', k('accounts'), a.id)
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'status', 'ready', 'reason', '', 'cred', a.cred, 'lru', 0,
               'requests', 0, 'failures', 0, 'tver', 1, 'updated', NOW)
  elseif redis.call('HGET', key, 'cred') ~= a.cred then
    -- the configured login changed: what was learned with the old one is void
    redis.call('HSET', key, 'cred', a.cred, 'updated', NOW)
    redis.call('HDEL', key, 'token')
    redis.call('HINCRBY', key, 'tver', 1)
    local was = redis.call('HGET', key, 'status')
    if was == 'bad_credentials' or was == 'needs_token' then
      redis.call('HSET', key, 'status', 'ready', 'reason', '')
    end
  end
  redis.call('HSET', key, 'fixed', a.fixed and '1' or '0')
  if a.token and a.token ~= '' and not redis.call('HGET', key, 'token') then
    redis.call('HSET', key, 'token', a.token)
    redis.call('HINCRBY', key, 'tver', 1)
  end
  local st = redis.call('HGET', key, 'status')
  if not a.enabled then
    redis.call('HSET', key, 'status', 'disabled', 'reason', 'disabled in config')
    redis.call('HDEL', key, 'until')
    redis.call('ZREM', k('cool'), a.id)
  elseif st == 'disabled' and redis.call('HGET', key, 'reason') == 'disabled in config' then
    -- enabled in config again; a console disable (another reason) stays until the console enables it
    redis.call('HSET', key, 'status', 'ready', 'reason', '')
  elseif TIMED[st] then
    redis.call('ZADD', k('cool'), tonumber(redis.call('HGET', key, 'until')) or NOW, a.id)
  end
  refresh(a.id)
end
for _, pid in ipairs(cjson.decode(ARGV[5])) do
  redis.call('ZADD', k('P'), 'NX', 0, pid)
end
redis.call('ZADD', k('H'), NOW, ARGV[6])
return cjson.encode({s = 'seeded', epoch = e, created = created,
                     recovering = math.max(0, redis.call('PTTL', k('recovering')))})
"""

ACQUIRE = r"""
-- ARGV: epoch, replica, request id, exclude json, wait ms (0 = do not queue)
local bad = epoch_problem(ARGV[1])
if bad then return bad end
local replica, rid = ARGV[2], ARGV[3]
local wait = tonumber(ARGV[5])
local g = redis.call('GET', k('G:' .. rid))
if g and redis.call('HEXISTS', k('LI'), g) == 1 then return cjson.encode(lease_reply(g, rid)) end
if redis.call('EXISTS', k('T:' .. rid)) == 1 then return cjson.encode({s = 'waiting', wake = next_wake()}) end
local rec = redis.call('PTTL', k('recovering'))
if rec > 0 then return cjson.encode({s = 'recovering', retry = rec}) end
housekeeping()
dispatch()
local excl = decode_set(ARGV[4])
local acct = choose(excl)
if acct then return cjson.encode(grant(acct, rid, replica)) end
local v, usable = verdict(excl, NOW + wait)
if v then return cjson.encode(v) end
if wait <= 0 then
  return cjson.encode({s = 'exhausted', reason = 'all_busy', retry = busy_retry(usable)})
end
if redis.call('ZCARD', k('Q')) >= QSIZE then
  return cjson.encode({s = 'exhausted', reason = 'queue_full', retry = busy_retry(usable),
                       waiting = redis.call('ZCARD', k('Q'))})
end
local seq = redis.call('INCR', k('seq'))
redis.call('ZADD', k('Q'), seq, rid)
redis.call('ZADD', k('QD'), NOW + wait + GRACE, rid)
redis.call('HSET', k('T:' .. rid), 'replica', replica, 'exclude', ARGV[4], 'deadline', NOW + wait)
return cjson.encode({s = 'waiting', wake = next_wake()})
"""

TICK = r"""
-- ARGV: epoch, replica, leases json [[member, proxy id]...], waiting request ids json
-- One call per replica per interval: heartbeat, renew all its leases, collect grants for its tickets.
local bad = epoch_problem(ARGV[1])
if bad then return bad end
local replica = ARGV[2]
redis.call('ZADD', k('H'), NOW, replica)
local recovering = redis.call('PTTL', k('recovering')) > 0
local renewed, lost = {}, {}
for _, l in ipairs(cjson.decode(ARGV[3])) do
  local m, pid = l[1], l[2]
  local acct, fence = split_member(m)
  local exp = NOW + TTL
  local held = tonumber(redis.call('ZSCORE', k('exp'), m))
  if held and held > NOW then
    redis.call('ZADD', k('exp'), exp, m)
    redis.call('ZADD', k('L:' .. acct), exp, fence)
    renewed[#renewed + 1] = m
  elseif recovering and not held and redis.call('EXISTS', k('A:' .. acct)) == 1
      and redis.call('ZCARD', k('L:' .. acct)) < CAP then
    -- Redis lost its data: a live holder re-creates its lease during the recovery window
    local fk = k('F:' .. acct)
    local cur = tonumber(redis.call('GET', fk) or '0')
    if cur < tonumber(fence) then redis.call('SET', fk, fence) end
    redis.call('ZADD', k('exp'), exp, m)
    redis.call('ZADD', k('L:' .. acct), exp, fence)
    if pid ~= '' and redis.call('ZSCORE', k('P'), pid) then redis.call('ZINCRBY', k('P'), 1, pid) end
    redis.call('HSET', k('LI'), m, cjson.encode({r = replica, p = pid, q = '', g = NOW}))
    refresh(acct)
    renewed[#renewed + 1] = m
  else
    lost[#lost + 1] = m
  end
end
housekeeping()
dispatch()
local grants, gone = {}, {}
for _, rid in ipairs(cjson.decode(ARGV[4])) do
  local g = redis.call('GET', k('G:' .. rid))
  if g and redis.call('HEXISTS', k('LI'), g) == 1 then
    -- claimed now: the lease's time starts from here
    local acct, fence = split_member(g)
    redis.call('ZADD', k('exp'), NOW + TTL, g)
    redis.call('ZADD', k('L:' .. acct), NOW + TTL, fence)
    grants[#grants + 1] = lease_reply(g, rid)
  elseif redis.call('EXISTS', k('T:' .. rid)) == 0 then
    gone[#gone + 1] = rid
  end
end
return cjson.encode({s = 'tick', ttl = TTL, renewed = renewed, lost = lost, grants = grants, gone = gone,
                     wake = next_wake()})
"""

CANCEL = r"""
-- ARGV: epoch, request id, exclude json. Leave the queue (timeout or cancellation): the grant if
-- one was made in the meantime, else why waiting did not help.
local rid = ARGV[2]
local g = redis.call('GET', k('G:' .. rid))
if g and redis.call('HEXISTS', k('LI'), g) == 1 then return cjson.encode(lease_reply(g, rid)) end
local waited = redis.call('EXISTS', k('T:' .. rid)) == 1
drop_ticket(rid)
if not redis.call('GET', KEYS[1]) then return cjson.encode({s = 'reseed'}) end
local v, usable = verdict(decode_set(ARGV[3]), NOW)
if v then return cjson.encode(v) end
return cjson.encode({s = 'exhausted', reason = 'all_busy', retry = busy_retry(usable), waited = waited})
"""

RELEASE = r"""
-- ARGV: member, request id, health json ('' = none), proxy result ('', 'ok', 'fail'), failed (0/1)
-- Idempotent and fenced: only the exact (fence, account) lease is removed; a stale one changes nothing.
local m, rid = ARGV[1], ARGV[2]
if not redis.call('GET', KEYS[1]) then return cjson.encode({s = 'stale'}) end
local info = redis.call('HGET', k('LI'), m)
if not info then
  redis.call('DEL', k('G:' .. rid))
  return cjson.encode({s = 'stale'})
end
local acct = split_member(m)
local d = cjson.decode(info)
if ARGV[5] == '1' then
  redis.call('HINCRBY', k('A:' .. acct), 'failures', 1)
else
  redis.call('HSET', k('A:' .. acct), 'last_ok', NOW)  -- the console's "last success" (ms)
end
proxy_report(d.p, ARGV[4])
if ARGV[3] ~= '' then
  local h = cjson.decode(ARGV[3])
  set_health(acct, h.status, h.reason or '', tonumber(h['until']), false)
end
drop_lease(m, 'released')
if d.g then
  local held = NOW - tonumber(d.g)
  local old = tonumber(redis.call('HGET', k('stats'), 'hold_ms')) or held
  redis.call('HSET', k('stats'), 'hold_ms', math.floor(old * 0.9 + held * 0.1))
end
housekeeping()
dispatch()
return cjson.encode({s = 'released'})
"""

REPORT = r"""
-- ARGV: account, member ('' = unfenced), health json ('' = none), mode ('merge'|'force'),
--       proxy id, proxy result, failed (0/1)
local acct, m = ARGV[1], ARGV[2]
if not redis.call('GET', KEYS[1]) then return cjson.encode({s = 'reseed'}) end
if m ~= '' and redis.call('HEXISTS', k('LI'), m) == 0 then return cjson.encode({s = 'stale'}) end
if redis.call('EXISTS', k('A:' .. acct)) == 0 then return cjson.encode({s = 'unknown'}) end
if ARGV[7] == '1' then redis.call('HINCRBY', k('A:' .. acct), 'failures', 1) end
proxy_report(ARGV[5], ARGV[6])
local r = 'applied'
if ARGV[3] ~= '' then
  local h = cjson.decode(ARGV[3])
  r = set_health(acct, h.status, h.reason or '', tonumber(h['until']), ARGV[4] == 'force')
end
housekeeping()
dispatch()
return cjson.encode({s = r})
"""

PROXY_REPORT = r"""
-- ARGV: proxy id, 'ok' | 'fail'
proxy_report(ARGV[1], ARGV[2])
return cjson.encode({s = 'applied'})
"""

BEGIN_LOGIN = r"""
-- ARGV: epoch, account, owner, token version the caller saw (0 = none), lock ms
-- A fresh token if someone else has one newer than the caller's; else the login lock if free.
local bad = epoch_problem(ARGV[1])
if bad then return bad end
local key = k('A:' .. ARGV[2])
if redis.call('EXISTS', key) == 0 then return cjson.encode({s = 'unknown'}) end
local st = effective(ARGV[2])
if DEAD[st] then return cjson.encode({s = 'dead', status = st}) end
local a = redis.call('HMGET', key, 'token', 'tver')
local tver = tonumber(a[2]) or 0
if a[1] and tver ~= tonumber(ARGV[4]) then
  return cjson.encode({s = 'token', token = a[1], tver = tver})
end
local lock = k('K:' .. ARGV[2])
if redis.call('SET', lock, ARGV[3], 'NX', 'PX', tonumber(ARGV[5])) then
  return cjson.encode({s = 'locked', tver = tver})
end
return cjson.encode({s = 'busy', retry = math.max(0, redis.call('PTTL', lock))})
"""

END_LOGIN = r"""
-- ARGV: account, owner, token ('' = the login failed). Stores the token, frees the lock, tells everyone.
local key = k('A:' .. ARGV[1])
local lock = k('K:' .. ARGV[1])
local tver = tonumber(redis.call('HGET', key, 'tver')) or 0
local owned = redis.call('GET', lock) == ARGV[2]
if ARGV[3] ~= '' and redis.call('EXISTS', key) == 1 then
  tver = tonumber(redis.call('HINCRBY', key, 'tver', 1))
  redis.call('HSET', key, 'token', ARGV[3], 'updated', NOW)
end
if owned then redis.call('DEL', lock) end
redis.call('PUBLISH', k('E'), 'token:' .. ARGV[1])
return cjson.encode({s = 'stored', tver = tver, owned = owned})
"""

FORGET_TOKEN = r"""
-- ARGV: account, token version that was refused. Compare-and-delete: a newer token stays.
local key = k('A:' .. ARGV[1])
local tver = tonumber(redis.call('HGET', key, 'tver')) or 0
if tver ~= tonumber(ARGV[2]) or not redis.call('HGET', key, 'token') then
  return cjson.encode({s = 'kept', tver = tver})
end
redis.call('HDEL', key, 'token')
tver = tonumber(redis.call('HINCRBY', key, 'tver', 1))
return cjson.encode({s = 'forgotten', tver = tver})
"""

SNAPSHOT = r"""
-- ARGV: heartbeat age (ms) after which a replica counts as gone. Read-only view for the console.
local accounts = {}
for _, acct in ipairs(redis.call('SMEMBERS', k('accounts'))) do
  local a = redis.call('HMGET', k('A:' .. acct), 'status', 'reason', 'until', 'token', 'requests', 'failures',
                       'last_ok')
  local st, u = effective(acct)
  accounts[#accounts + 1] = {id = acct, status = st or 'unknown', reason = (st ~= 'ready') and (a[2] or '') or '',
    ['until'] = u or false, in_use = redis.call('ZCARD', k('L:' .. acct)), has_token = a[4] ~= false,
    requests = tonumber(a[5]) or 0, failures = tonumber(a[6]) or 0,
    last_success = tonumber(a[7]) and tonumber(a[7]) / 1000 or false}
end
local proxies = {}
local all = redis.call('ZRANGE', k('P'), 0, -1, 'WITHSCORES')
for i = 1, #all, 2 do
  local q = tonumber(redis.call('ZSCORE', k('PQ'), all[i]))
  proxies[#proxies + 1] = {id = all[i], in_use = tonumber(all[i + 1]),
    picks = tonumber(redis.call('HGET', k('PK'), all[i])) or 0,
    failures = tonumber(redis.call('HGET', k('PF'), all[i])) or 0,
    quarantine_left = (q and q > NOW) and (q - NOW) or 0,
    sticky = tonumber(redis.call('HGET', k('SA'), all[i])) or 0}
end
local replicas = {}
local h = redis.call('ZRANGE', k('H'), 0, -1, 'WITHSCORES')
for i = 1, #h, 2 do
  local age = NOW - tonumber(h[i + 1])
  replicas[#replicas + 1] = {id = h[i], age = age, alive = age <= tonumber(ARGV[1])}
end
return cjson.encode({s = 'snapshot', now = NOW, epoch = redis.call('GET', KEYS[1]) or false,
  recovering = math.max(0, redis.call('PTTL', k('recovering'))), accounts = accounts, proxies = proxies,
  replicas = replicas, waiting = redis.call('ZCARD', k('Q')), leases = redis.call('ZCARD', k('exp')),
  reaped = tonumber(redis.call('HGET', k('stats'), 'reaped')) or 0,
  cap = CAP, ttl = TTL})
"""

BODIES: dict[str, str] = {
    "seed": SEED,
    "acquire": ACQUIRE,
    "tick": TICK,
    "cancel": CANCEL,
    "release": RELEASE,
    "report": REPORT,
    "proxy_report": PROXY_REPORT,
    "begin_login": BEGIN_LOGIN,
    "end_login": END_LOGIN,
    "forget_token": FORGET_TOKEN,
    "snapshot": SNAPSHOT,
}


def script_source(name: str) -> str:
    """The full text of one script: the shared prelude, then its body."""
    return PRELUDE + BODIES[name]


__all__ = ["BODIES", "PRELUDE", "script_source"]
