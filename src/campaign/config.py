"""Campaign configuration: JSON-schema validation with defaults, semantic checks, and the
list of (group, beta, L) points every stage runs at.

``validate_config(config)`` returns a normalised deep copy (defaults filled in, beta as
float, L as int, every model named, sample targets resolved) or raises ``ConfigError``
whose message names each offending key as a dotted path, e.g.
``groups.u1.hmc.beta[1]: must be >= 0, got -1``.  The Snakefile calls it before building
the job graph, so a bad config fails before any job runs.

Decisions (documented in docs/workflow.md):

* Lattice size: any integer L >= 2.  Even L is *not* required: HMC updates every link at
  once (no checkerboard), the L-CNN is translation-equivariant on any torus, the exact
  results hold for any L, and Wilson loops are measured up to floor(L/2) by default.
  L = 1 is refused: the single plaquette of a 1 x 1 torus is a commutator of two links.
* Training ensembles are not added silently: a model's (beta0, L0) must lie on its group's
  HMC grid (hmc.beta x hmc.L), so the ensemble it learns from is also a measured reference
  point with exact results, and its cost is visible in the config.
* Sampling targets (``sample.beta``, ``sample.L``) are shared by every model of a group and
  default to the HMC grid.
* Wildcards: beta is written with ``format_beta`` (shortest repr, "1" for 1.0), which
  reads back to the identical float.

This module knows nothing of Snakemake; ``python -m campaign.config CONFIG.yaml`` checks a
config file and prints the points of each stage.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

from .errors import CampaignError
from .settings import SettingError
from .theories import THEORY_NAMES

GROUP_NAMES = THEORY_NAMES  # the registered theories (campaign.theories)

# the schema ships with the workflow; found here for an editable / source install
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(CampaignError):
    """An invalid campaign configuration; the message names the offending keys."""


# ------------------------------------------------------------------------ helpers
def format_beta(beta) -> str:
    """Wildcard text of a coupling: shortest round-tripping repr, without a trailing .0
    (1.0 -> "1", 2.5 -> "2.5"); ``float(format_beta(b)) == b`` exactly."""
    text = repr(float(beta))
    return text[:-2] if text.endswith(".0") else text


def default_model_name(beta0, L0) -> str:
    return f"b{format_beta(beta0)}_L{int(L0)}"


def key_path(parts) -> str:
    """("groups", "u1", "hmc", "beta", 1) -> "groups.u1.hmc.beta[1]"."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "(top level)"


def load_schema(path: str | Path | None = None) -> dict:
    import yaml

    path = Path(path) if path is not None else SCHEMA_PATH
    if not path.exists():
        raise ConfigError(f"config schema not found: {path}")
    with open(path) as f:
        return yaml.safe_load(f)


