"""Pure feature math: ramps, velocity, device rules, night time, geo and amount anomalies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greencredit.models.features import (
    AMOUNT_COLD_START_N,
    APPLICATION_VELOCITY,
    CARD_VELOCITY,
    DEVICE_FARM_THRESHOLD,
    DEVICE_RULE_WEIGHTS,
    ApplicationVelocity,
    DeviceRule,
    DeviceState,
    Ramp,
    WindowCounts,
    amount_anomaly,
    application_velocity_risk,
    application_velocity_risks,
    device_risk,
    device_rules,
    epoch_ms,
    from_epoch_ms,
    geo_mismatch,
    is_night_time,
    risk_of_device_rules,
    velocity_risk,
)

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
counts = st.integers(min_value=0, max_value=10_000)
# Hypothesis takes naive bounds and attaches the zone itself.
utc_times = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


# --- ramps and velocity -----------------------------------------------------------------------


def test_ramp_is_zero_to_normal_linear_to_alarm_then_one():
    ramp = Ramp(normal=2, alarm=6)
    assert [ramp.risk(v) for v in (0, 2, 3, 4, 6, 60)] == [0.0, 0.0, 0.25, 0.5, 1.0, 1.0]


@pytest.mark.parametrize(("normal", "alarm"), [(3, 3), (5, 1), (0, float("nan"))])
def test_a_ramp_that_cannot_rise_is_rejected(normal, alarm):
    with pytest.raises(ValueError, match="must exceed"):
        Ramp(normal, alarm)


def test_one_application_is_no_velocity_risk_and_three_in_an_hour_is_full():
    assert velocity_risk(WindowCounts(1, 1, 1)) == 0.0
    assert velocity_risk(WindowCounts(2, 2, 2)) == pytest.approx(0.5)
    assert velocity_risk(WindowCounts(3, 3, 3)) == 1.0
    # Slow drip over a week is caught by the 7-day window alone.
    assert velocity_risk(WindowCounts(1, 1, 8)) == 1.0


def test_card_velocity_has_no_week_and_tolerates_a_busy_day():
    assert CARD_VELOCITY.last_7d is None
    assert velocity_risk(WindowCounts(5, 30), CARD_VELOCITY) == 0.0
    assert velocity_risk(WindowCounts(20, 30), CARD_VELOCITY) == 1.0
    # A week count is ignored where the limits have none, and vice versa.
    assert velocity_risk(WindowCounts(1, 1, 999), CARD_VELOCITY) == 0.0
    assert velocity_risk(WindowCounts(1, 1, None), APPLICATION_VELOCITY) == 0.0


@given(counts, counts, counts, st.integers(min_value=0, max_value=2))
def test_velocity_risk_is_bounded_and_never_falls_when_a_count_rises(h, d, w, window):
    raised = [h, d, w]
    raised[window] += 1
    risk = velocity_risk(WindowCounts(h, d, w))
    assert 0.0 <= risk <= velocity_risk(WindowCounts(*raised)) <= 1.0


def test_application_velocity_is_the_worst_subject():
    v = ApplicationVelocity(
        event_id="e",
        device=WindowCounts(1, 1, 1),
        id_number=WindowCounts(1, 1, 1),
        phone=WindowCounts(2, 2, 2),
        device_state=DeviceState("device_x"),
    )
    assert application_velocity_risk(v) == pytest.approx(0.5)


_windows = st.builds(WindowCounts, counts, counts, st.one_of(st.none(), counts))
_velocities = st.builds(
    ApplicationVelocity, st.just("e"), _windows, _windows, _windows, st.just(DeviceState("d"))
)


@given(st.lists(_velocities, max_size=12), st.sampled_from([APPLICATION_VELOCITY, CARD_VELOCITY]))
def test_the_batch_velocity_risks_are_the_scalar_ones_bit_for_bit(velocities, limits):
    # The decision computes the column for its batch; it must equal the per-event function
    # exactly (== on floats, not approx), also with a week window missing on either side.
    assert application_velocity_risks(velocities, limits) == [
        application_velocity_risk(v, limits) for v in velocities
    ]


# --- device rules -----------------------------------------------------------------------------


def state(**kwargs) -> DeviceState:
    return DeviceState(device_ref="device_" + "0" * 32, **kwargs)


def test_a_clean_or_unknown_device_triggers_nothing():
    assert device_rules(state(), NOW) == frozenset()
    assert device_risk(state(), NOW) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"is_emulator": True}, DeviceRule.EMULATOR),
        ({"is_rooted": True, "vpn_active": True}, DeviceRule.ROOTED_WITH_VPN),
        ({"is_jailbroken": True, "proxy_active": True}, DeviceRule.ROOTED_WITH_VPN),
        ({"sim_changed_at": NOW - timedelta(hours=71)}, DeviceRule.RECENT_SIM_SWAP),
        ({"sim_changed_at": NOW + timedelta(hours=1)}, DeviceRule.RECENT_SIM_SWAP),
        ({"distinct_identities_30d": DEVICE_FARM_THRESHOLD}, DeviceRule.DEVICE_FARM),
        ({"distinct_customers_30d": DEVICE_FARM_THRESHOLD}, DeviceRule.DEVICE_FARM),
        ({"distinct_fingerprints_30d": 2}, DeviceRule.FINGERPRINT_CHANGED),
    ],
)
def test_each_rule_alone(kwargs, rule):
    assert device_rules(state(**kwargs), NOW) == {rule}
    assert device_risk(state(**kwargs), NOW) == pytest.approx(DEVICE_RULE_WEIGHTS[rule])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"is_rooted": True},  # root alone: power users
        {"vpn_active": True, "proxy_active": True},  # privacy tools alone
        {"sim_changed_at": NOW - timedelta(hours=72)},  # exactly 72 h is no longer recent
        {"distinct_identities_30d": DEVICE_FARM_THRESHOLD - 1},
        {"distinct_customers_30d": DEVICE_FARM_THRESHOLD - 1},
        {"distinct_fingerprints_30d": 1},
    ],
)
def test_below_every_threshold_nothing_fires(kwargs):
    assert device_rules(state(**kwargs), NOW) == frozenset()


def test_farm_threshold_is_a_parameter():
    farm = state(distinct_identities_30d=3)
    assert DeviceRule.DEVICE_FARM not in device_rules(farm, NOW, farm_threshold=4)
    assert DeviceRule.DEVICE_FARM in device_rules(farm, NOW, farm_threshold=3)


def test_rules_combine_as_noisy_or_below_one():
    everything = state(
        is_emulator=True,
        is_rooted=True,
        vpn_active=True,
        sim_changed_at=NOW,
        distinct_identities_30d=9,
        distinct_fingerprints_30d=3,
    )
    assert device_rules(everything, NOW) == set(DeviceRule)
    expected = 1.0
    for weight in DEVICE_RULE_WEIGHTS.values():
        expected *= 1.0 - weight
    assert device_risk(everything, NOW) == pytest.approx(1.0 - expected)
    assert device_risk(state(is_emulator=True), NOW) < device_risk(everything, NOW) < 1.0
    # The decision finds the rules once and takes the risk from them: the same number.
    assert risk_of_device_rules(device_rules(everything, NOW)) == device_risk(everything, NOW)
    assert risk_of_device_rules(frozenset()) == 0.0


def test_device_rules_reject_a_naive_now():
    with pytest.raises(ValueError, match="timezone-aware"):
        device_rules(state(), NOW.replace(tzinfo=None))


# --- night time -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("utc", "night"),
    [
        (datetime(2025, 1, 10, 15, 59, 59, tzinfo=UTC), False),  # 23:59:59 in Shanghai
        (datetime(2025, 1, 10, 16, 0, tzinfo=UTC), True),  # 00:00
        (datetime(2025, 1, 10, 21, 59, 59, tzinfo=UTC), True),  # 05:59:59
        (datetime(2025, 1, 10, 22, 0, tzinfo=UTC), False),  # 06:00
        (datetime(2025, 7, 10, 3, 0, tzinfo=UTC), False),  # 11:00 in summer: no DST shift
    ],
)
def test_night_time_in_shanghai(utc, night):
    assert is_night_time(utc) is night


def test_any_aware_offset_is_the_same_instant():
    beijing = timezone(timedelta(hours=8))
    assert is_night_time(datetime(2025, 1, 11, 3, 0, tzinfo=beijing))
    assert not is_night_time(datetime(2025, 1, 11, 12, 0, tzinfo=beijing))


@given(utc_times)
def test_shanghai_is_utc_plus_eight_all_year(moment):
    assert is_night_time(moment) == ((moment + timedelta(hours=8)).hour < 6)


def test_night_time_follows_dst_in_other_zones():
    # 22:30 UTC is 00:30 in Berlin in summer (CEST, +2) but 23:30 in winter (CET, +1).
    assert is_night_time(datetime(2025, 7, 1, 22, 30, tzinfo=UTC), "Europe/Berlin")
    assert not is_night_time(datetime(2025, 1, 1, 22, 30, tzinfo=UTC), "Europe/Berlin")


def test_naive_datetimes_are_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        is_night_time(datetime(2025, 1, 10, 2, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        epoch_ms(datetime(2025, 1, 10, 2, 0))  # noqa: DTZ001


@given(utc_times)
def test_epoch_ms_round_trips_to_the_millisecond(moment):
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert from_epoch_ms(epoch_ms(moment)) == moment


# --- geo --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "device", "merchant", "mismatch"),
    [
        ("CN", "CN", "CN", False),
        ("CN", "cn", None, False),  # case is not a mismatch
        ("NL", "CN", None, True),  # VPN exit abroad
        ("CN", "CN", "US", True),  # card present far from the phone
        (None, None, "US", False),  # one known country cannot disagree
        ("CN", None, None, False),
        (None, None, None, False),
    ],
)
def test_geo_mismatch(ip, device, merchant, mismatch):
    assert geo_mismatch(ip, device, merchant) is mismatch


# --- amounts ----------------------------------------------------------------------------------


def test_cold_start_is_no_evidence():
    for n in range(AMOUNT_COLD_START_N):
        assert amount_anomaly(10**9, mean=100.0, std=1.0, n=n) == 0.0
    assert amount_anomaly(10**9, mean=100.0, std=1.0, n=AMOUNT_COLD_START_N) == 1.0


def test_amount_anomaly_ramps_from_two_to_six_standard_deviations():
    mean, std = 10_000.0, 2_000.0
    assert amount_anomaly(14_000, mean, std, 50) == 0.0  # z = 2
    assert amount_anomaly(18_000, mean, std, 50) == pytest.approx(0.5)  # z = 4
    assert amount_anomaly(22_000, mean, std, 50) == 1.0  # z = 6
    assert amount_anomaly(100, mean, std, 50) == 0.0  # smaller than usual is not anomalous


def test_a_constant_history_does_not_make_one_extra_cent_infinite():
    # std 0: the floor is 10 % of the mean, so +1 % is nothing and +100 % is a lot.
    assert amount_anomaly(10_100, 10_000.0, 0.0, 20) == 0.0
    assert amount_anomaly(20_000, 10_000.0, 0.0, 20) == 1.0
    assert amount_anomaly(3, 0.0, 0.0, 20) == pytest.approx(0.25)  # floor of one minor unit


def test_amount_anomaly_rejects_impossible_statistics():
    with pytest.raises(ValueError, match="finite"):
        amount_anomaly(1, float("nan"), 1.0, 10)
    with pytest.raises(ValueError, match="std >= 0"):
        amount_anomaly(1, 1.0, -1.0, 10)


@given(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(min_value=-1e12, max_value=1e12),
    st.floats(min_value=0, max_value=1e12),
    st.integers(min_value=0, max_value=10**6),
)
def test_amount_anomaly_is_bounded(amount, mean, std, n):
    assert 0.0 <= amount_anomaly(amount, mean, std, n) <= 1.0
