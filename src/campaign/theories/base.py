"""What a theory tells the rest of the package: the record ``Theory`` and the representation
tables its exact character expansion fills in (docs/conventions.md, "Exact torus solution").

Torch-free on purpose: config, cli and the Snakefile list theories without loading torch;
``numpy`` is imported here, ``scipy.special`` only when a Bessel function is first evaluated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def bessel(n, z) -> np.ndarray:
    """e^-z I_n(z) for integer orders (I_-n = I_n)."""
    from scipy.special import ive

    return ive(np.abs(n), z)


@dataclass(frozen=True)
class Representations:
    """Representations up to a cutoff K with what the torus sums need.

    ``up_rho[:, j]``, ``up_dim[:, j]``: rho_s and d_s of the (at most two) s in r x f, f the
    fundamental; an absent s has d_s = 0."""

    labels: np.ndarray
    shell: np.ndarray  # distance from the trivial representation; the outermost is K
    dim: np.ndarray
    rho: np.ndarray
    up_rho: np.ndarray
    up_dim: np.ndarray


@dataclass(frozen=True)
class ThetaExpansion:
    """The theta-term integral of a topological theory (docs/conventions.md, "Topology"):
    ``labels(reps) -> (mu, k)`` and ``weight(beta, sigma, k_values) -> G`` of shape
    (len(k_values) or 1, len(sigma)), such that c_r(theta) = (1/2pi) int dsigma
    e^(i theta sigma/2pi) e^(-i mu_r sigma) G_k(sigma)."""

    labels: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    weight: Callable[[float, np.ndarray, np.ndarray], np.ndarray]
    table_size: Callable[[int], tuple[int, int]]  # (distinct mu, distinct k) up to shell K: memory bound


@dataclass(frozen=True)
class Theory:
    """One 2D lattice gauge theory with the Wilson action on the matrix group of ``name``.

    ``coefficient(beta, rep)``: the character coefficient c_r of one plaquette weight (input
    checked); ``rho(beta, labels)``: F_r / F_trivial for an array of labels;
    ``representations(beta, K)``: every representation up to shell K (``count(K)`` of them); ``trivial`` and
    ``fundamental``: their labels; ``theta``: the theta-term expansion (topological theories
    only)."""

    name: str
    label: str  # as printed in figures and tables
    N: int  # matrix size of the fundamental representation
    special: bool  # determinant fixed to one
    has_topology: bool  # an integer topological charge exists in 2D
    trivial: object
    fundamental: object
    coefficient: Callable[[float, object], float]
    rho: Callable[[float, np.ndarray], np.ndarray]
    representations: Callable[[float, int], Representations]
    count: Callable[[int], int]  # number of representations up to shell K (memory bound)
    theta: ThetaExpansion | None = None

    @property
    def group(self):
        """The ``campaign.groups.Group`` (imported when asked: groups needs torch, and groups
        itself reads this registry)."""
        from ..groups import get_group

        return get_group(self.name)
