"""campaign.config: schema defaults, semantic checks, messages that name the key."""

import copy

import pytest
import yaml

from campaign.config import (
    SCHEMA_PATH,
    ConfigError,
    ensemble_points,
    exact_points,
    format_beta,
    hmc_settings,
    sample_points,
    sample_settings,
    validate_config,
)
from campaign.seeds import seed_from

BASE = {
    "groups": {
        "u1": {
            "hmc": {"beta": [1, 2], "L": [8, 12]},
            "models": [{"beta0": 1, "L0": 8}],
            "sample": {"beta": [1, 2, 3], "L": [8]},
        },
        "su2": {"hmc": {"beta": [2], "L": [6]}},
    }
}


def with_change(path, value):
    cfg = copy.deepcopy(BASE)
    node = cfg
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return cfg


def test_defaults_and_normalisation():
    cfg = validate_config(BASE)
    assert cfg["seed"] == 0 and cfg["device"] == "auto" and cfg["dtype"] == "float64"
    u1 = cfg["groups"]["u1"]
    assert u1["hmc"]["n_configs"] == 200 and u1["hmc"]["integrator"] == "omelyan"
    assert u1["hmc"]["beta"] == [1.0, 2.0] and all(isinstance(b, float) for b in u1["hmc"]["beta"])
    assert u1["models"][0]["name"] == "b1_L8" and u1["models"][0]["steps"] >= 1
    su2 = cfg["groups"]["su2"]
    assert su2["models"] == [] and su2["exact"] is True
    # sample targets default to the HMC grid
    assert su2["sample"]["beta"] == [2.0] and su2["sample"]["L"] == [6]
    # the input is not modified, defaults are not shared between groups
    assert "seed" not in BASE and "models" not in BASE["groups"]["su2"]
    assert u1["sample"] is not su2["sample"]


def test_points():
    cfg = validate_config(BASE)
    assert len(ensemble_points(cfg)) == 2 * 2 + 1
    assert len(sample_points(cfg)) == 3  # one model x 3 betas x 1 L
    # exact at the union of the HMC grid and the sample targets
    ex = {(p.group, p.beta, p.L) for p in exact_points(cfg)}
    assert ("u1", 3.0, 8) in ex and ("u1", 2.0, 12) in ex and ("su2", 2.0, 6) in ex
    assert len(ex) == 4 + 1 + 1


def test_format_beta_round_trips():
    for b in (0, 1, 2.5, 0.1, 1 / 3, 7.25, 1e-5, 12):
        text = format_beta(b)
        assert float(text) == float(b)
        assert not text.endswith(".0")
    assert format_beta(1.0) == "1" and format_beta(2.5) == "2.5"
    # the wildcard text and the config value give the same seed
    assert seed_from("hmc", "u1", format_beta(2.0), "8", base=3) == seed_from("hmc", "u1", 2.0, 8, base=3)


def test_odd_L_is_allowed():
    cfg = validate_config(with_change(["groups", "su2", "hmc", "L"], [5, 7]))
    assert cfg["groups"]["su2"]["hmc"]["L"] == [5, 7]


def test_hmc_overrides():
    cfg = with_change(["groups", "u1", "hmc", "overrides"], [{"beta": 1, "L": 8, "n_configs": 7}])
    cfg = validate_config(cfg)
    assert hmc_settings(cfg, "u1", 1.0, 8)["n_configs"] == 7
    assert hmc_settings(cfg, "u1", 2.0, 8)["n_configs"] == 200
    assert "overrides" not in hmc_settings(cfg, "u1", 1.0, 8)


def test_sample_overrides():
    cfg = with_change(["groups", "u1", "sample", "overrides"], [{"beta": 3, "L": 8, "n_samples": 5, "batch": 1}])
    cfg = validate_config(cfg)
    assert sample_settings(cfg, "u1", 3.0, 8)["n_samples"] == 5 and sample_settings(cfg, "u1", 3.0, 8)["batch"] == 1
    assert sample_settings(cfg, "u1", 1.0, 8)["n_samples"] == 200
    assert not {"overrides", "beta", "L"} & set(sample_settings(cfg, "u1", 3.0, 8))
    bad = with_change(["groups", "u1", "sample", "overrides"], [{"beta": 3, "L": 12, "n_level": 5}])
    with pytest.raises(ConfigError) as exc:
        validate_config(bad)
    assert "groups.u1.sample.overrides[0].n_level: not a setting of groups.u1.sample" in str(exc.value)
    assert "(beta=3, L=12) is not on the sample grid" in str(exc.value)


