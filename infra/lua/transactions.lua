-- Record a batch of transactions and return, per transaction, one space-separated string:
--   "card_1h card_24h n mean m2 new_merchant(0/1) [device_state(...) when it has a device]"
-- where n/mean/m2 (Welford) describe the account's amounts BEFORE this transaction, or ''
-- for a transaction already processed to the end (its done marker exists; only looked up
-- when check_done is '1').
-- After the settings: check_done ('1'/'0'), f, then f event ids to mark done (their outputs
-- were acknowledged since the last call: marking them here saves a round trip per batch),
-- then one argument per event: "event_id ts account_id customer_id card_ref merchant_id
-- amount_minor device_ref" ('-' for no device). Every field is whitespace-free (checked in
-- Python), and one argument per event rather than eight halves what the client encodes.
--
-- Replay guard: the "before" snapshot is written with SET NX to a per-event marker in the same
-- atomic script as the updates. If the marker exists the event was applied already: nothing is
-- written and the stored snapshot is returned, so a replay sees the same "before" values.

local check_done = ARGV[first_event] == '1'
local n_finished = tonumber(ARGV[first_event + 1])
local first_txn = first_event + 2 + n_finished
for i = first_event + 2, first_txn - 1 do
  redis.call('SET', done_prefix .. ARGV[i], '1', 'PX', cfg.done_ttl)
end

local results = {}
for i = first_txn, #ARGV do
  local event_id, ts, account_id, customer_id, card_ref, merchant_id, amount, device_ref =
    string.match(ARGV[i], '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
  if check_done and is_done(event_id) then
    results[#results + 1] = ''
  else
    local b = bounds(tonumber(ts))
    amount = tonumber(amount)
    local amount_key = prefix .. 'acct:' .. account_id .. ':amount'
    local merchants_key = prefix .. 'acct:' .. account_id .. ':merchants'
    local card_key = prefix .. 'txn:card:' .. card_ref

    local h = redis.call('HMGET', amount_key, 'n', 'mean', 'm2')
    local n, mean, m2 = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0
    local new_merchant = 0
    if not redis.call('ZSCORE', merchants_key, merchant_id) then
      new_merchant = 1
    end
    -- The "before" values in reply order, so the reply can carry the snapshot as it is.
    local snapshot = int(n) .. ' ' .. float(mean) .. ' ' .. float(m2) .. ' ' .. new_merchant

    local marker = prefix .. 'seen:txn:' .. event_id
    if redis.call('SET', marker, snapshot, 'NX', 'PX', cfg.marker_ttl) then
      -- Refunds (negative amounts) mirror an earlier spend; they are not spending behaviour.
      if amount >= 0 then
        local n1 = n + 1
        local delta = amount - mean
        local mean1 = mean + delta / n1
        redis.call('HSET', amount_key, 'n', int(n1), 'mean', float(mean1),
          'm2', float(m2 + delta * (amount - mean1)))
      end
      -- The TTL slides even for a refund: the account is active.
      if redis.call('EXISTS', amount_key) == 1 then
        redis.call('PEXPIRE', amount_key, cfg.account_ttl)
      end
      remember(merchants_key, 'GT', b, merchant_id,
        cfg.merchant_window, cfg.merchant_cap, cfg.account_ttl)
      remember(card_key, 'NX', b, event_id, cfg.day, cfg.velocity_cap, cfg.card_ttl)
      if device_ref ~= '-' then
        remember_customer(device_ref, b, customer_id)
      end
    else
      snapshot = redis.call('GET', marker)
    end

    local out = {count_window(card_key, b, 'hour'), count_window(card_key, b, 'day'), snapshot}
    if device_ref ~= '-' then
      out[#out + 1] = device_state(device_ref, b)
    end
    results[#results + 1] = table.concat(out, ' ')
  end
end
return results