def _strict_loader():
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML silently keeps
    the later value: a campaign would run with half of what its author wrote)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        loader.flatten_mapping(node)
        first: dict = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                if key in first:
                    mark = key_node.start_mark
                    raise ConfigError(f"{mark.name}:{mark.line + 1}: duplicate key {key!r} "
                                      f"(first given on line {first[key]})")
                first[key] = key_node.start_mark.line + 1
            except TypeError:  # unhashable key: construct_mapping reports it
                pass
        return loader.construct_mapping(node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return StrictLoader


def load_yaml(path: str | Path):
    """Read a YAML file strictly (no duplicate keys); errors are one ConfigError line that
    names the file and line."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path) as f:
            return yaml.load(f, Loader=_strict_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise ConfigError(f"{where}: invalid YAML: {what}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None


def load_config_file(path: str | Path) -> dict:
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a campaign config is a mapping, got {type(data).__name__}")
    return data


# ------------------------------------------------------------------ schema errors
_BOUNDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
_TYPE_WORDS = {
    "integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
    "object": "a mapping", "array": "a list", "null": "null",
}


def _describe(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def _format_schema_error(err) -> str:
    path = list(err.absolute_path)
    where = key_path(path)
    kind, arg, value = err.validator, err.validator_value, err.instance
    if kind == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        lines = []
        for key in extra:
            sub = key_path([*path, key])
            if path == ["groups"]:
                lines.append(f"{sub}: unknown gauge group {key!r}; choose one of {', '.join(GROUP_NAMES)}")
            else:
                lines.append(f"{sub}: unknown key {key!r} (allowed here: {', '.join(allowed)})")
        return "\n".join(lines) or f"{where}: {err.message}"
    if kind == "type":
        types = arg if isinstance(arg, list) else [arg]
        want = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        return f"{where}: expected {want}, got {_describe(value)}"
    if kind == "required":
        missing = [k for k in arg if not (isinstance(value, dict) and k in value)]
        return f"{where}: missing required key {', '.join(repr(k) for k in missing)}"
    if kind in _BOUNDS:
        return f"{where}: must be {_BOUNDS[kind]} {arg}, got {value}"
    if kind == "enum":
        return f"{where}: must be one of {', '.join(map(str, arg))}, got {value!r}"
    if kind == "pattern":
        return f"{where}: {value!r} does not match the pattern {arg}"
    if kind in ("minItems", "minProperties"):
        return f"{where}: needs at least {arg} entr{'y' if arg == 1 else 'ies'}"
    if kind == "uniqueItems":
        return f"{where}: entries must be distinct, got {value}"
    return f"{where}: {err.message}"


def _validator_with_defaults(schema: dict):
    """A Draft 2020-12 validator that fills in ``default`` values while validating (a
    deep copy each time, so no two places share one default object)."""
    from jsonschema import Draft202012Validator, validators

    validate_properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema_):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema_)

    cls = validators.extend(Draft202012Validator, {"properties": set_defaults})
    return cls(schema)


def _schema_errors(config: dict, schema: dict) -> list[str]:
    validator = _validator_with_defaults(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    messages: list[str] = []
    for err in errors:
        msg = _format_schema_error(err)
        if msg not in messages:
            messages.append(msg)
    return messages


# ----------------------------------------------------------------- validation
def validate_config(config: dict, schema: dict | str | Path | None = None, source: str | None = None) -> dict:
    """Check a campaign config; return a normalised deep copy with defaults filled in.

    Raises ConfigError listing every problem, one line each, each naming its key.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"a campaign config is a mapping, got {type(config).__name__}")
    if not isinstance(schema, dict):
        schema = load_schema(schema)
    cfg = copy.deepcopy(dict(config))
    head = f"invalid campaign config{f' ({source})' if source else ''}:"

    messages = _schema_errors(cfg, schema)
    if messages:
        raise ConfigError("\n  ".join([head, *messages]))
    messages = _semantic_errors(cfg)
    if messages:
        raise ConfigError("\n  ".join([head, *messages]))
    return cfg


