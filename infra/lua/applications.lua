-- Record a batch of loan applications in the velocity windows and return, per application,
-- one string: "device 1h 24h 7d, id 1h 24h 7d, phone 1h 24h 7d, device_state(...)"
-- (space-separated, no commas), or '' for an application already processed to the end (its
-- done marker exists; only looked up when check_done is '1': nothing is written for it).
-- After the settings: check_done ('1'/'0'), then the event fields (stride 6): event_id,
-- ts (epoch ms), device_ref, id_ref, phone_ref, customer_id.
-- Idempotent without a marker: every write is ZADD NX / GT at the event's own time.

local check_done = ARGV[first_event] == '1'

local function record(i)
  local event_id, b = ARGV[i], bounds(tonumber(ARGV[i + 1]))
  local device_ref, id_ref, phone_ref = ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local customer_id = ARGV[i + 5]
  local out = {}
  for _, key in ipairs({
    prefix .. 'app:dev:' .. device_ref,
    prefix .. 'app:id:' .. id_ref,
    prefix .. 'app:phone:' .. phone_ref,
  }) do
    remember(key, 'NX', b, event_id, cfg.week, cfg.velocity_cap, cfg.velocity_ttl)
    out[#out + 1] = count_window(key, b, 'hour')
    out[#out + 1] = count_window(key, b, 'day')
    out[#out + 1] = count_window(key, b, 'week')
  end
  remember(device_key(device_ref, 'ids'), 'GT', b, id_ref,
    cfg.link_window, cfg.link_cap, cfg.link_ttl)
  remember_customer(device_ref, b, customer_id)
  out[#out + 1] = device_state(device_ref, b)
  return table.concat(out, ' ')
end

local results = {}
for i = first_event + 1, #ARGV, 6 do
  if check_done and is_done(ARGV[i]) then
    results[#results + 1] = ''
  else
    results[#results + 1] = record(i)
  end
end
return results
