"""The exact diffusion sampler: sequential Monte Carlo along the model's noise levels.

Why this construction (measured, docs/exact_sampling.md)
--------------------------------------------------------
Unweighted MAALA is biased wherever its local tail cannot move the topological charge.
Importance weights make any sampler exact; what decides the cost is their variance.
U(1), L = 16, model trained at beta0 = 1, sampled at beta = 7, 64 particles:
  * weights along the plain annealed Langevin path (Crooks/Jarzynski, reverse Langevin
    move as backward kernel, no intermediate targets): var(log w) ~ 600, ESS ~ 1, at
    100-1000 levels: the unadjusted moves' discretisation and non-equilibrium work are
    extensive (they grow with the volume);
  * the reverse-SDE path with the noising kernel as backward kernel: ESS 43 of 64 at
    beta = beta0 (L = 8, 1000 levels) but var(log w) ~ 110 at beta = 7: the scaled score
    is not the score of the noised beta = 7 distribution;
  * this module: intermediate targets with a known density and Metropolis-adjusted moves,
    so the only weight increments are between targets, plus resampling: ESS/N ~ 0.6-0.9
    at the end of every batch, the exact chi_t reached at beta = 7.

The path
--------
Level i = 1..K targets gamma_i(U) = exp(-beta_i S(U)), the couplings 0 < beta_1 < ... <
beta_K = beta spaced evenly in thermodynamic length (``thermodynamic_couplings``: linear
below beta = N, logarithmic above, where the action's variance per plaquette goes from
constant to ~1/beta^2).  The model's score enters at the noise level sigma_i where its
physics part carries that coupling, beta g(sigma_i) = beta_i (``scores.coupling_fraction``;
clamped to the model's noise range).  Particles start from Haar (density 1), and per level
  1. reweight:  log w += -(beta_i - beta_{i-1}) S(U)            (AIS increment)
  2. resample (systematic) when the batch's ESS/N < ``resample_ess``; log Z accumulates
     the mean weight, weights reset;
  3. Metropolis-adjusted Langevin moves targeting gamma_i (``steps_per_level`` on average;
     the pilot spends them where the drift needs small steps, ``allocate_steps``), with the
     model's score at sigma_i, scaled by beta/beta0, as drift (``drift = "model"``), or
     the exact force -beta_i F (``drift = "physics"``, the baseline without the network).
After the last level (beta_K = beta), ``tail_steps`` moves at the target: they leave the
weights unchanged and give duplicated particles new configurations.  Every move is exactly
gamma_i-invariant whatever the drift, so the weighted particles represent exp(-S_beta)
whatever the model: the model's quality shows up as acceptance, step size and ESS, never
as bias.

Step sizes are not adapted on the particles that become samples: a pilot run (``pilot``)
with its own seed and ``steps_per_level`` moves per level tunes eps_i per level (a
multiplier on the first guess ``kernels.default_step_size(beta_i)``, tracking
Robbins-Monro toward ``target_acceptance``) and the tail step size, and allocates the
production's moves per level (``step_allocation``); production batches use all of it
unchanged, so every kernel is fixed in advance.  Resampling is adaptive (ESS-triggered), the standard
consistent SMC scheme.

Weights and errors
------------------
Each batch is an independent SMC run.  Its particles' log weights are written as
log Zhat_b + log(w_i / sum_j w_j), where Zhat_b (the product of the mean weights at every
resampling and at the end) is the batch's unbiased estimate of Z(beta) = integral of
exp(-S_beta) over Haar measure.  Self-normalised over the whole file, the weights then
combine the batches as sum_b Zhat_b fhat_b / sum_b Zhat_b, which converges as the number of
batches grows even at a fixed number of particles per batch.  Particles of one batch share
ancestors: errors come from the jackknife over batches (``campaign.stats.weighted_summary``).

Every log-density, log weight and log Z accumulates in float64, also in float32 runs.
Nothing in the level loop synchronises with the host (resampling is a masked gather).

History per batch (first axis = level; ``job`` stacks batches on a last axis):
  level_sigma, level_beta, level_eps,
  level_steps                                (K,)   the path, the pilot's step sizes and moves (job)
  level_acceptance                           (K,)   mean Metropolis probability
  level_ess                                  (K,)   ESS/N after reweighting, before resampling
  level_log_weight_var                       (K,)   variance of the log weights there
  level_resampled, level_unique              (K,)   resampled?  distinct particles after it
  level_plaquette                            (K,)   weighted mean plaquette after the moves
  level_chi_t, level_q_hist                  (K,), (K, 2 Q_HIST_MAX + 1)  U(1)/U(2): weighted
                                                    <Q^2>/V and distribution of Q (clipped)
  tail_acceptance                            (tail_steps,)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from ..actions import wilson_force
from ..device import real_dtype
from ..groups import complex_dtype, get_group
from ..progress import Progress
from .kernels import ChainState, action_density_sum, default_step_size, mh_step
from .scores import ModelScore, coupling_fraction, describe_model
from .settings import SampleSettings

Q_HIST_MAX = 10  # the Q distribution per level is recorded for |Q| <= this (outer bins clip)
PILOT_GAIN = 1.0  # tracking gain of the pilot's step-size control (log c per unit acceptance)
LOG_EPS_RANGE = (-30.0, 1.0)


@dataclass
class SMCPath:
    """Everything fixed before the first sample: levels, couplings, step sizes, steps."""

    sigma: np.ndarray  # (K,)
    beta: np.ndarray  # (K,) intermediate couplings
    eps: np.ndarray  # (K,) Metropolis step size per level
    tail_eps: float
    target_beta: float
    steps: np.ndarray  # (K,) Metropolis steps per level

    def as_dict(self) -> dict:
        return {"sigma": self.sigma.tolist(), "beta": self.beta.tolist(), "eps": self.eps.tolist(),
                "tail_eps": self.tail_eps, "target_beta": self.target_beta, "steps": self.steps.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "SMCPath":
        return cls(np.asarray(d["sigma"], dtype=np.float64), np.asarray(d["beta"], dtype=np.float64),
                   np.asarray(d["eps"], dtype=np.float64), float(d["tail_eps"]), float(d["target_beta"]),
                   np.asarray(d["steps"], dtype=np.int64))


def allocate_steps(first_guess: np.ndarray, tuned: np.ndarray, steps_per_level: int, cap: int = 8) -> np.ndarray:
    """Metropolis steps per level in proportion to first_guess / tuned step size, with the
    same total as ``steps_per_level`` everywhere (each level 1 .. cap * steps_per_level).

    The first guess scales like the target's relaxation time in Langevin time (1 / link
    stiffness); a drift that needs smaller steps than that at the same acceptance needs
    proportionally more of them for the particles to keep up with the path -- the
    model's score at intermediate noise levels does (docs/exact_sampling.md)."""
    need = np.asarray(first_guess, dtype=np.float64) / np.asarray(tuned, dtype=np.float64)
    total = steps_per_level * len(need)
    steps = np.clip(np.rint(total * need / need.sum()), 1, cap * steps_per_level).astype(np.int64)
    return steps