def _semantic_errors(cfg: dict) -> list[str]:
    """Checks a schema cannot express (those of one stage's settings are the settings
    dataclass's own); also normalises cfg in place."""
    from .samplers.settings import SampleSettings
    from .training import TrainSettings
    from .phi4.config import semantic_errors as phi4_errors
    from .weights.config import semantic_errors as weights_errors

    errors: list[str] = weights_errors(cfg) + phi4_errors(cfg)
    if not cfg["groups"] and not {"weights", "phi4", "complex_langevin"} & set(cfg):
        errors.append("(top level): missing required key 'groups' (or a 'weights', 'phi4' or 'complex_langevin' section)")
    for gname, g in cfg["groups"].items():
        base = ("groups", gname)
        hmc = g["hmc"]
        hmc["beta"] = [float(b) + 0.0 for b in hmc["beta"]]  # + 0.0: -0.0 is 0 (file names say "0")
        hmc["L"] = [int(x) for x in hmc["L"]]
        for i, b in enumerate(hmc["beta"]):
            errors += _beta_errors(b, [*base, "hmc", "beta", i])

        errors += _override_errors(hmc, [*base, "hmc"], "HMC grid")
        names: dict[str, int] = {}
        for i, m in enumerate(g["models"]):
            where = [*base, "models", i]
            m["beta0"] = float(m["beta0"]) + 0.0
            m["L0"] = int(m["L0"])
            m.setdefault("name", default_model_name(m["beta0"], m["L0"]))
            if m["name"] in names:
                errors.append(
                    f"{key_path([*where, 'name'])}: model name {m['name']!r} is already used by "
                    f"{key_path([*base, 'models', names[m['name']]])}; give each model a distinct name"
                )
            names.setdefault(m["name"], i)
            errors += _settings_errors(TrainSettings, model_train_settings(m), where)
            # L-Conv offsets -(K-1)..K-1 must be distinct sites of the smallest lattice it meets
            smallest = min([m["L0"], *[int(x) for x in g["sample"].get("L", hmc["L"])]])
            if 2 * m["kernel_size"] - 1 > smallest:
                errors.append(f"{key_path([*where, 'kernel_size'])}: {m['kernel_size']} spans "
                              f"{2 * m['kernel_size'] - 1} sites, more than the lattice size L={smallest}")
            missing = []
            if m["beta0"] not in hmc["beta"]:
                missing.append(f"add {format_beta(m['beta0'])} to {key_path([*base, 'hmc', 'beta'])}")
            if m["L0"] not in hmc["L"]:
                missing.append(f"add {m['L0']} to {key_path([*base, 'hmc', 'L'])}")
            if missing:
                errors.append(
                    f"{key_path(where)}: no training ensemble: (beta0={format_beta(m['beta0'])}, "
                    f"L0={m['L0']}) is not on the HMC grid {key_path([*base, 'hmc'])} "
                    f"(beta {[format_beta(b) for b in hmc['beta']]} x L {hmc['L']}); "
                    + " and ".join(missing)
                )

        sample = g["sample"]
        if "beta" in sample:  # (the default, hmc.beta, is checked above)
            for i, b in enumerate(sample["beta"]):
                errors += _beta_errors(float(b), [*base, "sample", "beta", i])
        sample["beta"] = [float(b) + 0.0 for b in sample.get("beta", hmc["beta"])]
        sample["L"] = [int(x) for x in sample.get("L", hmc["L"])]
        sample_errors = _override_errors(sample, [*base, "sample"], "sample grid")
        for b in [] if sample_errors else sample["beta"]:  # each point with its overrides
            for L in sample["L"]:
                for e in _settings_errors(SampleSettings, {"beta": b, "L": L, **_point_settings(sample, b, L)},
                                          [*base, "sample"]):
                    if e not in sample_errors:
                        sample_errors.append(e)
        errors += sample_errors
    if cfg["max_loop"] is not None and not errors:
        for gname, g in cfg["groups"].items():
            for section in ("hmc", "sample"):
                for i, L in enumerate(g[section]["L"]):
                    if cfg["max_loop"] > L:
                        errors.append(
                            f"max_loop: {cfg['max_loop']} exceeds the lattice size "
                            f"{key_path(['groups', gname, section, 'L', i])} = {L}"
                        )
    return errors


def _settings_errors(cls, values: dict, where: list) -> list[str]:
    """The check of a stage's settings dataclass, as a message naming the config key."""
    try:
        cls(**values)
    except SettingError as exc:
        return [f"{key_path([*where, exc.name])}: {exc.reason}"]
    return []


def _beta_errors(beta: float, where: list) -> list[str]:
    from .bounds import BETA_MAX

    if not math.isfinite(beta):
        return [f"{key_path(where)}: must be finite, got {beta}"]
    if beta > BETA_MAX:
        return [f"{key_path(where)}: {beta:g} is beyond the supported range [0, {BETA_MAX:g}] (campaign.bounds)"]
    return []


def _override_errors(section: dict, base: list, grid_name: str) -> list[str]:
    """Overrides of single grid points must lie on the section's grid, once each (and are
    normalised in place)."""
    errors = []
    seen: dict[tuple, int] = {}
    allowed = set(section) - {"beta", "L", "overrides"}  # the section's settings (defaults filled in)
    for i, o in enumerate(section.get("overrides", [])):
        o["beta"], o["L"] = float(o["beta"]), int(o["L"])
        where = key_path([*base, "overrides", i])
        for key in sorted(set(o) - allowed - {"beta", "L"}):
            errors.append(f"{key_path([*base, 'overrides', i, key])}: not a setting of {key_path(base)}")
        point = f"(beta={format_beta(o['beta'])}, L={o['L']})"
        if o["beta"] not in section["beta"] or o["L"] not in section["L"]:
            errors.append(f"{where}: {point} is not on the {grid_name} "
                          f"(beta {[format_beta(b) for b in section['beta']]} x L {section['L']})")
        if (o["beta"], o["L"]) in seen:
            errors.append(f"{where}: {point} is already overridden by {key_path([*base, 'overrides', seen[(o['beta'], o['L'])]])}")
        seen.setdefault((o["beta"], o["L"]), i)
    return errors


