"""Linear teacher-student regression with a symmetric weight matrix: the exactly solvable
case of SGD as Dyson Brownian motion.

``replicas`` independent students (each with its own data stream) are trained side by
side in one batched SGD step: independent Markov chains of one run.

Data: ``x ~ N(0, 1_n)``, labels ``y = W* x + eps`` with ``eps ~ N(0, noise^2 1_n)`` and the
teacher ``W* = teacher_scale * 1_n`` (degenerate, so the student's eigenvalues form one
Coulomb gas around it).  Student: ``y_hat = W x`` with ``W = (A + A^T) / 2`` symmetric
(A is the trained parameter, started symmetric); loss ``|y - W x|^2 / 2`` averaged over
the mini-batch; every batch is a fresh draw (online learning: no quenched data set).

With ``D = W - W*`` and ``S``, ``E`` the batch means of ``x x^T`` and ``eps x^T``, one SGD
step is ``D' = D - lr sym(D S - E)``: the teacher drops out, and the noise ``sym(E)`` is
GOE-distributed with off-diagonal variance ``noise^2 / (2B)``.  In learning time
``t = lr * step`` the eigenvalues of W perform DBM (campaign.weights.coulomb_gas) with
potential ``(x - teacher_scale)^2 / 2`` (curvature 1) and temperature

    T = lr noise^2 / (2 B)        (temperature_coefficient g = noise^2 / 2).

``stationary_moments`` gives the exact stationary ``E|D|^2`` and ``E(tr D)^2`` at any
finite lr and B (Gaussian fourth moments of x close the second-moment recursion), hence
the exact expectation of the temperature estimator, ``exact_temperature_estimate``:

    T_est = T / (1 - lr/2 - lr (n+2)/(4B) + O(lr^2))

so the linear rule holds for lr << 1 and lr n / B << 1 and breaks in two ways: at fixed
lr / B the estimate still grows with lr (time discretisation), and at large lr / B the
multiplicative noise ``sym(D (S - 1))`` adds to the additive one.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import CampaignError
from . import rmt
from .models import WeightModel


class TeacherStudent(WeightModel):
    name = "teacher_student"

    def __init__(self, *, n: int = 16, replicas: int = 8, noise: float = 1.0, teacher_scale: float = 1.0,
                 init_scale: float = 1.0, generator: torch.Generator, dtype=torch.float64, device="cpu"):
        super().__init__()
        if n < 3:
            raise CampaignError(f"teacher_student: n must be >= 3, got {n}")
        if replicas < 1:
            raise CampaignError(f"teacher_student: replicas must be >= 1, got {replicas}")
        if not noise > 0:
            raise CampaignError(f"teacher_student: noise must be > 0, got {noise}")
        self.n, self.noise, self.teacher_scale = int(n), float(noise), float(teacher_scale)
        # initial students: teacher plus a GOE matrix whose semicircle has radius init_scale
        g = torch.randn(replicas, n, n, generator=generator, dtype=dtype).to(device)
        goe = (g + g.mT) / 2 * (init_scale / math.sqrt(2 * n))
        self.weight = torch.nn.Parameter(self.teacher_scale * torch.eye(n, dtype=dtype, device=device) + goe)

    def symmetric_weight(self) -> torch.Tensor:
        return 0.5 * (self.weight + self.weight.mT)

    def sample_batch(self, batch_size: int, generator: torch.Generator):
        w = self.weight
        shape = (w.shape[0], batch_size, self.n)
        x = torch.randn(shape, generator=generator, dtype=w.dtype).to(w.device)
        eps = torch.randn(shape, generator=generator, dtype=w.dtype).to(w.device)
        return x, self.teacher_scale * x + self.noise * eps

    def loss(self, batch, generator: torch.Generator) -> torch.Tensor:
        x, y = batch
        r = y - x @ self.symmetric_weight()  # W symmetric: (W x)^T = x^T W
        return 0.5 * (r * r).sum(dim=2).mean(dim=1)

    @torch.no_grad()
    def spectra(self) -> dict[str, torch.Tensor]:
        return {"W": torch.linalg.eigvalsh(self.symmetric_weight())}

    def theory(self) -> dict:
        return {
            "primary": "W",
            "matrix": "eigenvalues of the symmetric student matrix W",
            "curvature": 1.0,
            "centre": self.teacher_scale,
            "temperature_coefficient": 0.5 * self.noise**2,
        }


def stationary_moments(n: int, lr: float, batch_size: int, noise: float = 1.0) -> tuple[float, float]:
    """Exact stationary ``(E|D|_F^2, E(tr D)^2)`` of SGD on the teacher-student problem,
    ``D = W - W*``: the fixed point of

        u' = u (1 - 2 lr + lr^2 (1 + (n+2)/(2B))) + lr^2 (v / (2B) + noise^2 n (n+1) / (2B))
        v' = v (1 - lr)^2 + lr^2 (2 u / B + noise^2 n / B)

    (Gaussian x: E[S M S] = M + (M^T + tr M) / B).  Raises if SGD has no stationary state
    (the recursion is unstable)."""
    B = float(batch_size)
    a = np.array([
        [2 * lr - lr**2 * (1 + (n + 2) / (2 * B)), -lr**2 / (2 * B)],
        [-2 * lr**2 / B, 2 * lr - lr**2],
    ])
    b = np.array([lr**2 * noise**2 * n * (n + 1) / (2 * B), lr**2 * noise**2 * n / B])
    # the second-moment map is x' = (1 - a) x + b: stable iff the spectral radius of 1 - a < 1
    if np.max(np.abs(np.linalg.eigvals(np.eye(2) - a))) >= 1:
        raise CampaignError(f"teacher_student: SGD has no stationary state at lr={lr}, B={batch_size}, n={n}")
    u, v = np.linalg.solve(a, b)
    return float(u), float(v)


def exact_temperature_estimate(n: int, lr: float, batch_size: int, noise: float = 1.0) -> float:
    """Exact stationary expectation of ``coulomb_gas.temperature_series`` (curvature 1,
    beta 1): ``E sum (x - xbar)^2 / ((n-1)(n+2)/2)`` with ``E sum (x - xbar)^2 = u - v / n``."""
    u, v = stationary_moments(n, lr, batch_size, noise)
    return (u - v / n) / rmt.beta_ensemble_second_moment(n, 1.0)
