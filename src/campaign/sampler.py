"""MAALA: annealed Langevin on the gauge group with a Metropolis-adjusted tail.

A score model ``s(U, sigma)`` (the Lie-algebra score of the sigma-noised distribution,
see ``ScoreModel``) trained at ``beta0`` is used at a target ``beta`` with its score
scaled by ``beta / beta0`` (physics conditioning, DESIGN.md).  Every batch of chains

1. starts from Haar-random links (the sigma_max-noised distribution is close to Haar);
2. anneals: ``n_levels`` noise levels, geometric from sigma_max down to sigma_min, with
   ``steps_per_level`` unadjusted Langevin steps per level,
       U' = exp(eps_i (beta/beta0) s(U, sigma_i) + sqrt(2 eps_i) eta) U,
   eta = ``Group.random_algebra`` (unit Brownian increment per link), and
   eps_i = max(level_step_scale * sigma_i^2, level_step_min) (Song & Ermon's
   alpha_i ~ sigma_i^2, floored: with one step per level, steps ~ sigma^2 become too
   small to move the links long before sigma_min, and the annealing would hand the
   tail hot configurations -- plaquette 0.65 instead of 0.81 for U(1) at beta = 3 -- whose
   topological charge the local tail cannot cool away.  The floor defaults to the
   tail's initial step size);
3. runs the MH-corrected tail: ``tail_steps`` Metropolis-adjusted Langevin steps at
   sigma_tail (default sigma_min) with drift d(U) = (beta/beta0) s(U, sigma_tail) and the
   exact target exp(-S_beta(U)) -- the Wilson action at the *target* beta itself.  The
   first ``tail_adapt`` steps adapt eps toward ``target_acceptance``; then eps is frozen,
   so the chain that produces samples is a proper (time-homogeneous) Markov chain whose
   invariant distribution is exactly exp(-S_beta);
4. yields the final state of every chain; with ``continue_chain = K`` the MH chain goes
   on and yields K further (correlated) samples, one every ``continue_sep`` steps.

The MH kernel (``mh_step``) is generic: it takes an injectable target log-density and
drift, so it is tested on one-link models with a known density.  Move and acceptance:
    X = eps d(U) + sqrt(2 eps) eta,  U' = exp(X) U,
    log q(U'|U) = -|X - eps d(U)|^2 / (4 eps) = -|eta|^2 / 2,
    log q(U|U') = -|-X - eps d(U')|^2 / (4 eps)          (the reverse move is -X),
    log alpha   = log p(U') - log p(U) + log q(U|U') - log q(U'|U)
                = log p(U') - log p(U) - sqrt(eps/2) <eta, d + d'> - eps/4 |d + d'|^2,
the last form being algebraically identical and free of cancellation in float32.  No
exp-map Jacobian appears: (U, X) -> (exp(X) U, -X) is an involution whose Jacobian with
respect to Haar x Lebesgue is one (left multiplication preserves Haar), so the kernel
is exact also where exp is not injective.

Every chain accepts or rejects on its own; all chains of a batch are one tensor, the step
size lives on the device, and the step loops never synchronise with the host (only the
progress line, at most every few seconds, and the end of a batch do).

Output (``sample_to_file``): the standard HDF5 layout of ``campaign.io`` with
algorithm "maala".  Batches are independent (own seed from ``campaign.seeds``); each
finished batch is written atomically to ``OUT.parts/``; a rerun after a kill resumes from
them and gives exactly the file of an uninterrupted run.  History (first axis = time):
  level_sigma, level_eps               (n_levels,)
  level_acceptance                     (n_levels, n_batches): mean MH probability that
                                       the unadjusted moves of the level would have had
                                       against the exact target, the reverse proposal
                                       using the drift of the step that follows (for a
                                       level's last move: the next level's sigma) -- a
                                       diagnostic of where MH correction becomes cheap
  tail_acceptance, tail_eps,
  tail_plaquette                       (n_mh_steps, n_batches): per MH step, batch means
                                       (tail steps first, then the continuation)
  batch_eps, batch_acceptance,
  batch_chains, batch_wall_s           (n_batches,): frozen eps, mean acceptance after
                                       the freeze, chains and wall time per batch
  sample_acceptance                    (n_samples,): the producing chain's mean MH
                                       probability over its frozen steps up to the sample
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

from .actions import wilson_action, wilson_force
from .errors import CampaignError
from .groups import Group, complex_dtype, get_group, matmul, real_dtype, trace
from .lattice import plaquettes
from .progress import Progress

LogProb = Callable[[torch.Tensor], torch.Tensor]  # U -> (B,) log density w.r.t. Haar
Drift = Callable[[torch.Tensor], torch.Tensor]  # U -> algebra tensor shaped like U


# ------------------------------------------------------------------ score models
@runtime_checkable
class ScoreModel(Protocol):
    """What the sampler needs from a trained diffusion model (ARCHITECTURE.md)."""

    group: Group
    beta0: float
    L0: int
    sigma_min: float
    sigma_max: float

    def __call__(self, U: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Left-derivative score of the sigma-noised distribution: U complex
        (B, 2, L, L, N, N), sigma real (B,) -> algebra tensor shaped like U."""
        ...


