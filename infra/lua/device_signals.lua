-- Record a batch of device signals and return each device's state after its signal.
-- Event fields (stride 11): ts, device_ref, fingerprint_ref, customer_id ('' if none),
-- emulator, rooted, jailbroken, vpn, proxy ('1'/'0'), sim_changed_ms ('' if unknown),
-- country ('' if unknown).
-- Idempotent without a marker: flags are overwritten only by a signal at least as new as the
-- stored one (the same signal rewrites the same values); sets use ZADD GT.

local results = {}
for i = first_event, #ARGV, 11 do
  local ts, device_ref, fingerprint_ref = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  local customer_id = ARGV[i + 3]
  local state_key = device_key(device_ref, 'state')

  local stored_ms = tonumber(redis.call('HGET', state_key, 'signal_ms') or '')
  if stored_ms == nil or ts >= stored_ms then
    redis.call('HSET', state_key, 'signal_ms', int(ts), 'emulator', ARGV[i + 4],
      'rooted', ARGV[i + 5], 'jailbroken', ARGV[i + 6], 'vpn', ARGV[i + 7],
      'proxy', ARGV[i + 8])
    -- An unknown SIM age or country does not erase what an earlier signal established.
    if ARGV[i + 9] ~= '' then
      redis.call('HSET', state_key, 'sim_changed_ms', ARGV[i + 9])
    end
    if ARGV[i + 10] ~= '' then
      redis.call('HSET', state_key, 'country', ARGV[i + 10])
    end
  end
  redis.call('PEXPIRE', state_key, cfg.link_ttl)
  remember(device_key(device_ref, 'fingerprints'), 'GT', ts, fingerprint_ref,
    cfg.link_window, cfg.fingerprint_cap, cfg.link_ttl)
  if customer_id ~= '' then
    remember_customer(device_ref, ts, customer_id)
  end
  results[#results + 1] = device_state(device_ref, ts)
end
return results