class SMCBatch(NamedTuple):
    samples: torch.Tensor  # (B, 2, L, L, N, N) on CPU
    log_weights: np.ndarray  # (B,) float64, logsumexp = log_z
    log_z: float
    history: dict
    wall_s: float
    path: SMCPath  # the pilot's tuned path (production: the path it ran)


def thermodynamic_couplings(beta: float, n_levels: int, crossover: float) -> np.ndarray:
    """n_levels couplings 0 < beta_1 < ... < beta_K = beta at equal spacing in
    l(b) = b / c for b <= c, 1 + log(b / c) above (c = ``crossover``).  The variance of the
    action per plaquette is ~ constant at small coupling and ~ 1/b^2 at large, so equal
    steps in l keep the AIS weight increments (Delta b)^2 var(S) about equal."""
    c = float(crossover)
    top = beta / c if beta <= c else 1.0 + math.log(beta / c)
    ell = np.linspace(0.0, top, n_levels + 1)[1:]
    return np.where(ell <= 1.0, ell * c, c * np.exp(ell - 1.0))


def noise_for_couplings(score, fractions: np.ndarray, sigma_min: float, sigma_max: float) -> np.ndarray:
    """sigma_i where the model's physics part carries the fraction g(sigma_i) = fractions_i
    of the coupling (g decreasing; clamped to [sigma_min, sigma_max])."""
    grid = np.geomspace(sigma_min, sigma_max, 4001)
    g = coupling_fraction(score, grid)  # decreasing in sigma
    # interpolate log sigma against g (np.interp needs increasing abscissae)
    order = np.argsort(g, kind="stable")
    return np.exp(np.interp(fractions, g[order], np.log(grid)[order]))


