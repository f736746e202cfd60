-- Shared by every feature-store script: infra/feature_store.py prepends this file to each
-- script before loading it, because Redis scripts cannot import one another.
--
-- ARGV layout of every script:
--   ARGV[1] key prefix, ARGV[2] k = number of settings, then k (name, value) pairs,
--   then the batch: one fixed-size group of fields per event (the stride is per script).
-- Settings arrive from Python so every window, cap and TTL has one source of truth there.
-- Keys are built here from the prefix and pseudonyms rather than passed as KEYS: a batch
-- touches many hash slots anyway, so these scripts are for a single Redis node (or primary).

local prefix = ARGV[1]
local cfg = {}
local n_settings = tonumber(ARGV[2])
for i = 0, n_settings - 1 do
  cfg[ARGV[3 + 2 * i]] = tonumber(ARGV[4 + 2 * i])
end
local first_event = 3 + 2 * n_settings

-- The engine state's done markers (infra/engine_store.py): an event whose outputs were
-- acknowledged. The applications and transactions scripts skip such events.
local done_prefix = prefix .. 'done:'
local function is_done(event_id)
  return redis.call('EXISTS', done_prefix .. event_id) == 1
end

-- Integers (epoch milliseconds) as exact decimal strings: tostring() would switch to
-- exponent notation past 14 digits.
local function int(x)
  return string.format('%d', x)
end

-- Floats with full double precision, so a stored mean reads back bit for bit.
local function float(x)
  return string.format('%.17g', x)
end

-- Window bounds of one event, formatted once (string.format is a noticeable share of the
-- script's time): the event time itself and the exclusive lower bound of each window.
local function bounds(ts)
  return {
    ts = ts,
    at = int(ts),
    hour = '(' .. int(ts - cfg.hour),
    day = '(' .. int(ts - cfg.day),
    week = '(' .. int(ts - cfg.week),
    link = '(' .. int(ts - cfg.link_window),
  }
end

-- Record `member` at the event's time in a sliding-window sorted set, then bound the set:
-- drop members older than `retention` before its newest member (no window can reach them),
-- keep at most `cap` newest members, refresh the TTL. `mode` is 'NX' for event ids (the first
-- time of an event wins, so a replay changes nothing) or 'GT' for last-seen sets (a replay
-- with the same time changes nothing; an older event does not move "last seen" back).
local function remember(key, mode, b, member, retention, cap, ttl)
  redis.call('ZADD', key, mode, b.at, member)
  local newest = redis.call('ZREVRANGE', key, 0, 0, 'WITHSCORES')
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. int(tonumber(newest[2]) - retention))
  redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
  redis.call('PEXPIRE', key, ttl)
end

-- Members with a time in (ts - window, ts]: by event time, so a replay counts the same.
local function count_window(key, b, window)
  return redis.call('ZCOUNT', key, b[window], b.at)
end

local function device_key(device_ref, what)
  return prefix .. 'dev:' .. device_ref .. ':' .. what
end

-- Members last seen after ts - 30 d, including any seen after ts. Used for the distinct
-- counts of device state, which is the latest known: in order, this equals the count up to
-- ts; a replay may also see identities that appeared since (the conservative direction).
-- Bounding at ts instead would drop an identity seen both before and after ts.
local function count_linked(key, b)
  return redis.call('ZCOUNT', key, b.link, '+inf')
end

-- A device's state at the event's time as space-separated fields: the latest signal's
-- signal_ms, emulator, rooted, jailbroken, vpn, proxy, sim_changed_ms, country ('-' where
-- never reported), then the distinct identities, customers and fingerprints in the window.
-- One string per event rather than a nested reply: parsing thousands of small RESP elements
-- costs the client more than the script costs Redis.
local function device_state(device_ref, b)
  local s = redis.call('HMGET', device_key(device_ref, 'state'), 'signal_ms', 'emulator',
    'rooted', 'jailbroken', 'vpn', 'proxy', 'sim_changed_ms', 'country')
  for j = 1, 8 do
    s[j] = s[j] or '-'
  end
  s[9] = count_linked(device_key(device_ref, 'ids'), b)
  s[10] = count_linked(device_key(device_ref, 'customers'), b)
  s[11] = count_linked(device_key(device_ref, 'fingerprints'), b)
  return table.concat(s, ' ')
end

-- A customer seen on a device, from any event that carries both.
local function remember_customer(device_ref, b, customer_id)
  remember(device_key(device_ref, 'customers'), 'GT', b, customer_id,
    cfg.link_window, cfg.link_cap, cfg.link_ttl)
end
