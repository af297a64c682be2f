"""Gaussian(-Gaussian) restricted Boltzmann machine: the near-solvable case.

Energy ``E(v, h) = |v|^2 / (2 sigma_v^2) + |h|^2 / (2 sigma_h^2) - v^T W h`` with W of
shape (n_visible, n_hidden).  Integrating out h gives a Gaussian model for v,

    p(v) ~ exp(-v^T A v / 2),   A = 1 / sigma_v^2 - sigma_h^2 W W^T,

normalisable while ``sigma_h^2 |W|_2^2 < 1 / sigma_v^2``.  The gradient of the negative
log-likelihood of a batch is ``-sigma_h^2 (C_B - A^{-1}) W`` with C_B the batch covariance:

* ``training: exact`` uses the model covariance ``A^{-1}`` (the loss is the exact negative
  log-likelihood, ``tr(A C_B) / 2 - log det A / 2``);
* ``training: cd`` replaces it with the covariance of ``cd_steps`` block-Gibbs steps
  started at the batch (contrastive divergence), a second source of noise.

Data: fresh batches from ``N(0, data_variance 1)`` (online learning).  For
``data_variance = c > sigma_v^2`` the maximum-likelihood point has all eigenvalues of
``X = W^T W`` equal to ``x* = (1 / sigma_v^2 - 1 / c) / sigma_h^2`` (degenerate), and the
mini-batch noise turns them into a Coulomb gas.  Expanding the exact drift and the noise
(``C_B - c`` is Wishart: GOE-like with off-diagonal variance ``c^2 / B``) about x* in
learning time ``t = lr * step``:

    drift of x_i   -kappa (x_i - x*),       kappa = 2 sigma_h^4 c^2 x*
    temperature    T = g lr / B,            g = 4 sigma_h^4 c^2 x*^2

so the spread of the stationary spectrum is ``T / kappa = 2 x* lr / B``.  This is the
leading order in ``sqrt(lr / B)``: the exact drift is not linear (log det), the noise
strength grows with x, and Ito terms shift the centre at O(T), so the linear rule
bends at large lr / B, and the machine leaves the normalisable region (a CampaignError)
once the spread reaches ``1 / (sigma_h^2 c)``.  With CD training there is no analytic g.

Initial weights: i.i.d. ``N(0, init_scale^2 / n_visible)``, so the initial spectrum of X
follows Marchenko-Pastur with ratio ``n_hidden / n_visible`` and scale ``init_scale^2``.
``replicas`` independent machines (own data streams) train side by side in one batched
SGD step.
"""

from __future__ import annotations

import math

import torch

from ..errors import CampaignError
from .models import WeightModel