def initial_path(score, s: SampleSettings) -> SMCPath:
    """Couplings, noise levels and first-guess step sizes of the path (the pilot's start)."""
    info = describe_model(score.model if isinstance(score, ModelScore) else score)
    group = get_group(info["group"])
    if s.beta > 0:
        beta = thermodynamic_couplings(s.beta, s.n_levels, crossover=float(group.N))
        sigma = noise_for_couplings(score, beta / s.beta, s.sigma_min, s.sigma_max)
    else:
        beta = np.zeros(s.n_levels)
        sigma = np.full(s.n_levels, float(s.sigma_min))
    eps = np.asarray([default_step_size(group, b, s.L) for b in beta])
    steps = np.full(s.n_levels, s.steps_per_level, dtype=np.int64)
    return SMCPath(sigma, beta, eps, default_step_size(group, s.beta, s.L), float(s.beta), steps)


def _kish(logw: torch.Tensor) -> torch.Tensor:
    w = torch.exp(logw - logw.max())
    return w.sum() ** 2 / (w * w).sum()


def _log_mean_exp(logw: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(logw, 0) - math.log(logw.shape[0])


def systematic_resample(logw: torch.Tensor, generator) -> torch.Tensor:
    """Indices of a systematic resampling of the normalised weights exp(logw) (sorted)."""
    n = logw.shape[0]
    p = torch.softmax(logw, 0)
    u = torch.rand((), generator=generator, dtype=logw.dtype, device=logw.device)
    positions = (u + torch.arange(n, dtype=logw.dtype, device=logw.device)) / n
    return torch.searchsorted(torch.cumsum(p, 0), positions).clamp(max=n - 1)


def run_smc_batch(
    score, s: SampleSettings, path: SMCPath, n_chains: int, generator: torch.Generator,
    device: torch.device, progress: Progress | None = None, progress_offset: int = 0, adapt: bool = False,
) -> SMCBatch:
    """One independent SMC run of ``n_chains`` particles along ``path`` (module docstring).
    ``adapt=True`` is the pilot: step sizes follow the acceptance, and the returned path
    carries the tuned ones."""
    start = time.monotonic()
    inner = score.model if isinstance(score, ModelScore) else score
    info = describe_model(inner)
    group = get_group(info["group"])
    rdtype = real_dtype(s.dtype)
    score = score if isinstance(score, ModelScore) else ModelScore(score, device, complex_dtype(rdtype))
    B, L, K = n_chains, s.L, len(path.sigma)
    volume = L * L
    scale = s.beta / info["beta0"]
    f64 = dict(dtype=torch.float64, device=device)
    nonfinite = torch.zeros((), dtype=torch.int64, device=device)

    def model_drift(sigma: float):
        sig = torch.full((B,), sigma, dtype=rdtype, device=device)

        def drift(U):
            nonlocal nonfinite
            d = scale * score(U, sig)
            bad = ~torch.isfinite(d)
            nonfinite = nonfinite + bad.sum()
            return torch.where(bad, torch.zeros_like(d), d)

        return drift

    def drift_at(sigma: float, beta_i: float):
        if s.drift == "physics":
            return lambda U: -wilson_force(group, U, beta_i)
        return model_drift(sigma)

    steps_done = 0

    def tick(extra):
        if progress is not None:
            progress.update(progress_offset + steps_done, extra)

    U = group.haar((B, 2, L, L), generator=generator, dtype=rdtype, device=device)
    S = action_density_sum(U)
    logw = torch.zeros(B, **f64)
    log_z = torch.zeros((), **f64)
    hist = {k: torch.zeros(K, **f64) for k in (
        "level_acceptance", "level_ess", "level_log_weight_var", "level_resampled", "level_unique",
        "level_plaquette")}
    if group.has_topology:
        hist["level_chi_t"] = torch.zeros(K, **f64)
        hist["level_q_hist"] = torch.zeros((K, 2 * Q_HIST_MAX + 1), **f64)
    # the pilot adapts log c, eps = c * (first guess at this level): the guess carries the
    # coupling dependence, the control only the slowly varying rest
    log_c = torch.zeros((), **f64)
    eps_used = np.zeros(K)
    beta_prev = 0.0
    threshold = s.resample_ess * B
    arange = torch.arange(B, device=device)

    def moves(state: ChainState, eps: float, adaptive: bool, n: int, log_prob, drift):
        """n Metropolis-adjusted steps with step size eps (times the pilot's multiplier when
        ``adaptive``); returns (state, summed acceptance, the step sizes used)."""
        nonlocal log_c, steps_done
        acc_sum = torch.zeros((), **f64)
        used = []
        for _ in range(n):
            step = (eps * torch.exp(log_c)).clamp(max=math.exp(LOG_EPS_RANGE[1])) if adaptive else eps
            used.append(step)
            state, acc, _ = mh_step(group, state, step.to(rdtype) if adaptive else step, log_prob, drift, generator)
            acc_sum = acc_sum + acc.mean()
            if adaptive:
                log_c = (log_c + PILOT_GAIN * (acc.mean() - s.target_acceptance)).clamp(*LOG_EPS_RANGE)
            steps_done += 1
        return state, acc_sum, used

    for i in range(K):
        sigma, b = float(path.sigma[i]), float(path.beta[i])
        # 1. reweight to gamma_i
        logw = logw + (beta_prev - b) * S
        ess = _kish(logw)
        hist["level_ess"][i] = ess / B
        hist["level_log_weight_var"][i] = logw.var() if B > 1 else 0.0
        # 2. resample (a masked gather: no host synchronisation)
        do = ess < threshold
        idx = torch.where(do, systematic_resample(logw, generator), arange)
        log_z = log_z + torch.where(do, _log_mean_exp(logw), torch.zeros((), **f64))
        logw = torch.where(do, torch.zeros_like(logw), logw)
        U, S = U[idx], S[idx]
        hist["level_resampled"][i] = do.to(torch.float64)
        hist["level_unique"][i] = (idx[1:] != idx[:-1]).sum() + 1
        # 3. Metropolis-adjusted moves targeting exp(-b S)
        drift = drift_at(sigma, b)
        log_prob = (lambda V, b=b: -b * action_density_sum(V))
        state = ChainState(U, -b * S, drift(U))
        n_moves = int(path.steps[i])
        state, acc_sum, used = moves(state, float(path.eps[i]), adapt, n_moves, log_prob, drift)
        U = state.U
        S = -state.log_prob / b if b > 0 else action_density_sum(U)
        hist["level_acceptance"][i] = acc_sum / n_moves
        if adapt:
            eps_used[i] = float(torch.exp(torch.log(torch.stack(used)).mean()))
        p = torch.softmax(logw, 0)
        hist["level_plaquette"][i] = 1.0 - (p * S).sum() / volume
        if group.has_topology:
            from ..observables import topological_charge

            q = topological_charge(group, U, tol=None).to(torch.float64)
            hist["level_chi_t"][i] = (p * q * q).sum() / volume
            bins = (q.clamp(-Q_HIST_MAX, Q_HIST_MAX) + Q_HIST_MAX).long()
            hist["level_q_hist"][i] = torch.zeros(2 * Q_HIST_MAX + 1, **f64).index_add_(0, bins, p)
        beta_prev = b
        tick(lambda i=i, sigma=sigma, b=b: (
            f"level {i + 1}/{K} sigma={sigma:.3g} beta_i={b:.3g} acc={float(hist['level_acceptance'][i]):.2f} "
            f"ess={float(hist['level_ess'][i]):.2f}"))

    # final reweighting to the target, then rejuvenation at the target (weights unchanged)
    logw = logw + (beta_prev - path.target_beta) * S
    tail_acc = torch.zeros(s.tail_steps, **f64)
    tail_eps = path.tail_eps
    if s.tail_steps:
        if s.drift == "physics":
            drift = drift_at(float(path.sigma[-1]), path.target_beta)
        else:
            drift = model_drift(float(path.sigma[-1]))
        beta = path.target_beta
        log_prob = (lambda V: -beta * action_density_sum(V))
        state = ChainState(U, -beta * S, drift(U))
        start_eps = float(eps_used[-1]) if adapt else tail_eps
        if adapt:
            log_c = torch.zeros((), **f64)
        used_all = []
        for k in range(s.tail_steps):
            state, acc_sum, used = moves(state, start_eps, adapt, 1, log_prob, drift)
            tail_acc[k] = acc_sum
            used_all += used
            tick(lambda k=k: f"tail {k + 1}/{s.tail_steps} acc={float(tail_acc[max(0, k - 9):k + 1].mean()):.2f}")
        U = state.U
        if adapt:
            half = used_all[len(used_all) // 2:]
            tail_eps = float(torch.exp(torch.log(torch.stack(half)).mean()))
    elif adapt:
        tail_eps = float(eps_used[-1])
    log_z = log_z + _log_mean_exp(logw)
    log_weights = (log_z + logw - torch.logsumexp(logw, 0)).cpu().numpy()
    history = {k: v.cpu().numpy() for k, v in hist.items()}
    history["tail_acceptance"] = tail_acc.cpu().numpy()
    history["nonfinite_scores"] = int(nonfinite)
    if adapt:
        steps = (allocate_steps(path.eps, eps_used, s.steps_per_level) if s.step_allocation == "relaxation"
                 else path.steps)
        new_path = SMCPath(path.sigma, path.beta, eps_used, float(tail_eps), path.target_beta, steps)
    else:
        new_path = path
    return SMCBatch(U.detach().cpu(), log_weights, float(log_z), history, time.monotonic() - start, new_path)
