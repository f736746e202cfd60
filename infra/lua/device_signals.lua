-- Record a batch of device signals and return each device's state after its signal.
-- One argument per event, space-separated: event_id, ts, device_ref, fingerprint_ref,
-- customer_id, emulator, rooted, jailbroken, vpn, proxy ('1'/'0'), sim_changed_ms, country
-- ('-' where unknown). Every field is whitespace-free (checked in Python); one argument per
-- event rather than twelve saves the client most of its encoding.
-- Idempotent without a marker: the flags are those of the greatest (time, event id), whatever
-- the processing order, so replaying any signal rewrites the values already there; sets use
-- ZADD GT.

local results = {}
for i = first_event, #ARGV do
  local f = {}
  for field in string.gmatch(ARGV[i], '%S+') do
    f[#f + 1] = field
  end
  local event_id, b = f[1], bounds(tonumber(f[2]))
  local device_ref, fingerprint_ref, customer_id = f[3], f[4], f[5]
  local state_key = device_key(device_ref, 'state')

  local stored = redis.call('HMGET', state_key, 'signal_ms', 'signal_id')
  local stored_ms = tonumber(stored[1] or '')
  -- Two signals with the same millisecond: the greater event id wins, in any order.
  if stored_ms == nil or b.ts > stored_ms or (b.ts == stored_ms and event_id >= stored[2]) then
    redis.call('HSET', state_key, 'signal_ms', b.at, 'signal_id', event_id,
      'emulator', f[6], 'rooted', f[7], 'jailbroken', f[8], 'vpn', f[9], 'proxy', f[10])
    -- An unknown SIM age or country does not erase what an earlier signal established.
    if f[11] ~= '-' then
      redis.call('HSET', state_key, 'sim_changed_ms', f[11])
    end
    if f[12] ~= '-' then
      redis.call('HSET', state_key, 'country', f[12])
    end
  end
  redis.call('PEXPIRE', state_key, cfg.link_ttl)
  remember(device_key(device_ref, 'fingerprints'), 'GT', b, fingerprint_ref,
    cfg.link_window, cfg.fingerprint_cap, cfg.link_ttl)
  if customer_id ~= '-' then
    remember_customer(device_ref, b, customer_id)
  end
  results[#results + 1] = device_state(device_ref, b)
end
return results
