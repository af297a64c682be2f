"""The theory registry: the one place that knows which theories (gauge groups) exist.

Each theory is a module here (``u1``, ``su2``, ``u2``) defining ``THEORY``, a
``base.Theory``: name, label ("U(1)"), matrix size N, whether the group is special, whether
a 2D topological charge exists, and its exact character expansion on the torus (used by
``campaign.exact``).  Everything that lists theories derives from ``THEORIES``:
``campaign.groups`` (the Group objects and ``get_group``), ``config.GROUP_NAMES`` and the
schema's ``groups`` keys (a test checks the schema), ``cli.GROUP_CHOICES``, the Snakemake
wildcard constraint (``workflow/rules/common.smk`` calls ``wildcard_pattern``), and the
labels, order and topology of ``campaign.figures``.

Adding a theory (SU(3), say): write ``su3.py`` with its ``THEORY``, add it to ``_MODULES``
below and its key to the schema's ``groups`` (tests/test_config.py checks the schema against
this registry; the schema is a static file the workflow validates with).  Per-theory code that lives elsewhere because it is not about the registry: the
matrix algebra basis in ``campaign.groups.Group.basis``, the heat kernel and its
``FUNDAMENTAL_DECAY`` in ``campaign.diffusion``, and a fast HMC field representation in
``campaign.fields`` (optional: the generic matrix code runs any group).

Import direction: this package imports nothing else of ``campaign`` when loaded (and no
torch), so config, cli and the Snakefile can use it cheaply; ``campaign.groups`` imports it.
``Theory.group`` looks the Group up in ``campaign.groups`` only when called.
"""

from __future__ import annotations

from ..errors import CampaignError
from . import su2, u1, u2
from .base import Representations, Theory, ThetaExpansion

_MODULES = (u1, su2, u2)  # in the order tables and figures list them
THEORIES: dict[str, Theory] = {m.THEORY.name: m.THEORY for m in _MODULES}
THEORY_NAMES: tuple[str, ...] = tuple(THEORIES)


class UnknownGroupError(ValueError, CampaignError):
    """A group / theory name that is not registered."""


def get_theory(name) -> Theory:
    """The registered theory of a name ("u1", case-insensitive) or a Group."""
    key = str(getattr(name, "name", name)).lower()
    try:
        return THEORIES[key]
    except KeyError:
        raise UnknownGroupError(f"unknown gauge group {name!r}; choose one of {', '.join(THEORY_NAMES)}") from None


def label(name) -> str:
    """Printed name of a theory; an unregistered name is printed as it is."""
    theory = THEORIES.get(str(name).lower())
    return theory.label if theory else str(name)


def topological_names() -> tuple[str, ...]:
    return tuple(t.name for t in THEORIES.values() if t.has_topology)


def wildcard_pattern() -> str:
    """Snakemake wildcard constraint for the ``{group}`` wildcard: any registered name."""
    return "|".join(THEORY_NAMES)


__all__ = [
    "THEORIES", "THEORY_NAMES", "Representations", "Theory", "ThetaExpansion", "UnknownGroupError",
    "get_theory", "label", "topological_names", "wildcard_pattern",
]
