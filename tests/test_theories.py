"""The theory registry is the one list of theories: every registered theory reaches the CLI,
the config, the Snakemake wildcards, the figures, the groups and the exact solution; the
exact solution has no per-theory branch of its own."""

import dataclasses
import math
import re
from pathlib import Path

import pytest

from campaign import exact, theories
from campaign.theories import THEORIES, THEORY_NAMES, UnknownGroupError, get_theory

ROOT = Path(__file__).resolve().parents[1]


def test_registry_is_consistent():
    assert THEORY_NAMES == ("u1", "su2", "u2") and list(THEORIES) == list(THEORY_NAMES)
    for name, theory in THEORIES.items():
        assert theory.name == name and get_theory(name.upper()) is theory
        group = theory.group
        assert (group.name, group.N, group.special) == (name, theory.N, theory.special)
        assert group.has_topology == theory.has_topology == (theory.theta is not None)
    with pytest.raises(UnknownGroupError, match="unknown gauge group 'su3'; choose one of u1, su2, u2"):
        get_theory("su3")


@pytest.mark.parametrize("name", THEORY_NAMES)
def test_every_theory_is_listed_everywhere(name):
    from campaign import cli, config, figures, groups

    assert name in cli.GROUP_CHOICES and name in config.GROUP_NAMES and name in groups.GROUP_NAMES
    assert groups.get_group(name).name == name
    assert figures.GROUP_LABEL[name] == THEORIES[name].label and name in figures.GROUP_ORDER
    assert (name in figures.TOPOLOGICAL) == THEORIES[name].has_topology
    assert f"beta_extrapolation_{name}" in figures.captions(8, figures.GROUP_ORDER)
    assert re.fullmatch(theories.wildcard_pattern(), name)
    result = exact.exact_observables(name, 1.5, 4)
    assert 0 < result["plaquette"] < 1 and ("chi_t" in result) == THEORIES[name].has_topology


def test_wildcard_constraint_comes_from_the_registry():
    text = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    (line,) = [ln for ln in text.splitlines() if ln.strip().startswith("group=")]
    assert "theory_wildcard_pattern()" in line
    pattern = theories.wildcard_pattern()
    assert not any(re.fullmatch(pattern, bad) for bad in ("su3", "u", "u1x", ""))


def test_a_new_theory_needs_no_branch_in_exact(monkeypatch):
    """A theory registered under a new name with U(1)'s expansion gives U(1)'s numbers: exact
    dispatches through the registry only."""
    dummy = dataclasses.replace(THEORIES["u1"], name="dummy", label="D(1)")
    monkeypatch.setitem(THEORIES, "dummy", dummy)
    assert get_theory("dummy") is dummy and theories.label("dummy") == "D(1)"
    assert exact.wilson_loop("dummy", 2.0, 6, 2, 3) == exact.wilson_loop("u1", 2.0, 6, 2, 3)
    assert exact.chi_t("dummy", 2.0, 6) == exact.chi_t("u1", 2.0, 6)
    ours = exact.exact_observables("dummy", 2.0, 6)
    assert ours["group"] == "dummy" and ours["wilson_loops"] == exact.exact_observables("u1", 2.0, 6)["wilson_loops"]
    no_topology = dataclasses.replace(dummy, has_topology=False, theta=None)
    monkeypatch.setitem(THEORIES, "dummy", no_topology)
    assert "chi_t" not in exact.exact_observables("dummy", 2.0, 6)
    with pytest.raises(ValueError, match="no topological charge"):
        exact.chi_t("dummy", 2.0, 6)


@pytest.mark.parametrize("path", ["exact.py", "figures", "analysis", "config.py", "observables.py"])
def test_no_theory_names_spelled_out(path):
    """Code that lists or branches on theories reads the registry instead of naming them."""
    root = ROOT / "src" / "campaign" / path
    for f in [root] if root.is_file() else sorted(root.glob("*.py")):
        code = [ln for ln in f.read_text().splitlines() if not ln.lstrip().startswith(("#", '"""'))]
        hits = [ln for ln in code if re.search(r"""(==|!=|in)\s*\(?["'](u1|su2|u2)["']""", ln)]
        assert not hits, (f.name, hits)


def test_labels_and_topology_helpers():
    assert theories.label("su2") == "SU(2)" and theories.label("phi4") == "phi4"
    assert theories.topological_names() == ("u1", "u2")
    assert math.isclose(THEORIES["su2"].coefficient(2.0, 1), exact.character_coefficient("su2", 2.0, 1))


def test_observable_registry_resolves_and_translates():
    """Each observable names real functions; a Wilson loop has one spelling, W_RxT, and the
    registry translates it to the exact JSON's RxT key."""
    import campaign.exact
    import campaign.observables
    from campaign.theories.observables import (
        OBSERVABLES, exact_loop_key, exact_value, get_observable, loop_name, parse_loop)

    for obs in OBSERVABLES.values():
        assert obs.measure is None or obs.measure_function() is getattr(campaign.observables, obs.measure.split(":")[1])
        assert obs.exact is None or obs.exact_function() is getattr(campaign.exact, obs.exact.split(":")[1])
        assert obs.exact is not None or obs.exact_value is not None or obs.measure is not None
    assert parse_loop(loop_name(3, 12)) == (3, 12) and parse_loop("plaquette") is None and parse_loop("W_3x") is None
    assert get_observable("W_2x3") is OBSERVABLES["W_RxT"] and campaign.observables.loop_names(2) == [
        "W_1x1", "W_1x2", "W_2x2"]
    result = campaign.exact.exact_observables("u2", 1.5, 6, max_loop=3)
    assert exact_loop_key(2, 3) in result["wilson_loops"]
    assert exact_value(result, "W_2x3") == exact_value(result, "W_3x2") == result["wilson_loops"]["2x3"]
    assert exact_value(result, "W_2x3") == OBSERVABLES["W_RxT"].exact_function()("u2", 1.5, 6, 2, 3)
    assert exact_value(result, "plaquette") == result["plaquette"] and exact_value(result, "chi_t") == result["chi_t"]
    assert exact_value(None, "Q") == 0.0 and math.isnan(exact_value(result, "W_4x4"))
    assert math.isnan(exact_value(result, "acceptance")) and math.isnan(exact_value(None, "plaquette"))
