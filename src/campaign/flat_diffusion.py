"""Variance-exploding (VE) diffusion on flat R^shape, independent of the gauge code.

Forward process: x_sigma = x_0 + sigma z, z ~ N(0, 1), no drift (the VE SDE
dx = sqrt(d sigma^2 / dt) dW), so p_sigma = p_0 * N(0, sigma^2 1).  Noise levels form a
geometric schedule between ``sigma_min`` and ``sigma_max``.  The score network is any torch
module ``net(x, sigma)`` with x of shape (B, *shape) and sigma of shape (B,), returning a
tensor of x's shape.

API (all functions take/return batches with the sample axis first):

* ``sigma_schedule(sigma_min, sigma_max, n)``: n geometric levels, descending.
* ``dsm_loss(net, x0, sigma, generator)``: the exact Gaussian denoising-score-matching loss,
  target -(x_sigma - x_0) / sigma^2, weighted by sigma^2 (so every level counts O(1)).
* ``train_dsm(net, data, settings, seed, checkpoint=None)``: Adam on ``dsm_loss`` with
  log-uniform sigma; resumable from ``checkpoint`` (bit-identical to an uninterrupted run).
* ``sample_reverse(score, shape, n_steps, n_samples, ...)``: reverse-time SDE
  (Euler-Maruyama in sigma^2) from the prior N(0, sigma_max^2), with optional annealed
  Langevin corrector steps at every level.
* ``flow_log_likelihood(score, x, ...)``: log-density of the probability-flow ODE
  dx/dsigma = -sigma score(x, sigma) at x (read as a sample at sigma_min), integrated up to
  sigma_max with Heun steps; the divergence is exact (V vector-Jacobian products, for small
  V) or Hutchinson's estimate (unbiased per step, but the log-likelihood is then noisy).
* ``sample_flow(score, shape, n_steps, n_samples, ...)``: samples of the *discrete* Heun map
  of the same ODE from the prior, with their exact log-density log q = log N(z) -
  log|det dF/dz| (full Jacobian of each step: exact for the map actually used, whatever the
  network, as long as the map is injective).  This is what an independence Metropolis
  proposal needs (``campaign.phi4.diffusion``).

Prior: N(0, sigma_max^2 1), ignoring the data's own spread; choose sigma_max well above the
data's scale (the error in the prior is O(var_data / sigma_max^2) per dimension).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .errors import CampaignError


# ------------------------------------------------------------------ schedule
def sigma_schedule(sigma_min: float, sigma_max: float, n: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """n >= 2 geometric noise levels from sigma_max down to sigma_min."""
    check_sigmas(sigma_min, sigma_max)
    if n < 2:
        raise CampaignError(f"the schedule needs n >= 2 levels, got {n}")
    return torch.logspace(math.log10(sigma_max), math.log10(sigma_min), n, dtype=dtype, device=device)


def check_sigmas(sigma_min: float, sigma_max: float) -> None:
    if not (math.isfinite(sigma_min) and math.isfinite(sigma_max) and 0 < sigma_min < sigma_max):
        raise CampaignError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")


def prior_log_density(x: torch.Tensor, sigma_max: float) -> torch.Tensor:
    """log N(x; 0, sigma_max^2 1) per sample, float64."""
    d = x[0].numel()
    r2 = (x.reshape(x.shape[0], -1).double() ** 2).sum(1)
    return -0.5 * r2 / sigma_max**2 - d * math.log(sigma_max) - 0.5 * d * math.log(2 * math.pi)


def _levels(sigma: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0],), float(sigma), dtype=x.dtype, device=x.device)


# ------------------------------------------------------------------ training
def dsm_loss(net, x0: torch.Tensor, sigma: torch.Tensor, generator=None) -> torch.Tensor:
    """Mean over the batch of sigma^2 |net(x_sigma, sigma) - (-(x_sigma - x_0)/sigma^2)|^2 / dim
    = |sigma net + z|^2 / dim, with x_sigma = x_0 + sigma z."""
    z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    s = sigma.reshape(-1, *([1] * (x0.ndim - 1)))
    residual = s * net(x0 + s * z, sigma) + z
    return (residual.reshape(x0.shape[0], -1) ** 2).mean()


@dataclass
class DSMSettings:
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    sigma_min: float = 0.01
    sigma_max: float = 10.0
    checkpoint_every: int = 200  # steps between checkpoints (when a checkpoint path is given)

    def validate(self) -> None:
        check_sigmas(self.sigma_min, self.sigma_max)
        for name in ("steps", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise CampaignError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise CampaignError(f"lr must be > 0, got {self.lr}")


def train_dsm(net, data: torch.Tensor, settings: DSMSettings, seed: int = 0, checkpoint=None,
              progress=None) -> list[float]:
    """Train ``net`` in place on samples ``data`` (N, *shape); returns the loss per step.

    sigma is drawn log-uniformly in [sigma_min, sigma_max] per sample; minibatches are drawn
    with replacement from ``data`` by the run's own generator.  With ``checkpoint`` a path,
    the net, the optimiser, the generator and the losses are saved there every
    ``checkpoint_every`` steps and at the end, and a rerun resumes from it: a run killed and
    resumed ends with the same weights as an uninterrupted one.  ``progress(step, loss)``
    is called after every step when given."""
    settings.validate()
    if data.ndim < 2 or data.shape[0] < 1:
        raise CampaignError(f"data must be a batch (N, *shape) with N >= 1, got shape {tuple(data.shape)}")
    gen = torch.Generator(device=data.device).manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    losses: list[float] = []
    step = 0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        from .io import load_torch

        state = load_torch(path, "diffusion training checkpoint")
        if state.get("settings") != asdict(settings) or state.get("seed") != seed:
            raise CampaignError(f"checkpoint {path} was made with different settings; delete it to start afresh")
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        losses, step = list(state["losses"]), int(state["step"])

    def save():
        from .io import save_torch_atomic

        save_torch_atomic({"settings": asdict(settings), "seed": seed, "net": net.state_dict(),
                           "optimizer": opt.state_dict(), "generator": gen.get_state(),
                           "losses": losses, "step": step}, path)

    log_lo, log_hi = math.log(settings.sigma_min), math.log(settings.sigma_max)
    n = data.shape[0]
    while step < settings.steps:
        idx = torch.randint(n, (settings.batch_size,), generator=gen, device=data.device)
        u = torch.rand(settings.batch_size, generator=gen, dtype=data.dtype, device=data.device)
        sigma = torch.exp(log_lo + (log_hi - log_lo) * u)
        loss = dsm_loss(net, data[idx], sigma, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if progress is not None:
            progress(step, losses[-1])
        if path is not None and (step % settings.checkpoint_every == 0 or step == settings.steps):
            save()
    return losses


# ------------------------------------------------------------------ samplers
@torch.no_grad()
def sample_reverse(score, shape, n_steps: int, n_samples: int, sigma_min: float = 0.01, sigma_max: float = 10.0,
                   corrector_steps: int = 0, snr: float = 0.1, generator=None, dtype=torch.float64,
                   device=None) -> torch.Tensor:
    """Reverse-time VE SDE from x ~ N(0, sigma_max^2) down to sigma_min, Euler-Maruyama in
    sigma^2:  x <- x + (s_k^2 - s_{k+1}^2) score(x, s_k) + sqrt(s_k^2 - s_{k+1}^2) z.
    ``corrector_steps`` > 0 adds that many annealed Langevin steps at every level, step size
    eps = 2 (snr sigma)^2 (Song et al. 2021; eps scales with the level's variance).
    An approximate sampler: exactness comes from weights or Metropolis on top."""
    sig = sigma_schedule(sigma_min, sigma_max, n_steps + 1, dtype=dtype, device=device)
    x = sigma_max * torch.randn((n_samples, *shape), generator=generator, dtype=dtype, device=device)
    for k in range(n_steps):
        s, s_next = float(sig[k]), float(sig[k + 1])
        for _ in range(corrector_steps):
            eps = 2.0 * (snr * s) ** 2
            x = x + eps * score(x, _levels(s, x)) + math.sqrt(2 * eps) * torch.randn(
                x.shape, generator=generator, dtype=dtype, device=device)
        dv = s * s - s_next * s_next
        x = x + dv * score(x, _levels(s, x)) + math.sqrt(dv) * torch.randn(
            x.shape, generator=generator, dtype=dtype, device=device)
    return x


def _velocity(score, x, s):
    """dx/d(ln sigma) = -sigma^2 score(x, sigma): the probability-flow ODE in ln sigma, the
    variable in which the geometric grid is uniform."""
    return -(s * s) * score(x, _levels(s, x))


def _heun(score, x, s0, s1):
    h = math.log(s1 / s0)
    v0 = _velocity(score, x, s0)
    return x + 0.5 * h * (v0 + _velocity(score, x + h * v0, s1))


def _per_sample_jacobian(fn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(fn(x), J) with J (B, D, D) the Jacobian of each sample's output by its own input
    (the network must not mix samples: no batch norm)."""
    B = x.shape[0]
    D = x[0].numel()
    with torch.enable_grad():
        xi = x.detach().requires_grad_(True)
        y = fn(xi).reshape(B, D)
        # all D vector-Jacobian products in one vectorised backward pass (vmap over the
        # basis vectors): cotangent i is e_i for every sample
        basis = torch.eye(D, dtype=x.dtype, device=x.device).unsqueeze(1).expand(D, B, D)
        (g,) = torch.autograd.grad(y, xi, grad_outputs=basis, is_grads_batched=True)
    return y.detach().reshape(x.shape), g.reshape(D, B, D).transpose(0, 1)


# sites per backward pass of _local_jacobian: on one CPU thread the float64 convolutions
# run 2-4x slower per site once a batch's activations outgrow the caches (measured at
# 16^2 x 128 against 16^2 x 2048 and 32^2 x 32 against 32^2 x 512)
_SITES_PER_PASS = 32768


def colour_periods(shape: tuple[int, ...], radius: int) -> list[int]:
    """Per axis, the smallest divisor of the extent that is > 2 radius (the extent itself if
    none is smaller): the colouring's period (``_colouring``); their product is the number of
    backward passes of one exact Jacobian (``_local_jacobian``)."""
    return [next((p for p in range(2 * radius + 1, n) if n % p == 0), n) for n in shape]


def _colouring(shape: tuple[int, ...], radius: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(colour, near) for a function on the periodic lattice ``shape`` whose output at a site
    depends only on inputs within torus distance ``radius`` along every axis.  Along each axis
    the colour period is the smallest divisor of the extent that is > 2 radius (the extent
    itself if none is smaller): two sites of one colour are then never both within ``radius``
    of a third.  colour (D,) is each site's colour, near (D, D) the mask of pairs within
    ``radius`` (where the Jacobian can be nonzero)."""
    periods = colour_periods(shape, radius)
    coords = torch.stack(torch.meshgrid(*[torch.arange(n, device=device) for n in shape], indexing="ij"), -1)
    coords = coords.reshape(-1, len(shape))
    colour = torch.zeros(coords.shape[0], dtype=torch.long, device=device)
    for axis, p in enumerate(periods):
        colour = colour * p + coords[:, axis] % p
    ext = torch.tensor(shape, device=device)
    diff = (coords[:, None, :] - coords[None, :, :]).remainder(ext)
    near = (torch.minimum(diff, ext - diff) <= radius).all(-1)
    return colour, near


def _local_jacobian(fn, x: torch.Tensor, radius: int) -> torch.Tensor:
    """J (B, D, D), the Jacobian of each sample's fn(x) by its own input, for an fn local on
    the torus (``_colouring``): one backward pass per colour, not per site, all colours in
    one batch (x repeated), then J[b, i, j] = (sum_{colour(i')=colour(i)} e_i'^T J_b)[j] for
    j near i, 0 elsewhere.  The same numbers as ``_per_sample_jacobian`` up to rounding."""
    B, shape = x.shape[0], tuple(x.shape[1:])
    D = x[0].numel()
    colour, near = _colouring(shape, radius, x.device)
    C = int(colour.max()) + 1
    probes = (colour[None, :] == torch.arange(C, device=x.device)[:, None]).to(x.dtype)  # (C, D)
    per_pass = max(1, _SITES_PER_PASS // (B * D))
    g = []
    for c in range(0, C, per_pass):
        n = min(per_pass, C - c)
        with torch.enable_grad():
            xi = x.detach().repeat(n, *([1] * len(shape))).requires_grad_(True)
            y = fn(xi)
            cotangent = probes[c:c + n, None, :].expand(n, B, D).reshape(y.shape)
            g.append(torch.autograd.grad(y, xi, grad_outputs=cotangent)[0].reshape(n, B, D))
    return torch.cat(g)[colour].transpose(0, 1) * near.to(x.dtype)


def _heun_jacobian(score, x: torch.Tensor, s0: float, s1: float, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(F(x), dF/dx) for the Heun step F(x) = x + h/2 (v(x, s0) + v(x + h v(x, s0), s1)),
    dF/dx = 1 + h/2 (A0 + A1 (1 + h A0)) with A0, A1 the velocity's Jacobians at the two
    stages: each local with the score's ``radius`` (a colour per 8 x 8 block on a 2D
    lattice with a radius-3 network, where the composed step would need every site)."""
    h = math.log(s1 / s0)
    with torch.no_grad():
        v0 = _velocity(score, x, s0)
        mid = x + h * v0
        y = x + 0.5 * h * (v0 + _velocity(score, mid, s1))  # the bytes of _heun
    a0 = _local_jacobian(lambda z: _velocity(score, z, s0), x, radius)
    a1 = _local_jacobian(lambda z: _velocity(score, z, s1), mid, radius)
    eye = torch.eye(a0.shape[-1], dtype=a0.dtype, device=a0.device)
    jac = eye + 0.5 * h * (a0 + a1 + h * torch.bmm(a1, a0))
    return y, jac


def _divergence(score, x, s, method: str, probes: int, generator):
    """(velocity, its divergence) at x: exact trace of the Jacobian, or Hutchinson's
    Rademacher estimate averaged over ``probes`` probes.  The exact trace of a score with a
    ``receptive_radius`` comes from its coloured Jacobian (``_local_jacobian``)."""
    B = x.shape[0]
    radius = getattr(score, "receptive_radius", None)
    if method == "exact" and radius is not None:
        with torch.no_grad():
            v = _velocity(score, x, s)
        jac = _local_jacobian(lambda z: _velocity(score, z, s), x, radius)
        return v, jac.diagonal(dim1=1, dim2=2).sum(1).double()
    with torch.enable_grad():
        xi = x.detach().requires_grad_(True)
        v = _velocity(score, xi, s)
        if method == "exact":
            flat = v.reshape(B, -1)
            div = torch.zeros(B, dtype=torch.float64, device=x.device)
            for i in range(flat.shape[1]):
                (g,) = torch.autograd.grad(flat[:, i].sum(), xi, retain_graph=True)
                div = div + g.reshape(B, -1)[:, i].double()
        elif method == "hutchinson":
            div = torch.zeros(B, dtype=torch.float64, device=x.device)
            for _ in range(probes):
                e = torch.randint(0, 2, x.shape, generator=generator, device=x.device).to(x.dtype) * 2 - 1
                (g,) = torch.autograd.grad((v * e).sum(), xi, retain_graph=True)
                div = div + (g * e).reshape(B, -1).sum(1).double() / probes
        else:
            raise CampaignError(f"divergence must be 'exact' or 'hutchinson', got {method!r}")
    return v.detach(), div


def flow_log_likelihood(score, x: torch.Tensor, sigma_min: float = 0.01, sigma_max: float = 10.0,
                        n_steps: int = 100, divergence: str = "exact", probes: int = 1,
                        generator=None) -> torch.Tensor:
    """log p(x) per sample (float64) of the model's probability-flow ODE, x read as a sample
    at sigma_min:  log p_min(x) = log N(x(sigma_max); 0, sigma_max^2) - int sigma^2 div score d ln sigma,
    Heun steps in ln sigma on the geometric grid, the same rule for the divergence.
    ``divergence='exact'``: D vector-Jacobian products per evaluation (small D only), or
    one per colour for a score with a ``receptive_radius`` (``sample_flow``);
    'hutchinson': ``probes`` Rademacher probes (an unbiased divergence, a noisy likelihood,
    and log E[exp] is then biased: measure it against 'exact' where both are possible)."""
    sig = sigma_schedule(sigma_min, sigma_max, n_steps + 1, dtype=x.dtype, device=x.device).flip(0)
    delta = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    v0, d0 = _divergence(score, x, float(sig[0]), divergence, probes, generator)
    for k in range(n_steps):
        s0, s1 = float(sig[k]), float(sig[k + 1])
        h = math.log(s1 / s0)
        v1, d1 = _divergence(score, x + h * v0, s1, divergence, probes, generator)
        x = x + 0.5 * h * (v0 + v1)  # Heun in ln sigma
        delta = delta + 0.5 * h * (d0 + d1)
        v0, d0 = _divergence(score, x, s1, divergence, probes, generator) if k < n_steps - 1 else (None, None)
    return prior_log_density(x, sigma_max) + delta


def sample_flow(score, shape, n_steps: int, n_samples: int, sigma_min: float = 0.01, sigma_max: float = 10.0,
                generator=None, dtype=torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, log_q): samples of the discrete Heun map F of the probability-flow ODE from
    z ~ N(0, sigma_max^2) at sigma_max down to sigma_min, and their exact log-density
    log q(x) = log N(z) - sum_k log|det dF_k/dx_k|, with the full D x D Jacobian of each
    step.  Exact for the map used, whatever the network, while F is injective (Heun steps
    small against the score's Lipschitz scale).  A score with a ``receptive_radius``
    attribute (its output at a site depends on inputs within that torus distance, along
    every axis, of a periodic lattice ``shape``) gets the Jacobian from one backward pass
    per colour of ``_colouring`` (64 on a 2D lattice with radius 3, whatever L); any other
    from D vector-Jacobian products (small D)."""
    sig = sigma_schedule(sigma_min, sigma_max, n_steps + 1, dtype=dtype, device=device)
    x = sigma_max * torch.randn((n_samples, *shape), generator=generator, dtype=dtype, device=device)
    log_q = prior_log_density(x, sigma_max)
    radius = getattr(score, "receptive_radius", None)
    for k in range(n_steps):
        s0, s1 = float(sig[k]), float(sig[k + 1])
        if radius is None:
            x, jac = _per_sample_jacobian(lambda y: _heun(score, y, s0, s1), x)
        else:
            x, jac = _heun_jacobian(score, x, s0, s1, radius)
        _, logabsdet = torch.linalg.slogdet(jac.double())
        log_q = log_q - logabsdet
    return x, log_q
