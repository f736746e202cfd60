"""Green-credit rules: taxonomy validation, CO2e, pricing, ESG, integrity, funders, portfolio."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greencredit.models.co2e_derivation import DerivationError, evaluate
from greencredit.models.green import (
    DEFAULT_TAXONOMY_PATH,
    DIVERSION_ALERT,
    DIVERSION_ESCALATION,
    LOAN_PURPOSES,
    REFER_BAND_MARGIN,
    EsgDeclaration,
    Funder,
    GreenPricing,
    GreenPricingError,
    GreenTaxonomy,
    GreenTaxonomyError,
    IntegrityState,
    UnknownPurpose,
    approve_below_for,
    co2e_avoided_kg,
    esg_risk,
    load_taxonomy,
    observe_spend,
    portfolio_totals,
    price,
    route_to_funder,
    taxonomy_from_dict,
)
from greencredit.schemas import schema_dir

GREEN = LOAN_PURPOSES[:8]  # the schema doc: "The first eight are green purposes"


@pytest.fixture(scope="module")
def taxonomy() -> GreenTaxonomy:
    return load_taxonomy()


def shipped() -> dict[str, Any]:
    raw: dict[str, Any] = orjson.loads(DEFAULT_TAXONOMY_PATH.read_bytes())
    return raw


def figure(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "test figure", "source": "stated_choice"}


def stated(value: float) -> dict[str, Any]:
    """A derivation that simply states ``value`` (test-only numbers)."""
    return {"expression": "kg", "round_to": 1, "inputs": {"kg": figure(value)}}


def assert_refused(mutate: Any, message: str) -> None:
    """The shipped file, changed by ``mutate``, is refused with an error matching ``message``."""
    raw = copy.deepcopy(shipped())
    mutate(raw)
    with pytest.raises(GreenTaxonomyError, match=message):
        taxonomy_from_dict(raw)


def with_factors() -> GreenTaxonomy:
    """A copy of the shipped file with test-only numbers, to exercise the arithmetic."""
    raw = shipped()
    purposes = raw["purposes"]
    purposes["ELECTRIC_VEHICLE"]["co2e"].update(kg_co2e_avoided=1000.0, derivation=stated(1000.0))
    purposes["PUBLIC_TRANSPORT_PASS"]["co2e"].update(kg_co2e_avoided=0.5, derivation=stated(0.5))
    appliance = purposes["ENERGY_EFFICIENT_APPLIANCE"]["co2e"]
    appliance["by_grade"] = {"GRADE_1": 300.0, "GRADE_2": 150.0, "GRADE_3": None, "GRADE_4": None}
    appliance["derivation"] = {
        "expression": "kg",
        "per_grade": {
            "GRADE_1": {"inputs": {"kg": figure(300.0)}},
            "GRADE_2": {"inputs": {"kg": figure(150.0)}},
        },
    }
    return taxonomy_from_dict(raw)


# ---------------------------------------------------------------------------- taxonomy


def test_purposes_match_the_schema_enum():
    schema = json.loads((schema_dir() / "loan_application.avsc").read_text())
    purpose = next(f for f in schema["fields"] if f["name"] == "purpose")
    assert tuple(purpose["type"]["symbols"]) == LOAN_PURPOSES


def test_shipped_taxonomy_is_valid_and_covers_every_purpose(taxonomy):
    assert set(taxonomy.rules) == set(LOAN_PURPOSES)
    assert {p for p in LOAN_PURPOSES if taxonomy.is_green(p)} == set(GREEN)
    for purpose in GREEN:
        rule = taxonomy.purpose(purpose)
        assert rule.co2e is not None and rule.co2e.source.strip()
        assert rule.mccs and rule.category != "non-green"


def test_shipped_nulls_carry_a_note(taxonomy):
    for purpose in GREEN:
        factor = taxonomy.purpose(purpose).co2e
        assert factor is not None
        if factor.kg_co2e_avoided is None and not any(factor.by_grade.values()):
            assert factor.note


def test_fuel_never_fits_a_green_purpose(taxonomy):
    for purpose in GREEN:
        assert not {"5541", "5542"} & taxonomy.purpose(purpose).mccs


def test_unknown_purpose_is_named(taxonomy):
    with pytest.raises(UnknownPurpose, match="'YACHT'"):
        taxonomy.purpose("YACHT")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["purposes"].update({"YACHT": r["purposes"]["CAR"]}), "unknown.*YACHT"),
        (lambda r: r["purposes"].pop("HEAT_PUMP"), "missing.*HEAT_PUMP"),
        (lambda r: r["purposes"]["SOLAR_PV"]["co2e"].pop("source"), "SOLAR_PV.*source"),
        (lambda r: r["purposes"]["E_BIKE"]["co2e"].update(source=" "), "E_BIKE.*source"),
        (lambda r: r["purposes"]["E_BIKE"]["mccs"].append("594"), "E_BIKE.*'594'"),
        (lambda r: r["purposes"]["E_BIKE"]["mccs"].append(5940), "E_BIKE.*5940"),
        (lambda r: r["purposes"]["HEAT_PUMP"].update(co2e=None), "HEAT_PUMP.*co2e"),
        (lambda r: r["purposes"]["CAR"].update(green="yes"), "CAR.*green"),
        (
            lambda r: r["purposes"]["ELECTRIC_VEHICLE"]["co2e"].update(kg_co2e_avoided=-1),
            "ELECTRIC_VEHICLE.*negative",
        ),
        (
            lambda r: r["purposes"]["ENERGY_EFFICIENT_APPLIANCE"]["co2e"]["by_grade"].update(
                {"A+++": 1.0}
            ),
            "ENERGY_EFFICIENT_APPLIANCE.*A\\+\\+\\+",
        ),
        (
            lambda r: r["purposes"]["E_BIKE"]["co2e"].update(
                kg_co2e_avoided=None, derivation=None, note=" "
            ),
            "E_BIKE.*note",
        ),
        (
            lambda r: r["purposes"]["PUBLIC_TRANSPORT_PASS"]["co2e"].pop("currency"),
            "PUBLIC_TRANSPORT_PASS.*currency",
        ),
    ],
)
def test_invalid_taxonomy_is_rejected_naming_the_purpose(mutate, message):
    assert_refused(mutate, message)


def test_load_taxonomy_reads_a_given_path(tmp_path):
    raw = shipped()
    raw["purposes"]["TRAVEL"]["mccs"] = ["12345"]
    path = tmp_path / "bad.json"
    path.write_bytes(orjson.dumps(raw))
    with pytest.raises(GreenTaxonomyError, match=r"TRAVEL.*'12345'"):
        load_taxonomy(path)


# ---------------------------------------------------------------------------- CO2e


@pytest.mark.parametrize("purpose", GREEN)
def test_shipped_estimate_is_the_derived_figure_or_none(taxonomy, purpose):
    factor = taxonomy.purpose(purpose).co2e
    assert factor is not None
    estimate = co2e_avoided_kg(taxonomy, purpose, 10_000_00, "CNY", grade="GRADE_1")
    if factor.derivation is None and not factor.grade_derivations:
        assert estimate is None and factor.note  # no figure: say why, never guess
        return
    if factor.derivation is not None and factor.derivation.zero_because:
        # A zero claim: nothing credited, and only while its sourced bound is not positive.
        bound = factor.derivation.bound
        assert estimate == 0.0 and bound is not None and bound.value() <= 0
        return
    derived = factor.grade_derivations.get("GRADE_1", factor.derivation)
    assert derived is not None and estimate is not None and estimate > 0
    per_unit = derived.value()
    expected = per_unit * 10_000 if factor.basis == "per_currency_unit" else per_unit
    assert estimate == pytest.approx(expected)


def test_non_green_has_no_co2e(taxonomy):
    assert co2e_avoided_kg(taxonomy, "CAR", 10_000_00, "CNY") is None


def test_per_item_factor_counts_one_item_per_loan():
    tax = with_factors()
    assert co2e_avoided_kg(tax, "ELECTRIC_VEHICLE", 1, "CNY") == 1000.0
    assert co2e_avoided_kg(tax, "ELECTRIC_VEHICLE", 300_000_00, "EUR") == 1000.0


def test_per_currency_factor_needs_the_source_currency():
    tax = with_factors()
    assert co2e_avoided_kg(tax, "PUBLIC_TRANSPORT_PASS", 1_234_56, "CNY") == pytest.approx(617.28)
    assert co2e_avoided_kg(tax, "PUBLIC_TRANSPORT_PASS", 1_234_56, "USD") is None


@pytest.mark.parametrize(
    ("grade", "expected"),
    [("GRADE_1", 300.0), ("grade 2", 150.0), ("1", 300.0), ("GRADE_3", None), ("A+++", None)],
)
def test_appliance_grade(grade, expected):
    assert co2e_avoided_kg(with_factors(), "ENERGY_EFFICIENT_APPLIANCE", 1, "CNY", grade) == (
        expected
    )


def test_appliance_without_grade_or_unlisted_grade_gets_none():
    tax = with_factors()
    assert co2e_avoided_kg(tax, "ENERGY_EFFICIENT_APPLIANCE", 1, "CNY") is None
    assert co2e_avoided_kg(tax, "ENERGY_EFFICIENT_APPLIANCE", 1, "CNY", "GRADE_5") is None


# ---------------------------------------------------------------------------- CO2e derivations


def derivations(raw: dict[str, Any]) -> list[tuple[str, str | None, dict[str, Any], float]]:
    """(purpose, grade, inputs, stated factor) for every derived figure in a raw taxonomy."""
    found = []
    for purpose in GREEN:
        co2e = raw["purposes"][purpose]["co2e"]
        derivation = co2e.get("derivation")
        if derivation is None:
            continue
        if "zero_because" in derivation:
            bound = derivation["bound"]
            inputs = {k: v["value"] for k, v in bound["inputs"].items()}
            found.append((purpose, "bound", inputs, co2e["kg_co2e_avoided"]))
            continue
        common = {k: v["value"] for k, v in derivation.get("inputs", {}).items()}
        if not co2e.get("by_grade"):
            found.append((purpose, None, common, co2e["kg_co2e_avoided"]))
            continue
        for grade, entry in derivation["per_grade"].items():
            extra = {k: v["value"] for k, v in entry.get("inputs", {}).items()}
            found.append((purpose, grade, common | extra, co2e["by_grade"][grade]))
    return found


def _coal_mj(i: dict[str, float]) -> float:
    return i["coal_kgce_per_household"] * i["heating_share"] * i["kcal_per_kgce"] * i["mj_per_kcal"]


# Written out here independently of the expressions in the file: if either drifts, they disagree.
FORMULAS = {
    "ELECTRIC_VEHICLE": lambda i: (
        (i["bev_g_per_km"] / (1 - i["ice_reduction_fraction"]) - i["bev_g_per_km"])
        * i["km_per_year"] * i["distance_years"] / 1000
    ),
    "SOLAR_PV": lambda i: (
        i["system_kw"] * i["yield_kwh_per_kw_year"]
        * (i["grid_kg_per_kwh"] - i["pv_lifecycle_kg_per_kwh"]) * i["lifetime_years"]
    ),
    "HEAT_PUMP": lambda i: (
        _coal_mj(i) * i["coal_kg_co2_per_mmbtu"] / 1055.056
        - _coal_mj(i) / i["heat_pump_efficiency_ratio"] / 3.6 * i["grid_kg_per_kwh"]
    ) * i["lifetime_years"],
    "ENERGY_EFFICIENT_APPLIANCE": lambda i: (
        i["stock_kwh_per_year"] / i["stock_units"] * (1 - i["apf_market_average"] / i["apf_grade"])
        * i["grid_kg_per_kwh"] * i["lifetime_years"]
        if "apf_grade" in i else 0.0
    ),
    "HOME_INSULATION_RETROFIT": lambda i: (
        i["saving_mj_per_m2_year"] * i["floor_m2"] * i["coal_kg_co2_per_mmbtu"] / 1055.056
        * i["lifetime_years"]
    ),
    "GREEN_BUSINESS_TRANSFORMATION": lambda i: (
        i["annual_t_co2"] * 1000 / i["green_credit_cny"] * i["credited_years"]
    ),
}  # fmt: skip
# Zero claims: the least favourable saving per unit of use, which must not be positive.
BOUNDS = {
    "E_BIKE": lambda i: (
        (1 - i["bus_share"] - i["bicycle_share"]) * i["car_g_per_km_low"]
        - i["ebike_g_per_km_high"]
    ),
    "PUBLIC_TRANSPORT_PASS": lambda i: -i["bus_g_per_pkm"],
}  # fmt: skip


@pytest.mark.parametrize(("purpose", "grade", "inputs", "factor"), derivations(shipped()))
def test_each_shipped_factor_recomputes_from_its_stated_inputs(purpose, grade, inputs, factor):
    co2e = shipped()["purposes"][purpose]["co2e"]
    if grade == "bound":
        stated_bound = load_taxonomy().purpose(purpose).co2e.derivation.bound.value()
        assert factor == 0 and stated_bound == pytest.approx(BOUNDS[purpose](inputs), abs=0.05)
        assert stated_bound <= 0
        return
    half_last_digit = 0.5 * 10 ** -co2e["derivation"].get("round_to", 1)
    assert factor == pytest.approx(FORMULAS[purpose](inputs), abs=half_last_digit)


def test_every_green_purpose_has_a_sourced_factor_or_a_note():
    raw = shipped()
    derived = {purpose for purpose, *_ in derivations(raw)}
    for purpose in GREEN:
        co2e = raw["purposes"][purpose]["co2e"]
        if purpose in derived:
            assert co2e["assumptions"].strip() and co2e["source"].strip()
        else:
            assert co2e["note"].strip() and co2e["kg_co2e_avoided"] is None
    # Every green purpose has a figure: derived from sources, or a zero claim whose sourced
    # bound shows that nothing positive can be claimed.
    assert derived == set(GREEN)


def test_every_source_key_used_is_defined():
    raw = shipped()
    sources = raw["_sources"]
    used = set()
    for purpose in GREEN:
        derivation = raw["purposes"][purpose]["co2e"].get("derivation") or {}
        entries = [derivation.get("inputs", {})]
        entries += [g.get("inputs", {}) for g in derivation.get("per_grade", {}).values()]
        used |= {item["source"] for inputs in entries for item in inputs.values()}
    assert used and used <= set(sources)
    assert all(isinstance(text, str) and text.strip() for text in sources.values())


@pytest.mark.parametrize("purpose", GREEN)
def test_the_sources_a_purpose_cites_are_defined(purpose):
    # Null factors cite their partial inputs only in this text, so nothing else checks them.
    raw = shipped()
    cited = raw["purposes"][purpose]["co2e"]["source"].split("(")[0]
    keys = {key.strip() for key in cited.split(",") if key.strip()}
    assert keys and keys <= set(raw["_sources"]), keys - set(raw["_sources"])


def _solar(raw: dict[str, Any]) -> dict[str, Any]:
    co2e: dict[str, Any] = raw["purposes"]["SOLAR_PV"]["co2e"]
    return co2e


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda r: _solar(r)["derivation"]["inputs"]["system_kw"].update(value=6),
            "SOLAR_PV.*69198.0 but its inputs give 83037",
        ),
        (lambda r: _solar(r).update(kg_co2e_avoided=70000.0), "SOLAR_PV.*inputs give 69198.0"),
        (
            lambda r: _solar(r)["derivation"]["inputs"]["system_kw"].update(source="nowhere"),
            "SOLAR_PV.*system_kw.source.*'nowhere' is not a key of _sources",
        ),
        (
            lambda r: _solar(r)["derivation"].update(expression="__import__('os').getcwd()"),
            "SOLAR_PV.*only \\+ - \\* /",
        ),
        (
            lambda r: _solar(r)["derivation"].update(expression="system_kw * undefined_figure"),
            "SOLAR_PV.*'undefined_figure' is not one of the inputs",
        ),
        (
            lambda r: _solar(r)["derivation"]["inputs"].update(spare={"value": 1, "unit": "x",
                                                                      "source": "stated_choice"}),
            "SOLAR_PV.*spare not used",
        ),
        (lambda r: _solar(r).pop("derivation"), "SOLAR_PV.*needs a derivation"),
        (
            lambda r: _solar(r)["derivation"]["inputs"]["system_kw"].update(value=True),
            "SOLAR_PV.*system_kw.value.*finite number",
        ),
        (
            lambda r: r["purposes"]["ENERGY_EFFICIENT_APPLIANCE"]["co2e"]["by_grade"].update(
                GRADE_1=900.0
            ),
            "ENERGY_EFFICIENT_APPLIANCE.*GRADE_1.*inputs give 986.0",
        ),
        (
            lambda r: r["purposes"]["ENERGY_EFFICIENT_APPLIANCE"]["co2e"]["derivation"][
                "per_grade"
            ].pop("GRADE_2"),
            "ENERGY_EFFICIENT_APPLIANCE.*per_grade must derive exactly",
        ),
        (
            lambda r: r["purposes"]["E_BIKE"]["co2e"].update(
                kg_co2e_avoided=None, derivation=stated(5.0)
            ),
            "E_BIKE.*kg_co2e_avoided None but its inputs give 5.0",
        ),
        (
            lambda r: r["purposes"]["ENERGY_EFFICIENT_APPLIANCE"]["co2e"]["derivation"].update(
                expression="abs(apf_grade)"
            ),
            "ENERGY_EFFICIENT_APPLIANCE.*only \\+ - \\* /",
        ),
        (lambda r: r.update(_sources=["not", "a", "table"]), "_sources must be an object"),
        (lambda r: r["_sources"].update(gan_2023=" "), "_sources.gan_2023"),
    ],
)  # fmt: skip
def test_a_factor_that_does_not_follow_from_its_sources_is_rejected(mutate, message):
    assert_refused(mutate, message)


numbers = st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(numbers, numbers, numbers, numbers)
def test_evaluate_is_plain_arithmetic(a, b, c, d):
    values = {"a": a, "b": b, "c": c, "d": d}
    assert evaluate("a * (b - c) / d + -a", values) == pytest.approx(a * (b - c) / d - a)


@pytest.mark.parametrize(
    "expression",
    ["a ** 2", "a if b else c", "abs(a)", "a.real", "[a]", "'a'", "a @ b", "a / 0", "", "a +"],
)
def test_evaluate_refuses_anything_but_arithmetic(expression):
    with pytest.raises(DerivationError):
        evaluate(expression, {"a": 1.0, "b": 2.0, "c": 3.0})


def test_shipped_appliance_grades_are_ordered_and_foreign_labels_get_none(taxonomy):
    def kg(grade: str) -> float | None:
        return co2e_avoided_kg(taxonomy, "ENERGY_EFFICIENT_APPLIANCE", 1, "CNY", grade)

    assert (kg("GRADE_1") or 0) > (kg("GRADE_2") or 0) > 0
    assert kg("GRADE_3") == kg("GRADE_4") == kg("GRADE_5") == 0.0
    assert kg("A+++") is None


def test_shipped_per_yuan_factor_scales_with_the_amount_in_its_currency_only(taxonomy):
    small = co2e_avoided_kg(taxonomy, "GREEN_BUSINESS_TRANSFORMATION", 1_000_00, "CNY")
    large = co2e_avoided_kg(taxonomy, "GREEN_BUSINESS_TRANSFORMATION", 10_000_00, "CNY")
    assert small is not None and large == pytest.approx(10 * small)
    assert co2e_avoided_kg(taxonomy, "GREEN_BUSINESS_TRANSFORMATION", 1_000_00, "USD") is None


# ---------------------------------------------------------------------------- pricing


def test_green_discount_applied_only_to_green(taxonomy):
    policy = GreenPricing()
    assert price(policy, 0.5, "SOLAR_PV", taxonomy) == (600 + 600 - 50, 50)
    assert price(policy, 0.5, "TRAVEL", taxonomy) == (1200, 0)


def test_category_discount_overrides_default_and_is_capped(taxonomy):
    policy = GreenPricing(discount_by_category={"clean transport": 120}, max_discount_bps=100)
    assert price(policy, 0.0, "E_BIKE", taxonomy) == (500, 100)
    assert price(policy, 0.0, "HEAT_PUMP", taxonomy) == (550, 50)


@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(0, 2_000),
    st.integers(0, 2_000),
    st.integers(0, 5_000),
)
def test_rate_is_never_negative_and_integer(score, base, discount, cap):
    taxonomy = load_taxonomy()
    policy = GreenPricing(base_rate_bps=base, green_discount_bps=discount, max_discount_bps=cap)
    rate, applied = price(policy, score, "ELECTRIC_VEHICLE", taxonomy)
    assert isinstance(rate, int) and isinstance(applied, int)
    assert rate >= 0 and 0 <= applied <= min(discount, cap)


def test_pricing_round_trips_and_rejects_bad_fields():
    policy = GreenPricing(discount_by_category={"renewable energy": 75}, max_discount_bps=150)
    assert GreenPricing.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy
    with pytest.raises(GreenPricingError, match="surprise"):
        GreenPricing.from_dict({"surprise": 1})
    with pytest.raises(GreenPricingError, match="green_discount_bps"):
        GreenPricing(green_discount_bps=-5)
    with pytest.raises(GreenPricingError, match="green_approve_below_bonus"):
        GreenPricing(green_approve_below_bonus=1.5)


def test_approval_threshold_bonus_is_capped_below_decline(taxonomy):
    policy = GreenPricing(green_approve_below_bonus=0.05)
    kw = {"decline_at_or_above": 0.7}
    assert approve_below_for(policy, 0.4, "SOLAR_PV", taxonomy, **kw) == pytest.approx(0.45)
    assert approve_below_for(policy, 0.4, "CAR", taxonomy, **kw) == 0.4
    capped = approve_below_for(policy, 0.68, "SOLAR_PV", taxonomy, **kw)
    assert capped == pytest.approx(0.7 - REFER_BAND_MARGIN)
    # never lowers a lender threshold that already sits above the cap
    assert approve_below_for(policy, 0.695, "SOLAR_PV", taxonomy, **kw) == 0.695


# ---------------------------------------------------------------------------- ESG


def test_nothing_declared_is_none():
    assert esg_risk(EsgDeclaration()) is None


shares = st.floats(0, 1)
intensities = st.floats(0, 20_000)
certs = st.lists(st.sampled_from(["ISO14001", "ISO 50001", "China Green Factory", "other"]))


@given(shares, shares, intensities, st.integers(0, 5))
def test_more_renewables_never_raise_risk(a, b, intensity, violations):
    low, high = sorted((a, b))
    common = {"energy_intensity_kwh_per_10k_revenue": intensity}
    common["environmental_violations_3y"] = violations
    less = esg_risk(EsgDeclaration(renewable_share=low, **common))
    more = esg_risk(EsgDeclaration(renewable_share=high, **common))
    assert less is not None and more is not None and 0 <= more <= less <= 1


@given(certs, st.sampled_from(["ISO14001", "ISO50001", "CHINA_GREEN_FACTORY"]), shares)
def test_a_certification_never_raises_risk(existing, extra, share):
    before = esg_risk(EsgDeclaration(renewable_share=share, certifications=tuple(existing)))
    after = esg_risk(EsgDeclaration(renewable_share=share, certifications=(*existing, extra)))
    assert before is not None and after is not None and after <= before


@given(st.integers(0, 10), st.integers(0, 10), st.one_of(st.none(), shares))
def test_violations_never_lower_risk(a, b, share):
    few, many = sorted((a, b))
    r_few = esg_risk(EsgDeclaration(renewable_share=share, environmental_violations_3y=few))
    r_many = esg_risk(EsgDeclaration(renewable_share=share, environmental_violations_3y=many))
    assert r_few is not None and r_many is not None and r_few <= r_many


@given(intensities, intensities)
def test_higher_energy_intensity_never_lowers_risk(a, b):
    low, high = sorted((a, b))
    r_low = esg_risk(EsgDeclaration(energy_intensity_kwh_per_10k_revenue=low))
    r_high = esg_risk(EsgDeclaration(energy_intensity_kwh_per_10k_revenue=high))
    assert r_low is not None and r_high is not None and r_low <= r_high


def test_esg_declaration_rejects_nonsense():
    with pytest.raises(ValueError, match="renewable_share"):
        EsgDeclaration(renewable_share=1.2)
    with pytest.raises(ValueError, match="violations"):
        EsgDeclaration(environmental_violations_3y=-1)


# ---------------------------------------------------------------------------- integrity


def loan(purpose: str = "SOLAR_PV", principal: int = 100_000) -> IntegrityState:
    return IntegrityState("L1", purpose, principal, 0, 0, False, False)


def test_fitting_spend_is_silent(taxonomy):
    state, finding = observe_spend(loan(), "1731", 100_000, taxonomy)
    assert finding is None and state.spent_fitting_minor == 100_000


def test_alert_once_above_tolerance_then_escalation_once(taxonomy):
    state, finding = observe_spend(loan(), "5812", 20_000, taxonomy)
    assert finding is None  # exactly at tolerance: not above
    state, finding = observe_spend(state, "5812", 1, taxonomy)
    assert finding == DIVERSION_ALERT and state.alerted
    state, finding = observe_spend(state, "5812", 10_000, taxonomy)
    assert finding is None
    state, finding = observe_spend(state, "5812", 20_000, taxonomy)
    assert finding == DIVERSION_ESCALATION and state.escalated
    state, finding = observe_spend(state, "5812", 50_000, taxonomy)
    assert finding is None


def test_one_big_spend_reports_the_escalation(taxonomy):
    state, finding = observe_spend(loan(), "7995", 60_000, taxonomy)
    assert finding == DIVERSION_ESCALATION and state.alerted and state.escalated


def test_refunds_reduce_spend_but_never_below_zero(taxonomy):
    state, _ = observe_spend(loan(), "5812", 15_000, taxonomy)
    state, _ = observe_spend(state, "5812", -10_000, taxonomy)
    assert state.spent_other_minor == 5_000
    state, finding = observe_spend(state, "5812", 15_000, taxonomy)
    assert finding is None  # 20,000 is not above 20% of 100,000
    state, _ = observe_spend(state, "5812", -50_000, taxonomy)
    assert state.spent_other_minor == 0


def test_non_green_loans_never_produce_findings(taxonomy):
    state, finding = observe_spend(loan("TRAVEL"), "4511", 100_000, taxonomy)
    assert finding is None and state == loan("TRAVEL")


def test_integrity_state_round_trips_through_json(taxonomy):
    state, _ = observe_spend(loan(), "5812", 30_000, taxonomy)
    assert IntegrityState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_bad_mcc_is_rejected(taxonomy):
    with pytest.raises(ValueError, match="mcc"):
        observe_spend(loan(), "58", 1, taxonomy)


# ---------------------------------------------------------------------------- funders


FUNDERS = (
    Funder("bank-a", green_only=False, capacity_minor=1_000_000, max_risk_score=0.6),
    Funder("green-fund", green_only=True, capacity_minor=500_000, max_risk_score=0.4),
    Funder("solar-only", True, 2_000_000, 0.5, categories=("renewable energy",)),
)


def test_green_only_funder_first_for_green_loans(taxonomy):
    assert route_to_funder(FUNDERS, {}, 100_000, 0.3, "HEAT_PUMP", taxonomy) == "green-fund"


def test_category_mandate_filters(taxonomy):
    # both green-only funders fit SOLAR_PV; solar-only has the larger remaining share
    used = {"green-fund": 250_000}
    assert route_to_funder(FUNDERS, used, 100_000, 0.3, "SOLAR_PV", taxonomy) == "solar-only"


def test_non_green_goes_to_general_funders_only(taxonomy):
    assert route_to_funder(FUNDERS, {}, 100_000, 0.3, "TRAVEL", taxonomy) == "bank-a"


def test_risk_appetite_and_capacity(taxonomy):
    assert route_to_funder(FUNDERS, {}, 100_000, 0.45, "HEAT_PUMP", taxonomy) == "bank-a"
    used = {"green-fund": 450_000}
    assert route_to_funder(FUNDERS, used, 100_000, 0.3, "HEAT_PUMP", taxonomy) == "bank-a"


def test_none_when_nobody_can_take_it(taxonomy):
    assert route_to_funder(FUNDERS, {}, 100_000, 0.9, "HEAT_PUMP", taxonomy) is None
    assert route_to_funder(FUNDERS, {}, 5_000_000, 0.1, "SOLAR_PV", taxonomy) is None
    assert route_to_funder((), {}, 1, 0.0, "SOLAR_PV", taxonomy) is None


def test_tie_break_is_by_funder_id_whatever_the_order(taxonomy):
    twins = [Funder(fid, False, 1_000, 1.0) for fid in ("b", "a", "c")]
    for order in (twins, twins[::-1]):
        assert route_to_funder(order, {}, 10, 0.5, "CAR", taxonomy) == "a"


def test_remaining_share_beats_remaining_amount(taxonomy):
    funders = [Funder("big", False, 1_000_000, 1.0), Funder("small", False, 100_000, 1.0)]
    used = {"big": 800_000}  # 20% left vs 100% left
    assert route_to_funder(funders, used, 10_000, 0.5, "CAR", taxonomy) == "small"


# ---------------------------------------------------------------------------- portfolio


def test_portfolio_totals_per_tenant_with_integer_money(taxonomy):
    records = [
        {"tenant_id": "t1", "amount_minor": 100_000_00, "currency": "CNY",
         "purpose": "ELECTRIC_VEHICLE", "co2e_avoided_kg": 1500.0},
        {"tenant_id": "t1", "amount_minor": 20_000_00, "currency": "CNY",
         "purpose": "SOLAR_PV", "co2e_avoided_kg": None},
        {"tenant_id": "t1", "amount_minor": 5_000_01, "currency": "CNY",
         "purpose": "TRAVEL", "co2e_avoided_kg": None},
        {"tenant_id": "t2", "amount_minor": 7, "currency": "CNY",
         "purpose": "ELECTRIC_VEHICLE", "co2e_avoided_kg": 2.5},
    ]  # fmt: skip
    totals = portfolio_totals(records, taxonomy=taxonomy)
    t1 = totals["t1"]
    assert (t1["loans"], t1["green_loans"]) == (3, 2)
    assert t1["principal_minor"] == 125_000_01 and isinstance(t1["principal_minor"], int)
    assert t1["green_principal_minor"] == 120_000_00
    assert t1["co2e_avoided_kg"] == 1500.0
    assert t1["by_purpose"]["SOLAR_PV"] == {
        "loans": 1, "principal_minor": 20_000_00, "co2e_avoided_kg": 0.0
    }  # fmt: skip
    assert totals["t2"]["green_principal_minor"] == 7


def test_portfolio_refuses_float_money_and_mixed_currencies(taxonomy):
    base = {"tenant_id": "t", "purpose": "CAR", "co2e_avoided_kg": None, "currency": "CNY"}
    with pytest.raises(ValueError, match="integer"):
        portfolio_totals([base | {"amount_minor": 1.5}], taxonomy=taxonomy)
    mixed = [base | {"amount_minor": 1}, base | {"amount_minor": 1, "currency": "USD"}]
    with pytest.raises(ValueError, match="currencies"):
        portfolio_totals(mixed, taxonomy=taxonomy)


# ---------------------------------------------------------------------------- zero claims


def _bound_inputs(raw: dict[str, Any], purpose: str) -> dict[str, Any]:
    inputs: dict[str, Any] = raw["purposes"][purpose]["co2e"]["derivation"]["bound"]["inputs"]
    return inputs


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        # Shanghai's shares changed so that 45% would drive: the bound turns positive.
        (
            lambda r: _bound_inputs(r, "E_BIKE")["bicycle_share"].update(value=0.0),
            r"E_BIKE.*bound.*40\.5.*derive a factor",
        ),
        (
            lambda r: r["purposes"]["E_BIKE"]["co2e"].update(kg_co2e_avoided=12.0),
            "E_BIKE.*zero claim states kg_co2e_avoided 0",
        ),
        (
            lambda r: r["purposes"]["PUBLIC_TRANSPORT_PASS"]["co2e"]["derivation"].update(
                zero_because=" "
            ),
            "PUBLIC_TRANSPORT_PASS.*zero_because.*must say why",
        ),
        (
            lambda r: r["purposes"]["PUBLIC_TRANSPORT_PASS"]["co2e"]["derivation"]["bound"].pop(
                "unit"
            ),
            "PUBLIC_TRANSPORT_PASS.*bound.*unit",
        ),
        (
            lambda r: _bound_inputs(r, "PUBLIC_TRANSPORT_PASS")["bus_g_per_pkm"].update(
                source="nowhere"
            ),
            "PUBLIC_TRANSPORT_PASS.*'nowhere' is not a key of _sources",
        ),
    ],
)
def test_a_zero_claim_must_be_backed_by_a_non_positive_sourced_bound(mutate, message):
    assert_refused(mutate, message)


def test_zero_claim_loans_carry_zero_not_none(taxonomy):
    assert co2e_avoided_kg(taxonomy, "E_BIKE", 4_000_00, "CNY") == 0.0
    assert co2e_avoided_kg(taxonomy, "PUBLIC_TRANSPORT_PASS", 2_400_00, "CNY") == 0.0
    # The claim is per purpose, not per currency: a pass bought in another currency has none.
    assert co2e_avoided_kg(taxonomy, "PUBLIC_TRANSPORT_PASS", 2_400_00, "USD") is None