BAD = [
    ("unknown group", ["groups", "u3"], {"hmc": {"beta": [1], "L": [4]}}, "groups.u3: unknown gauge group 'u3'"),
    ("negative beta", ["groups", "u1", "hmc", "beta"], [1, -2], "groups.u1.hmc.beta[1]: must be >= 0"),
    ("L too small", ["groups", "u1", "hmc", "L"], [1], "groups.u1.hmc.L[0]: must be >= 2"),
    ("L as string", ["groups", "u1", "hmc", "L"], ["8"], "groups.u1.hmc.L[0]: expected an integer"),
    ("fractional n_configs", ["groups", "u1", "hmc", "n_configs"], 10.5, "groups.u1.hmc.n_configs: expected an integer"),
    ("beta as string", ["groups", "u1", "hmc", "beta"], ["one"], "groups.u1.hmc.beta[0]: expected a number"),
    ("unknown key", ["groups", "u1", "hmc", "nconfigs"], 10, "groups.u1.hmc.nconfigs: unknown key 'nconfigs'"),
    ("missing grid", ["groups", "u1", "hmc", "beta"], KeyError, "groups.u1.hmc: missing required key 'beta'"),
    ("empty grid", ["groups", "u1", "hmc", "L"], [], "groups.u1.hmc.L: needs at least 1 entry"),
    ("no groups", ["groups"], KeyError, "missing required key 'groups'"),
    ("bad dtype", ["dtype"], "float16", "dtype: must be one of float64, float32"),
    ("bad device", ["device"], "gpu", "device: 'gpu' does not match"),
    ("zero beta0", ["groups", "u1", "models", 0, "beta0"], 0, "groups.u1.models[0].beta0: must be > 0"),
    ("negative sample beta", ["groups", "u1", "sample", "beta"], [-1], "groups.u1.sample.beta[0]: must be >= 0"),
    ("steps as bool", ["groups", "u1", "models", 0, "steps"], True, "groups.u1.models[0].steps: expected an integer"),
    ("training beta off grid", ["groups", "u1", "models", 0, "beta0"], 1.5,
     "groups.u1.models[0]: no training ensemble: (beta0=1.5, L0=8) is not on the HMC grid"),
    ("training L off grid", ["groups", "u1", "models", 0, "L0"], 16, "add 16 to groups.u1.hmc.L"),
    ("max_loop beyond L", ["max_loop"], 7, "max_loop: 7 exceeds the lattice size groups.su2.hmc.L[0] = 6"),
    ("sigma order", ["groups", "u1", "models", 0, "sigma_min"], 5.0, "groups.u1.models[0].sigma_min: must be smaller than sigma_max"),
    ("tail_adapt too long", ["groups", "u1", "sample", "tail_adapt"], 300, "groups.u1.sample.tail_adapt: must be smaller than tail_steps"),
    ("override off grid", ["groups", "u1", "hmc", "overrides"], [{"beta": 5, "L": 8, "n_configs": 3}],
     "groups.u1.hmc.overrides[0]: (beta=5, L=8) is not on the HMC grid"),
]


@pytest.mark.parametrize("path,value,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_names_the_key(path, value, message):
    with pytest.raises(ConfigError) as info:
        validate_config(with_change(path, value))
    assert message in str(info.value)


def test_duplicate_model_names():
    cfg = with_change(["groups", "u1", "models"], [{"beta0": 1, "L0": 8}, {"beta0": 1, "L0": 8, "steps": 5}])
    with pytest.raises(ConfigError, match=r"groups\.u1\.models\[1\]\.name: model name 'b1_L8' is already used"):
        validate_config(cfg)
    cfg["groups"]["u1"]["models"][1]["name"] = "short"
    assert [m["name"] for m in validate_config(cfg)["groups"]["u1"]["models"]] == ["b1_L8", "short"]


def test_every_problem_is_listed():
    cfg = with_change(["groups", "u1", "hmc", "beta"], [-1])
    cfg["groups"]["su2"]["hmc"]["L"] = [0]
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    text = str(info.value)
    assert "groups.u1.hmc.beta[0]" in text and "groups.su2.hmc.L[0]" in text


def test_non_mapping_sections():
    with pytest.raises(ConfigError, match=r"groups\.u1\.hmc: expected a mapping"):
        validate_config(with_change(["groups", "u1", "hmc"], 5))
    with pytest.raises(ConfigError, match="a campaign config is a mapping"):
        validate_config(["groups"])


def test_schema_is_2020_12_with_defaults():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["seed"]["default"] == 0


def test_cli_check(tmp_path, capsys):
    from campaign.config import main

    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(BASE))
    assert main([str(good)]) == 0
    assert "model b1_L8" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(with_change(["groups", "u1", "hmc", "beta"], [-1])))
    assert main([str(bad)]) == 1
    assert "groups.u1.hmc.beta[0]" in capsys.readouterr().err


STAGE_API = [
    ("hmc", "campaign.hmc", "generate_ensemble", {"beta", "L", "overrides"}),
]


def _schema_props(section):
    return yaml.safe_load(SCHEMA_PATH.read_text())["$defs"][section]["properties"]


@pytest.mark.parametrize("section,module,func,grid_keys", STAGE_API, ids=[s[0] for s in STAGE_API])
def test_schema_matches_library_signature(section, module, func, grid_keys):
    """Every stage setting of the schema is a keyword of the library function the workflow
    script passes it to, with the same default, so config and library cannot drift."""
    import importlib
    import inspect

    fn = getattr(importlib.import_module(module), func)
    params = inspect.signature(fn).parameters
    for key, sub in _schema_props(section).items():
        if key in grid_keys:
            continue
        assert key in params, f"schema {section}.{key} is not a parameter of {module}.{func}"
        default = params[key].default
        if "default" in sub and default is not inspect.Parameter.empty:
            assert sub["default"] == default, f"{section}.{key}: schema {sub['default']!r} != library {default!r}"


def test_schema_groups_are_the_registered_theories():
    """The schema's groups keys (its only list of groups) are exactly campaign.theories."""
    from campaign.theories import THEORY_NAMES

    groups = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["groups"]
    assert list(groups["properties"]) == list(THEORY_NAMES) and groups["additionalProperties"] is False
