"""The config schema and the stage settings dataclasses describe the same parameters:
same names, same defaults, same choices; and each stage's checks live in its dataclass."""

from dataclasses import MISSING, fields

import pytest
import yaml

from campaign import cli
from campaign.config import SCHEMA_PATH
from campaign.errors import CampaignError
from campaign.samplers.settings import SampleSettings
from campaign.settings import SettingError
from campaign.training import TrainSettings

SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())
# campaign-wide settings: top-level keys of the config, passed to every stage
CAMPAIGN_WIDE = {"seed", "device", "dtype", "checkpoint_interval"}
# (schema section, settings class, schema keys that are not settings, fields the section lacks)
STAGES = [
    ("model", TrainSettings, {"name", "beta0", "L0"}, CAMPAIGN_WIDE),
    ("sample", SampleSettings, {"beta", "L", "overrides"}, {"beta", "L"} | CAMPAIGN_WIDE),
]


@pytest.mark.parametrize("section, cls, identity, wide", STAGES, ids=[s[0] for s in STAGES])
def test_schema_section_is_the_settings_dataclass(section, cls, identity, wide):
    props = SCHEMA["$defs"][section]["properties"]
    by_name = {f.name: f for f in fields(cls)}
    assert set(props) - identity == set(by_name) - wide
    for key in set(props) - identity:
        sub, f = props[key], by_name[key]
        if f.default is not MISSING:  # a required field (n_samples) may have a campaign default
            assert sub.get("default") == f.default, f"{section}.{key}: schema {sub.get('default')!r} != {f.default!r}"
        if "choices" in f.metadata:
            assert sub["enum"] == list(f.metadata["choices"]), key
    for key in wide & set(by_name) & set(SCHEMA["properties"]) - {"device"}:  # device: "auto" in a campaign
        assert SCHEMA["properties"][key]["default"] == by_name[key].default, key


def test_sample_overrides_are_settings():
    props = SCHEMA["$defs"]["sample"]["properties"]
    override = set(props["overrides"]["items"]["properties"]) - {"beta", "L"}
    assert override <= {f.name for f in fields(SampleSettings)}


@pytest.mark.parametrize("cls, command", [(TrainSettings, "train"), (SampleSettings, "sample")])
def test_every_field_is_a_flag_with_its_default(cls, command):
    parser = cli.build_parser()
    required = {"train": ["--ensemble", "e", "--out", "o"],
                "sample": ["--model", "m", "--out", "o", "--beta", "1", "--L", "4", "--n-samples", "2"]}[command]
    args = parser.parse_args([command, *required])
    settings = cli.settings_from_args(cls, args)
    for f in fields(cls):
        if f.default is not MISSING:
            assert getattr(settings, f.name) == f.default, f.name


@pytest.mark.parametrize("cls, values, name", [
    (TrainSettings, {"sigma_min": 2.0, "sigma_max": 1.0}, "sigma_min"),
    (TrainSettings, {"steps": 10, "warmup": 11}, "warmup"),
    (TrainSettings, {"ema_decay": 1.0}, "ema_decay"),
    (TrainSettings, {"loops": "hexagon"}, "loops"),
    (SampleSettings, {"beta": 1.0, "L": 4, "n_samples": 2, "sigma_min": 2.0, "sigma_max": 1.0}, "sigma_min"),
    (SampleSettings, {"beta": 1.0, "L": 4, "n_samples": 2, "sigma_tail": 2.0, "sigma_max": 1.0}, "sigma_tail"),
    (SampleSettings, {"beta": 1.0, "L": 1, "n_samples": 2}, "L"),
    (SampleSettings, {"beta": 1.0, "L": 4, "n_samples": 2, "method": "maala", "tail_steps": 4, "tail_adapt": 4},
     "tail_adapt"),
])
def test_invalid_settings_name_the_field(cls, values, name):
    with pytest.raises(SettingError) as info:
        cls(**values)
    assert info.value.name == name and str(info.value).startswith(name)
    assert isinstance(info.value, CampaignError) and "\n" not in str(info.value)


def test_config_reports_a_settings_error_at_its_key():
    from campaign.config import ConfigError, validate_config

    cfg = {"groups": {"u1": {"hmc": {"beta": [1.0], "L": [4]},
                             "models": [{"beta0": 1.0, "L0": 4, "steps": 10, "warmup": 20}],
                             "sample": {"overrides": [{"beta": 1.0, "L": 4, "method": "maala", "tail_steps": 2,
                                                       "tail_adapt": 3}]}}}}
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    msg = str(info.value)
    assert "groups.u1.models[0].warmup: 20 warm-up steps exceed steps (10)" in msg
    assert "groups.u1.sample.tail_adapt: must be smaller than tail_steps" in msg