class GaussianRBM(WeightModel):
    name = "rbm"

    def __init__(self, *, n_visible: int = 32, n_hidden: int = 16, replicas: int = 8, sigma_v: float = 1.0,
                 sigma_h: float = 1.0, data_variance: float = 2.0, init_scale: float = 0.25, training: str = "exact",
                 cd_steps: int = 1, generator: torch.Generator, dtype=torch.float64, device="cpu"):
        super().__init__()
        if n_hidden < 2 or n_visible < n_hidden:
            raise CampaignError(f"rbm: need 2 <= n_hidden <= n_visible, got n_visible={n_visible}, n_hidden={n_hidden}")
        if replicas < 1:
            raise CampaignError(f"rbm: replicas must be >= 1, got {replicas}")
        if training not in ("exact", "cd"):
            raise CampaignError(f"rbm: training must be 'exact' or 'cd', got {training!r}")
        if not data_variance > sigma_v**2:
            raise CampaignError(
                f"rbm: data_variance must exceed sigma_v^2 = {sigma_v**2} (else the maximum-likelihood W is 0), got {data_variance}")
        if cd_steps < 1:
            raise CampaignError(f"rbm: cd_steps must be >= 1, got {cd_steps}")
        self.n_visible, self.n_hidden = int(n_visible), int(n_hidden)
        self.sigma_v, self.sigma_h, self.c = float(sigma_v), float(sigma_h), float(data_variance)
        self.likelihood, self.cd_steps = training, int(cd_steps)
        self.init_scale = float(init_scale)
        w = torch.randn(replicas, n_visible, n_hidden, generator=generator, dtype=dtype) * (init_scale / math.sqrt(n_visible))
        self.weight = torch.nn.Parameter(w.to(device))
        if self._top_eigenvalue() >= 1.0:
            raise CampaignError(f"rbm: init_scale = {init_scale} makes the initial model not normalisable; lower it")

    @property
    def x_star(self) -> float:
        return (1.0 / self.sigma_v**2 - 1.0 / self.c) / self.sigma_h**2

    def precision(self) -> torch.Tensor:
        """A = 1 / sigma_v^2 - sigma_h^2 W W^T (the inverse model covariance of v), (R, n_v, n_v)."""
        w = self.weight
        eye = torch.eye(self.n_visible, dtype=w.dtype, device=w.device)
        return eye / self.sigma_v**2 - self.sigma_h**2 * (w @ w.mT)

    @torch.no_grad()
    def _top_eigenvalue(self) -> float:
        """max over replicas of sigma_h^2 sigma_v^2 |W|_2^2 (the model is normalisable below 1)."""
        return float(torch.linalg.matrix_norm(self.weight, ord=2).max()) ** 2 * self.sigma_h**2 * self.sigma_v**2

    def sample_batch(self, batch_size: int, generator: torch.Generator):
        w = self.weight
        v = torch.randn(w.shape[0], batch_size, self.n_visible, generator=generator, dtype=w.dtype).to(w.device)
        return v * math.sqrt(self.c)

    def loss(self, batch, generator: torch.Generator) -> torch.Tensor:
        v = batch
        cov_b = v.mT @ v / v.shape[1]
        if self.likelihood == "exact":
            a = self.precision()
            chol, info = torch.linalg.cholesky_ex(a)
            if bool((info != 0).any()):
                raise CampaignError(
                    f"rbm: the model left the normalisable region (sigma_h^2 sigma_v^2 |W|^2 = {self._top_eigenvalue():.3g} "
                    ">= 1): the SGD noise lr/B is too large for this machine")
            logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
            return 0.5 * (a * cov_b).sum((-2, -1)) - 0.5 * logdet
        # contrastive divergence: surrogate whose gradient is -sigma_h^2 (C_B - C_k) W
        with torch.no_grad():
            vk = self._gibbs(v, generator)
            cov_k = vk.mT @ vk / vk.shape[1]
        w = self.weight
        return -0.5 * self.sigma_h**2 * (w * ((cov_b - cov_k) @ w)).sum((-2, -1))

    @torch.no_grad()
    def _gibbs(self, v, generator):
        """cd_steps block-Gibbs steps: h | v ~ N(sigma_h^2 W^T v, sigma_h^2),
        v | h ~ N(sigma_v^2 W h, sigma_v^2)."""
        w = self.weight
        r, b = v.shape[:2]
        for _ in range(self.cd_steps):
            h = self.sigma_h**2 * v @ w + self.sigma_h * torch.randn(
                r, b, self.n_hidden, generator=generator, dtype=w.dtype).to(w.device)
            v = self.sigma_v**2 * h @ w.mT + self.sigma_v * torch.randn(
                r, b, self.n_visible, generator=generator, dtype=w.dtype).to(w.device)
        return v

    @torch.no_grad()
    def spectra(self) -> dict[str, torch.Tensor]:
        w = self.weight
        return {"X": torch.linalg.eigvalsh(w.mT @ w)}

    def theory(self) -> dict:
        sh4c2 = self.sigma_h**4 * self.c**2
        out = {
            "primary": "X",
            "matrix": "eigenvalues of X = W^T W (n_hidden x n_hidden)",
            "curvature": 2.0 * sh4c2 * self.x_star,
            "centre": self.x_star,
            "init_mp": {"X": {"q": self.n_hidden / self.n_visible, "sigma2": self.init_scale**2,
                              "n_long": self.n_visible}},
        }
        if self.likelihood == "exact":
            out["temperature_coefficient"] = 4.0 * sh4c2 * self.x_star**2
        return out
