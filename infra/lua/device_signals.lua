-- Record a batch of device signals and return each device's state after its signal.
-- Event fields (stride 12): event_id, ts, device_ref, fingerprint_ref, customer_id ('' if
-- none), emulator, rooted, jailbroken, vpn, proxy ('1'/'0'), sim_changed_ms ('' if unknown),
-- country ('' if unknown).
-- Idempotent without a marker: the flags are those of the greatest (time, event id), whatever
-- the processing order, so replaying any signal rewrites the values already there; sets use
-- ZADD GT.

local results = {}
for i = first_event, #ARGV, 12 do
  local event_id, b = ARGV[i], bounds(tonumber(ARGV[i + 1]))
  local device_ref, fingerprint_ref, customer_id = ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local state_key = device_key(device_ref, 'state')

  local stored = redis.call('HMGET', state_key, 'signal_ms', 'signal_id')
  local stored_ms = tonumber(stored[1] or '')
  -- Two signals with the same millisecond: the greater event id wins, in any order.
  if stored_ms == nil or b.ts > stored_ms or (b.ts == stored_ms and event_id >= stored[2]) then
    redis.call('HSET', state_key, 'signal_ms', b.at, 'signal_id', event_id,
      'emulator', ARGV[i + 5], 'rooted', ARGV[i + 6], 'jailbroken', ARGV[i + 7],
      'vpn', ARGV[i + 8], 'proxy', ARGV[i + 9])
    -- An unknown SIM age or country does not erase what an earlier signal established.
    if ARGV[i + 10] ~= '' then
      redis.call('HSET', state_key, 'sim_changed_ms', ARGV[i + 10])
    end
    if ARGV[i + 11] ~= '' then
      redis.call('HSET', state_key, 'country', ARGV[i + 11])
    end
  end
  redis.call('PEXPIRE', state_key, cfg.link_ttl)
  remember(device_key(device_ref, 'fingerprints'), 'GT', b, fingerprint_ref,
    cfg.link_window, cfg.fingerprint_cap, cfg.link_ttl)
  if customer_id ~= '' then
    remember_customer(device_ref, b, customer_id)
  end
  results[#results + 1] = device_state(device_ref, b)
end
return results