# ------------------------------------------------------------------ the points
@dataclass(frozen=True)
class Point:
    group: str
    beta: float
    L: int

    @property
    def b(self) -> str:
        return format_beta(self.beta)


@dataclass(frozen=True)
class SamplePoint(Point):
    """A target point of one model (the model's name: its training beta0 and L0)."""

    model: str


def _point_settings(section: dict, beta, L) -> dict:
    out = {k: v for k, v in section.items() if k not in ("beta", "L", "overrides")}
    for o in section.get("overrides", []):
        if o["beta"] == float(beta) and o["L"] == int(L):
            out.update({k: v for k, v in o.items() if k not in ("beta", "L")})
    return out


def hmc_settings(cfg: dict, group: str, beta, L) -> dict:
    """HMC settings of one grid point: the group's hmc section without the grid and the
    overrides, updated by the override for (beta, L) if there is one."""
    return _point_settings(cfg["groups"][group]["hmc"], beta, L)


MODEL_KEYS = ("name", "beta0", "L0")  # a model entry's identity; the rest is its TrainSettings


def model_train_settings(model: dict) -> dict:
    """A model entry's training settings (the keywords of ``training.TrainSettings``)."""
    return {k: v for k, v in model.items() if k not in MODEL_KEYS}


def sample_settings(cfg: dict, group: str, beta, L) -> dict:
    """Sampler settings of one target point, the same way (``sample.overrides``)."""
    return _point_settings(cfg["groups"][group]["sample"], beta, L)


def ensemble_points(cfg: dict) -> list[Point]:
    """Every HMC ensemble: the grid hmc.beta x hmc.L of each group."""
    return [
        Point(g, b, L)
        for g, grp in cfg["groups"].items()
        for b in grp["hmc"]["beta"]
        for L in grp["hmc"]["L"]
    ]


def model_entries(cfg: dict) -> list[tuple[str, dict]]:
    """(group, model dict) for every model."""
    return [(g, m) for g, grp in cfg["groups"].items() for m in grp["models"]]


def find_model(cfg: dict, group: str, name: str) -> dict:
    for m in cfg["groups"][group]["models"]:
        if m["name"] == name:
            return m
    raise ConfigError(f"groups.{group}.models: no model named {name!r}")


def sample_points(cfg: dict) -> list[SamplePoint]:
    """Every sample file: each model of a group at each of the group's sample targets."""
    out = []
    for g, grp in cfg["groups"].items():
        for m in grp["models"]:
            for b in grp["sample"]["beta"]:
                for L in grp["sample"]["L"]:
                    out.append(SamplePoint(g, b, L, model=m["name"]))
    return out


def exact_points(cfg: dict) -> list[Point]:
    """Every (group, beta, L) with an ensemble or a sample, for groups with exact: true."""
    seen: dict[Point, None] = {}
    for p in ensemble_points(cfg):
        if cfg["groups"][p.group]["exact"]:
            seen[p] = None
    for s in sample_points(cfg):
        if cfg["groups"][s.group]["exact"]:
            seen[Point(s.group, s.beta, s.L)] = None
    return list(seen)


def summary(cfg: dict) -> str:
    """A few lines saying what the campaign will run."""
    from .weights.config import summary as weights_summary

    lines = []
    for g, grp in cfg["groups"].items():
        hmc = grp["hmc"]
        lines.append(
            f"{g}: hmc beta {[format_beta(b) for b in hmc['beta']]} x L {hmc['L']} "
            f"({hmc['n_configs']} configs each)"
        )
        for m in grp["models"]:
            lines.append(
                f"  model {m['name']}: trained at beta0={format_beta(m['beta0'])} L0={m['L0']}, "
                f"{m['steps']} steps"
            )
        if grp["models"]:
            s = grp["sample"]
            lines.append(
                f"  samples at beta {[format_beta(b) for b in s['beta']]} x L {s['L']} "
                f"({s['n_samples']} each, every model)"
            )
    if cfg.get("weights"):
        lines.append(weights_summary(cfg))
    if cfg.get("phi4"):
        from .phi4.config import summary as phi4_summary

        lines.append(phi4_summary(cfg))
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m campaign.config", description="check a campaign config")
    p.add_argument("configfile")
    p.add_argument("--schema", default=None)
    args = p.parse_args(argv)
    try:
        cfg = validate_config(load_config_file(args.configfile), args.schema, source=args.configfile)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(summary(cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
