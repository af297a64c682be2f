"""What every stage's settings dataclass shares: the field metadata the CLI reads
(``cli.add_settings_arguments``), and checks that name the offending field.

A ``SettingError`` carries the field's name apart from the reason, so the CLI and the
library print "sigma_min must be smaller than sigma_max (...)" and the config validator
"groups.u1.models[0].sigma_min: must be smaller than sigma_max (...)" from one check.
"""

from __future__ import annotations

import math
import numbers

from .errors import CampaignError


class SettingError(CampaignError):
    """One field of a settings object is invalid."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name} {reason}")
        self.name, self.reason = name, reason


def option(help_text: str, **extra) -> dict:
    """Field metadata: the flag's help text, and e.g. ``choices``."""
    return {"help": help_text, **extra}


def check_number(obj, name: str, low: float = 0.0, strict: bool = True) -> None:
    """A finite number > low (>= low unless ``strict``)."""
    v = getattr(obj, name)
    ok = (v is not None and not isinstance(v, bool) and isinstance(v, numbers.Real) and math.isfinite(v)
          and (v > low if strict else v >= low))
    if not ok:
        raise SettingError(name, f"must be a finite number {'>' if strict else '>='} {low:g}, got {v!r}")


def check_integer(obj, name: str, low: int) -> None:
    v = getattr(obj, name)
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise SettingError(name, f"must be an integer >= {low}, got {v!r}")


def check_choice(obj, name: str, choices) -> None:
    v = getattr(obj, name)
    if v not in choices:
        raise SettingError(name, f"must be one of {', '.join(choices)}, got {v!r}")