class PhysicsScore:
    """The exact small-noise limit of the score at beta0, -F_beta0(U) = -grad S_beta0,
    independent of sigma.  A reference "perfect" model (with it the MH tail is exact
    MALA for the target) and a baseline for the acceptance of trained models."""

    def __init__(self, group, beta0: float, L0: int = 0, sigma_min: float = 1e-3, sigma_max: float = 10.0):
        self.group = get_group(group)
        self.beta0, self.L0 = float(beta0), int(L0)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)

    def __call__(self, U, sigma):
        return -wilson_force(self.group, U, self.beta0)


class ZeroScore(PhysicsScore):
    """An "untrained" model: score zero, so the Langevin proposal is a Gaussian random
    walk on the group and the MH tail alone makes the samples exact."""

    def __call__(self, U, sigma):
        return torch.zeros_like(U)


class _ModelScore:
    """Calls a score model without autograd, on the sampler's device, casting inputs to
    the model's own floating dtype when it differs and the output back."""

    def __init__(self, model, device: torch.device, cdtype: torch.dtype):
        self.model = model
        self.cdtype = cdtype
        self.model_cdtype = None
        if isinstance(model, torch.nn.Module):
            model.to(device)
            model.eval()
            for t in (*model.parameters(), *model.buffers()):
                if t.is_floating_point() or t.is_complex():
                    mc = complex_dtype(real_dtype(t.dtype))
                    if mc != cdtype:
                        self.model_cdtype = mc
                    break
        self.checked = False

    def __getattr__(self, name):  # group, beta0, sigma_min, ... of the wrapped model
        if name == "model":
            raise AttributeError(name)
        return getattr(self.model, name)

    def __call__(self, U: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.model_cdtype is not None:
            U = U.to(self.model_cdtype)
            sigma = sigma.to(real_dtype(self.model_cdtype))
        with torch.no_grad():
            s = self.model(U, sigma)
        if not self.checked:
            if not torch.is_tensor(s) or s.shape != U.shape:
                got = tuple(s.shape) if torch.is_tensor(s) else type(s).__name__
                raise CampaignError(f"score model returned {got}, expected a tensor shaped like U {tuple(U.shape)}")
            self.checked = True
        return s.to(self.cdtype)


def describe_model(model) -> dict:
    """The model attributes the sampler relies on, validated (CampaignError if not)."""
    missing = [a for a in ("group", "beta0", "sigma_min", "sigma_max") if not hasattr(model, a)]
    if missing or not callable(model):
        raise CampaignError(f"not a score model (needs __call__(U, sigma) and {', '.join(missing)})")
    try:
        group = get_group(model.group)
    except ValueError as exc:
        raise CampaignError(str(exc)) from None
    beta0, smin, smax = float(model.beta0), float(model.sigma_min), float(model.sigma_max)
    if not (math.isfinite(beta0) and beta0 > 0):
        raise CampaignError(f"model beta0 must be > 0 for physics conditioning, got {beta0}")
    if not (0 < smin <= smax and math.isfinite(smax)):
        raise CampaignError(f"model noise range must satisfy 0 < sigma_min <= sigma_max, got {smin}, {smax}")
    return {
        "group": group.name, "beta0": beta0, "L0": int(getattr(model, "L0", 0) or 0),
        "sigma_min": smin, "sigma_max": smax, "class": type(model).__name__,
    }


# ------------------------------------------------------------------------ kernels
class ChainState(NamedTuple):
    """A batch of chains with the cached target log-density and drift of each."""

    U: torch.Tensor  # (B, ..., N, N)
    log_prob: torch.Tensor  # (B,)
    drift: torch.Tensor  # algebra, shaped like U


def _per_chain(x, like: torch.Tensor) -> torch.Tensor | float:
    """A scalar, 0-dim or (B,) step size broadcast against a (B, ..., N, N) tensor."""
    if torch.is_tensor(x) and x.ndim == 1:
        return x.reshape(x.shape[0], *([1] * (like.ndim - 1)))
    return x


def _sum_sites(x: torch.Tensor) -> torch.Tensor:
    """Sum over every axis but the chain axis (per-link quantities -> per chain)."""
    return x.reshape(x.shape[0], -1).sum(1)


def algebra_inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """<A, B> = -Re tr(A B) = Re sum conj(A_ij) B_ij for anti-Hermitian A, per link."""
    return (a.conj() * b).real.sum((-1, -2))


def init_state(U: torch.Tensor, log_prob: LogProb, drift: Drift) -> ChainState:
    return ChainState(U, log_prob(U), drift(U))


_BASIS_CACHE: dict = {}


def random_algebra(group: Group, shape, generator=None, dtype=torch.complex128, device=None) -> torch.Tensor:
    """Same draw as ``Group.random_algebra`` (standard normal coordinates times the
    orthonormal basis), with the basis cached per device: building it from a Python list
    every step would be a host-to-device copy, i.e. a synchronisation, on a GPU."""
    cdtype = complex_dtype(dtype)
    key = (group.name, cdtype, str(device))
    basis = _BASIS_CACHE.get(key)
    if basis is None:
        basis = _BASIS_CACHE[key] = group.basis(cdtype, device)
    c = torch.randn((*shape, group.algebra_dim), generator=generator, dtype=real_dtype(cdtype), device=device)
    return torch.einsum("...a,aij->...ij", c.to(cdtype), basis)


def _sqrt(x):
    return torch.sqrt(x) if torch.is_tensor(x) else math.sqrt(x)


def langevin_proposal(group: Group, U: torch.Tensor, d: torch.Tensor, eps, generator=None):
    """X = eps d + sqrt(2 eps) eta, U' = exp(X) U (reunitarised).  Returns (U', eta)."""
    e = _per_chain(eps, U)
    eta = random_algebra(group, U.shape[:-2], generator=generator, dtype=U.dtype, device=U.device)
    X = e * d + _sqrt(2 * e) * eta
    return group.reunitarize(matmul(group.exp(X), U)), eta


def log_proposal_ratio(group: Group, eta: torch.Tensor, d: torch.Tensor, d_new: torch.Tensor, eps) -> torch.Tensor:
    """log q(U|U') - log q(U'|U) per chain for the move X = eps d + sqrt(2 eps) eta,
    written as -sqrt(eps/2) <eta, d + d'> - (eps/4) |d + d'|^2."""
    s = d + d_new
    return -(_sqrt(eps / 2) * _sum_sites(algebra_inner(eta, s)) + (eps / 4) * _sum_sites(group.algebra_norm2(s)))


def mh_step(group: Group, state: ChainState, eps, log_prob: LogProb, drift: Drift, generator=None):
    """One Metropolis-adjusted Langevin step for every chain.

    ``eps`` is a float, a 0-dim tensor or a (B,) tensor (per-chain step size).  Returns
    (new_state, accept_prob (B,), accepted (B,) bool), all on the device; a non-finite
    proposal (log density, drift) is always rejected."""
    U, lp, d = state
    U1, eta = langevin_proposal(group, U, d, eps, generator)
    lp1, d1 = log_prob(U1), drift(U1)
    log_alpha = lp1 - lp + log_proposal_ratio(group, eta, d, d1, eps)
    finite = torch.isfinite(log_alpha)
    accept_prob = torch.where(finite, torch.exp(log_alpha.clamp(max=0)), torch.zeros_like(log_alpha))
    u = torch.rand(accept_prob.shape, generator=generator, dtype=accept_prob.dtype, device=accept_prob.device)
    accepted = (u < accept_prob) & finite
    m = accepted.reshape(-1, *([1] * (U.ndim - 1)))
    new = ChainState(torch.where(m, U1, U), torch.where(accepted, lp1, lp), torch.where(m, d1, d))
    return new, accept_prob, accepted


def langevin_step(group: Group, U: torch.Tensor, d: torch.Tensor, eps, generator=None) -> torch.Tensor:
    """One unadjusted Langevin step (annealing); biased on its own."""
    return langevin_proposal(group, U, d, eps, generator)[0]


def wilson_log_prob(beta: float) -> LogProb:
    """Exact target log-density exp(-S_beta) (Wilson action at the target beta)."""
    return lambda U: -wilson_action(U, beta)


def noise_levels(sigma_max: float, sigma_min: float, n_levels: int) -> np.ndarray:
    """Geometric schedule from sigma_max down to sigma_min (n_levels values)."""
    if n_levels == 0:
        return np.zeros(0)
    if n_levels == 1:
        return np.asarray([float(sigma_min)])
    return np.geomspace(float(sigma_max), float(sigma_min), n_levels)


def default_tail_eps(group: Group, beta: float, L: int) -> float:
    """Initial MH step size: ~ 1/(link stiffness) times the MALA d^(-1/3) scaling; the
    tail adaptation corrects it."""
    stiffness = 1.0 + 2.0 * beta / group.N
    dof = 2 * L * L * group.algebra_dim
    return min(1.0, 1.0 / stiffness) * dof ** (-1.0 / 3.0)


# below this fraction of chains whose Q the tail changed, sample_to_file says so
TAIL_Q_CHANGED_WARN = 0.5


# ------------------------------------------------------------------- settings
@dataclass
class MAALASettings:
    beta: float
    L: int
    n_samples: int
    n_levels: int = 100
    steps_per_level: int = 1
    level_step_scale: float = 0.1
    level_step_min: float | None = None
    sigma_max: float | None = None
    sigma_min: float | None = None
    sigma_tail: float | None = None
    tail_steps: int = 200
    tail_adapt: int | None = None
    eps: float | None = None
    target_acceptance: float = 0.6
    adapt_gain: float = 2.0
    batch: int = 64
    continue_chain: int = 0
    continue_sep: int = 1
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float64"

    def resolve(self, model_info: dict) -> None:
        """Fill the defaults that depend on the model, then validate."""
        if self.sigma_max is None:
            self.sigma_max = model_info["sigma_max"]
        if self.sigma_min is None:
            self.sigma_min = model_info["sigma_min"]
        if self.sigma_tail is None:
            self.sigma_tail = self.sigma_min
        if self.tail_adapt is None:
            self.tail_adapt = self.tail_steps // 2
        self.validate()
        if self.eps is None:
            self.eps = default_tail_eps(get_group(model_info["group"]), self.beta, self.L)
        if self.level_step_min is None:
            self.level_step_min = self.eps

    def validate(self) -> None:
        def finite_pos(name, allow_zero=False):
            v = getattr(self, name)
            ok = v is not None and math.isfinite(v) and (v >= 0 if allow_zero else v > 0)
            if not ok:
                raise CampaignError(f"{name} must be finite and {'>=' if allow_zero else '>'} 0, got {v}")

        finite_pos("beta", allow_zero=True)
        if self.L < 2:
            raise CampaignError(f"L must be >= 2, got {self.L}")
        for name in ("n_samples", "steps_per_level", "batch", "continue_sep"):
            if getattr(self, name) < 1:
                raise CampaignError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("n_levels", "tail_steps", "continue_chain", "tail_adapt"):
            if getattr(self, name) < 0:
                raise CampaignError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("level_step_scale", "sigma_max", "sigma_min", "sigma_tail", "adapt_gain"):
            finite_pos(name)
        if self.eps is not None:
            finite_pos("eps")
        if self.level_step_min is not None:
            finite_pos("level_step_min", allow_zero=True)
        if self.sigma_min > self.sigma_max:
            raise CampaignError(f"sigma_min={self.sigma_min} exceeds sigma_max={self.sigma_max}")
        if self.tail_steps and self.tail_adapt >= self.tail_steps:
            raise CampaignError(
                f"tail_adapt={self.tail_adapt} must be smaller than tail_steps={self.tail_steps} "
                "(the last tail steps run with the frozen step size)"
            )
        if not self.tail_steps and self.tail_adapt:
            raise CampaignError("tail_adapt > 0 needs tail_steps > 0")
        if not 0 < self.target_acceptance < 1:
            raise CampaignError(f"target acceptance must lie in (0, 1), got {self.target_acceptance}")
        if self.dtype not in ("float64", "float32"):
            raise CampaignError(f"dtype must be float64 or float32, got {self.dtype!r}")

    # derived
    @property
    def samples_per_chain(self) -> int:
        return self.continue_chain + 1

    @property
    def n_chains(self) -> int:
        return -(-self.n_samples // self.samples_per_chain)

    @property
    def batch_sizes(self) -> list[int]:
        n, b = self.n_chains, self.batch
        return [min(b, n - i) for i in range(0, n, b)]

    @property
    def mh_steps(self) -> int:
        return self.tail_steps + self.continue_chain * self.continue_sep

    @property
    def steps_per_batch(self) -> int:
        return self.n_levels * self.steps_per_level + self.mh_steps

    @property
    def independent(self) -> bool:
        return self.continue_chain == 0


class BatchResult(NamedTuple):
    samples: torch.Tensor  # (samples_per_chain, B, 2, L, L, N, N) on CPU
    history: dict  # numpy arrays, see the module docstring
    eps: float  # frozen tail step size
    wall_s: float


def _batch_seed(seed: int, index: int) -> int:
    from .seeds import seed_from

    return seed_from("maala-batch", index, base=seed)


def _charge(group: Group, U: torch.Tensor) -> torch.Tensor | None:
    """Topological charge per chain for U(1)/U(2) (None for SU(2)), without the host-side
    integrality check."""
    if group.name not in ("u1", "u2"):
        return None
    from .observables import topological_charge

    return topological_charge(group, U, tol=None)


def run_batch(
    model, s: MAALASettings, n_chains: int, generator: torch.Generator,
    device: torch.device, progress: Progress | None = None, progress_offset: int = 0,
) -> BatchResult:
    """Anneal and MH-correct ``n_chains`` chains; ``s`` must be resolved (``s.resolve``)."""
    start = time.monotonic()
    info = describe_model(model.model if isinstance(model, _ModelScore) else model)
    group = get_group(info["group"])
    rdtype = torch.float64 if s.dtype == "float64" else torch.float32
    cdtype = complex_dtype(rdtype)
    score = model if isinstance(model, _ModelScore) else _ModelScore(model, device, cdtype)
    scale = s.beta / info["beta0"]
    B, L = n_chains, s.L

    def drift_at(sigma: float) -> Drift:
        sig = torch.full((B,), sigma, dtype=rdtype, device=device)
        return lambda U: scale * score(U, sig)

    log_prob = wilson_log_prob(s.beta)
    U = group.haar((B, 2, L, L), generator=generator, dtype=rdtype, device=device)
    steps_done = 0

    def tick(extra):
        if progress is not None:
            progress.update(progress_offset + steps_done, extra)

    # ---- annealing (unadjusted), with the would-be MH probability as a diagnostic
    sigmas = noise_levels(s.sigma_max, s.sigma_min, s.n_levels)
    level_eps = np.maximum(s.level_step_scale * sigmas**2, s.level_step_min)
    level_acc = torch.zeros((s.n_levels,), dtype=rdtype, device=device)
    nonfinite = torch.zeros((), dtype=torch.int64, device=device)
    prev = None  # (level, eps, log p, drift, eta) of the previous move

    def sanitised(d):
        nonlocal nonfinite
        bad = ~torch.isfinite(d)
        nonfinite = nonfinite + bad.sum()
        return torch.where(bad, torch.zeros_like(d), d)

    def score_previous_move(lp, d):
        """MH probability of the previous annealing move against the exact target, with
        the reverse proposal built from the drift the next step actually uses."""
        j, eps0, lp0, d0, eta0 = prev
        log_alpha = lp - lp0 + log_proposal_ratio(group, eta0, d0, d, eps0)
        level_acc[j] += torch.nan_to_num(torch.exp(log_alpha.clamp(max=0)), nan=0.0).mean()

    for i, (sigma, eps) in enumerate(zip(sigmas.tolist(), level_eps.tolist())):
        drift = drift_at(sigma)
        for _ in range(s.steps_per_level):
            d = sanitised(drift(U))
            lp = log_prob(U)
            if prev is not None:
                score_previous_move(lp, d)
            U, eta = langevin_proposal(group, U, d, eps, generator)
            prev = (i, eps, lp, d, eta)
            steps_done += 1
            tick(lambda i=i, sigma=sigma: f"level {i + 1}/{s.n_levels} sigma={sigma:.3g}")

    # ---- Metropolis-adjusted tail at sigma_tail, adapted then frozen step size
    drift = drift_at(s.sigma_tail)
    state = init_state(U, log_prob, drift)
    q_start = _charge(group, U)
    q_changed = None if q_start is None else torch.zeros(B, dtype=rdtype, device=device)
    state = state._replace(drift=sanitised(state.drift))
    if prev is not None:
        score_previous_move(state.log_prob, state.drift)
    level_acc = level_acc / s.steps_per_level
    log_eps = torch.tensor(math.log(s.eps), dtype=rdtype, device=device)
    n_mh = s.mh_steps
    acc_hist = torch.zeros((n_mh, B), dtype=rdtype, device=device)
    eps_hist = torch.zeros(n_mh, dtype=rdtype, device=device)
    plaq_hist = torch.zeros(n_mh, dtype=rdtype, device=device)
    samples, on_device, sample_acc = [], [], []
    offload_bytes = 256 * 2**20
    frozen_sum = torch.zeros(B, dtype=rdtype, device=device)
    n_frozen = 0
    volume = L * L
    norm = 1.0 / (s.beta * volume) if s.beta > 0 else None

    def offload():
        # samples wait on the device and move in blocks: a copy to the host per sample
        # would synchronise the step loop
        if on_device:
            samples.append(torch.stack(on_device).to("cpu"))
            on_device.clear()

    def take_sample():
        on_device.append(state.U.detach().clone())
        if len(on_device) * state.U.numel() * state.U.element_size() > offload_bytes:
            offload()
        sample_acc.append(frozen_sum / n_frozen if n_frozen else torch.full_like(frozen_sum, float("nan")))

    if s.tail_steps == 0:
        take_sample()
    for k in range(n_mh):
        eps_t = torch.exp(log_eps)
        state, acc, _ = mh_step(group, state, eps_t, log_prob, drift, generator)
        acc_hist[k] = acc
        eps_hist[k] = eps_t
        if norm is not None:
            plaq_hist[k] = 1.0 + state.log_prob.mean() * norm
        else:
            plaq_hist[k] = (trace(plaquettes(state.U)).real / group.N).mean()
        if k < s.tail_adapt:
            gain = s.adapt_gain / math.sqrt(k + 1)
            log_eps = (log_eps + gain * (acc.mean() - s.target_acceptance)).clamp(-30.0, 3.0)
        else:
            frozen_sum = frozen_sum + acc
            n_frozen += 1
        steps_done += 1
        done = k + 1
        if done == s.tail_steps and q_start is not None:
            q_changed = (_charge(group, state.U) != q_start).to(rdtype)
        if done >= s.tail_steps and (done - s.tail_steps) % s.continue_sep == 0:
            take_sample()
        tick(lambda k=k, eps_t=eps_t: (
            f"{'adapt' if k < s.tail_adapt else 'tail' if k < s.tail_steps else 'chain'} "
            f"acc={float(acc_hist[max(0, k - 9):k + 1].mean()):.2f} eps={float(eps_t):.3g} "
            f"plaq={float(plaq_hist[k]):.4f}"
        ))

    offload()
    acc_np = acc_hist.cpu().numpy()
    frozen = acc_np[s.tail_adapt:]
    history = {
        "level_sigma": sigmas,
        "level_eps": level_eps,
        "level_acceptance": level_acc.cpu().numpy(),
        "tail_acceptance": acc_np.mean(1) if n_mh else np.zeros(0),
        "tail_eps": eps_hist.cpu().numpy(),
        "tail_plaquette": plaq_hist.cpu().numpy(),
        "sample_acceptance": torch.stack(sample_acc).cpu().numpy(),  # (samples_per_chain, B)
        "batch_acceptance": float(frozen.mean()) if frozen.size else float("nan"),
        "nonfinite_scores": int(nonfinite),
    }
    if q_changed is not None:
        history["tail_q_changed"] = q_changed.cpu().numpy()  # (B,)
    return BatchResult(torch.cat(samples), history, float(torch.exp(log_eps)), time.monotonic() - start)


# ------------------------------------------------------------------ file output
def _parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _resolve_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError, ValueError) as exc:
        raise CampaignError(f"device {device!r} is not available: {exc}") from None
    return dev


def sample_to_file(
    model,
    out,
    beta: float,
    L: int,
    n_samples: int,
    *,
    n_levels: int = 100,
    steps_per_level: int = 1,
    level_step_scale: float = 0.1,
    level_step_min: float | None = None,
    sigma_max: float | None = None,
    sigma_min: float | None = None,
    sigma_tail: float | None = None,
    tail_steps: int = 200,
    tail_adapt: int | None = None,
    eps: float | None = None,
    target_acceptance: float = 0.6,
    adapt_gain: float = 2.0,
    batch: int = 64,
    continue_chain: int = 0,
    continue_sep: int = 1,
    seed: int = 0,
    device: str = "cpu",
    dtype: str = "float64",
    model_path: str | None = None,
    progress: bool = True,
) -> Path:
    """Draw ``n_samples`` configurations at (beta, L) with MAALA and write them to ``out``.

    ``model`` is a score model (``ScoreModel``) or a path for ``campaign.io.load_model``.
    ``eps`` is the initial MH-tail step size (default: ``default_tail_eps``);
    ``tail_adapt`` (default tail_steps // 2) is how many tail steps adapt it.  Chains run in
    batches of ``batch``; each finished batch is checkpointed in ``out.parts/`` and a rerun
    resumes from there.  Chain index = global chain id, step = index along the continued
    chain (0 = end of the tail).  Returns the output path.
    """
    from . import io

    if isinstance(model, (str, Path)):
        model_path = str(model) if model_path is None else model_path
        model = load_score_model(model)
    info = describe_model(model)
    s = MAALASettings(
        beta=float(beta), L=int(L), n_samples=int(n_samples), n_levels=int(n_levels),
        steps_per_level=int(steps_per_level), level_step_scale=float(level_step_scale),
        level_step_min=None if level_step_min is None else float(level_step_min),
        sigma_max=sigma_max, sigma_min=sigma_min, sigma_tail=sigma_tail, tail_steps=int(tail_steps),
        tail_adapt=tail_adapt, eps=eps, target_acceptance=float(target_acceptance),
        adapt_gain=float(adapt_gain), batch=int(batch), continue_chain=int(continue_chain),
        continue_sep=int(continue_sep), seed=int(seed), device=str(device), dtype=str(dtype),
    )
    s.resolve(info)
    dev = _resolve_device(s.device)
    out = Path(out)
    parts = _parts_dir(out)
    fingerprint = {
        **{k: v for k, v in asdict(s).items() if k != "device"},
        "model": info, "model_path": str(model_path) if model_path is not None else "none",
    }
    sizes = s.batch_sizes
    results = _load_parts(parts, fingerprint, len(sizes))
    label = f"maala {info['group']} beta={s.beta:g} L={s.L}"
    total = s.steps_per_batch * len(sizes)
    bar = Progress(label, total, enabled=progress)
    if results and progress:
        print(f"{label}: resuming with {len(results)}/{len(sizes)} batches done", file=sys.stderr)
    rdtype = torch.float64 if s.dtype == "float64" else torch.float32
    score = _ModelScore(model, dev, complex_dtype(rdtype))
    for b, size in enumerate(sizes):
        if b in results:
            continue
        gen = torch.Generator(device=dev)
        gen.manual_seed(_batch_seed(s.seed, b))
        res = run_batch(score, s, size, gen, dev, bar, b * s.steps_per_batch)
        part = {"fingerprint": fingerprint, "batch": b, "samples": res.samples,
                "history": res.history, "eps": res.eps, "wall_s": res.wall_s}
        parts.mkdir(parents=True, exist_ok=True)
        io.save_torch_atomic(part, parts / f"batch_{b:05d}.pt")
        results[b] = part
        bar.update((b + 1) * s.steps_per_batch,
                   f"batch {b + 1}/{len(sizes)} acc={res.history['batch_acceptance']:.2f} eps={res.eps:.3g}",
                   force=True)

    links, chain, step, history, summary = _assemble(s, sizes, results)
    changed = summary.get("tail_q_changed")
    if progress and changed is not None and changed < TAIL_Q_CHANGED_WARN:
        print(f"note: the Metropolis-corrected tail changed the topological charge of {100 * changed:.0f}% of "
              "the chains; Q (and chi_t) then come from the annealing and are exact only as far as the "
              "annealing is -- more steps per level or a longer tail (see tail_q_changed)", file=sys.stderr)
    attrs = {
        **{k: v for k, v in asdict(s).items() if v is not None},
        "group": info["group"],
        "algorithm": "maala",
        "model_path": str(model_path) if model_path is not None else "none",
        "model_class": info["class"],
        "model_beta0": info["beta0"],
        "model_L0": info["L0"],
        "model_sigma_min": info["sigma_min"],
        "model_sigma_max": info["sigma_max"],
        "score_scale": s.beta / info["beta0"],
        "independent": s.independent,
        "mh_corrected": s.tail_steps > 0 or s.continue_chain > 0,
        "mh_target": "exp(-S_beta) Wilson action at the target beta",
        "n_chains": s.n_chains,
        "n_batches": len(sizes),
        "samples_per_chain": s.samples_per_chain,
        **summary,
    }
    io.write_ensemble(out, links, attrs, history=history, chain=chain, step=step)
    shutil.rmtree(parts, ignore_errors=True)
    return out


def _load_parts(parts: Path, fingerprint: dict, n_batches: int) -> dict:
    from . import io

    results = {}
    if not parts.exists():
        return results
    for path in sorted(parts.glob("batch_*.pt")):
        part = io.load_torch(path, "MAALA checkpoint part")
        if part.get("fingerprint") != fingerprint:
            raise CampaignError(
                f"checkpoint {path} was made with different settings or model; delete {parts} to start afresh"
            )
        if 0 <= part["batch"] < n_batches:
            results[part["batch"]] = part
    return results


def _assemble(s: MAALASettings, sizes: list[int], results: dict):
    """Concatenate batches (batch-major; within a batch measurement-major, chain-minor),
    truncated to exactly n_samples."""
    links, chain, step, sample_acc = [], [], [], []
    offset = 0
    for b, size in enumerate(sizes):
        part = results[b]
        smp = part["samples"]  # (K + 1, B, ...)
        k1 = smp.shape[0]
        links.append(smp.reshape(k1 * size, *smp.shape[2:]))
        chain.append(np.tile(np.arange(offset, offset + size), k1))
        step.append(np.repeat(np.arange(k1), size))
        sample_acc.append(np.asarray(part["history"]["sample_acceptance"]).reshape(-1))
        offset += size
    hist_parts = [results[b]["history"] for b in range(len(sizes))]
    history = {
        "level_sigma": np.asarray(hist_parts[0]["level_sigma"]),
        "level_eps": np.asarray(hist_parts[0]["level_eps"]),
        "level_acceptance": np.stack([h["level_acceptance"] for h in hist_parts], -1),
        "tail_acceptance": np.stack([h["tail_acceptance"] for h in hist_parts], -1),
        "tail_eps": np.stack([h["tail_eps"] for h in hist_parts], -1),
        "tail_plaquette": np.stack([h["tail_plaquette"] for h in hist_parts], -1),
        "batch_eps": np.asarray([results[b]["eps"] for b in range(len(sizes))]),
        "batch_acceptance": np.asarray([h["batch_acceptance"] for h in hist_parts]),
        "batch_chains": np.asarray(sizes),
        "batch_wall_s": np.asarray([results[b]["wall_s"] for b in range(len(sizes))]),
        "sample_acceptance": np.concatenate(sample_acc),
    }
    if all("tail_q_changed" in h for h in hist_parts):
        # per chain: did the corrected tail change the topological charge it inherited?
        history["tail_q_changed"] = np.concatenate([np.asarray(h["tail_q_changed"]).reshape(-1) for h in hist_parts])
    weights = np.asarray(sizes, dtype=float)
    acc = history["batch_acceptance"]
    summary = {
        "acceptance": float(np.sum(acc * weights) / weights.sum()) if np.all(np.isfinite(acc)) else float("nan"),
        "step_size_final": float(np.sum(history["batch_eps"] * weights) / weights.sum()),
        "nonfinite_scores": int(sum(h["nonfinite_scores"] for h in hist_parts)),
        "wall_time_s": float(history["batch_wall_s"].sum()),
    }
    if "tail_q_changed" in history:
        summary["tail_q_changed"] = float(history["tail_q_changed"].mean())
    n = s.n_samples  # measurement-major order: the surplus is the last steps of the last chains
    history["sample_acceptance"] = history["sample_acceptance"][:n]
    return torch.cat(links)[:n], np.concatenate(chain)[:n], np.concatenate(step)[:n], history, summary


# ----------------------------------------------------------------------- CLI
def load_score_model(path):
    from . import io

    loader = getattr(io, "load_model", None)
    if loader is None:
        raise CampaignError("this campaign version cannot load models yet (campaign.io.load_model is missing)")
    return loader(path)


def add_sample_arguments(p) -> None:
    from .cli import add_common_device, lattice_size, nonnegative_float, nonnegative_int, positive_float, positive_int

    p.add_argument("--model", required=True, help="trained score model (.pt, campaign.io.save_model)")
    p.add_argument("--beta", required=True, type=nonnegative_float, help="target coupling")
    p.add_argument("--L", required=True, type=lattice_size)
    p.add_argument("--n-samples", required=True, type=positive_int)
    p.add_argument("--out", required=True)
    p.add_argument("--levels", type=nonnegative_int, default=100, help="annealing noise levels")
    p.add_argument("--steps-per-level", type=positive_int, default=1)
    p.add_argument("--level-step-scale", type=positive_float, default=0.1,
                   help="annealing step size eps_i = max(scale * sigma_i^2, level-step-min)")
    p.add_argument("--level-step-min", type=nonnegative_float, default=None,
                   help="smallest annealing step size (default: the initial MH-tail step size; 0: no floor)")
    p.add_argument("--sigma-max", type=positive_float, default=None, help="default: the model's")
    p.add_argument("--sigma-min", type=positive_float, default=None, help="default: the model's")
    p.add_argument("--sigma-tail", type=positive_float, default=None,
                   help="noise level of the score in the MH tail (default: sigma-min)")
    p.add_argument("--tail-steps", type=nonnegative_int, default=200, help="Metropolis-adjusted steps per chain")
    p.add_argument("--tail-adapt", type=nonnegative_int, default=None,
                   help="first tail steps that adapt the step size (default: half the tail)")
    p.add_argument("--step-size", type=positive_float, default=None, help="initial MH-tail step size")
    p.add_argument("--target-acceptance", type=positive_float, default=0.6)
    p.add_argument("--batch", type=positive_int, default=64, help="chains per batch (and per checkpoint)")
    p.add_argument("--continue-chain", type=nonnegative_int, default=0,
                   help="further correlated samples per chain along the MH chain (0: independent samples)")
    p.add_argument("--continue-sep", type=positive_int, default=1, help="MH steps between continued samples")
    add_common_device(p)


def sample_from_args(args) -> Path:
    model = load_score_model(args.model)
    return sample_to_file(
        model, args.out, args.beta, args.L, args.n_samples,
        n_levels=args.levels, steps_per_level=args.steps_per_level,
        level_step_scale=args.level_step_scale, level_step_min=args.level_step_min,
        sigma_max=args.sigma_max, sigma_min=args.sigma_min,
        sigma_tail=args.sigma_tail, tail_steps=args.tail_steps, tail_adapt=args.tail_adapt,
        eps=args.step_size, target_acceptance=args.target_acceptance, batch=args.batch,
        continue_chain=args.continue_chain, continue_sep=args.continue_sep, seed=args.seed,
        device=args.device, dtype=args.dtype, model_path=args.model, progress=not args.quiet,
    )
