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

Batches side by side (``batches_per_pass``): several batches of equal size can run in one
vectorised pass, their particles stacked along the chain axis, so that each network call
evaluates all of them (small lattices are dispatch-bound: one call for 96 chains costs
about as much as one for 16).  Every batch keeps its own weights, resampling (within its
own particles only), log Z and history; the pass draws their random numbers from one
stream, so the samples differ from those of one batch at a time, not their distribution.

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
    """Kish's effective sample size of each row of log weights (last axis)."""
    w = torch.exp(logw - logw.max(-1, keepdim=True).values)
    return w.sum(-1) ** 2 / (w * w).sum(-1)


def _log_mean_exp(logw: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(logw, -1) - math.log(logw.shape[-1])


def systematic_resample(logw: torch.Tensor, generator) -> torch.Tensor:
    """Indices of a systematic resampling of the normalised weights exp(logw) (sorted),
    along the last axis: one independent resampling per row of a (P, n) logw."""
    n = logw.shape[-1]
    p = torch.softmax(logw, -1)
    u = torch.rand(logw.shape[:-1], generator=generator, dtype=logw.dtype, device=logw.device)
    positions = (u[..., None] + torch.arange(n, dtype=logw.dtype, device=logw.device)) / n
    return torch.searchsorted(torch.cumsum(p, -1), positions).clamp(max=n - 1)


class _SMCRun:
    """The particles of ``populations`` independent SMC runs of ``n_chains / populations``
    particles each, stacked along the chain axis, and everything that accumulates along the
    path: weights (P, n), log Z (P,), history (K, P, ...)."""

    def __init__(self, score, s: SampleSettings, path: SMCPath, n_chains: int, generator: torch.Generator,
                 device: torch.device, progress: Progress | None, progress_offset: int, adapt: bool,
                 populations: int = 1):
        if n_chains % populations:
            raise ValueError(f"{n_chains} chains do not split into {populations} equal populations")
        if adapt and populations != 1:
            raise ValueError("the pilot adapts its step sizes on one population")
        self.P, self.n = populations, n_chains // populations
        inner = score.model if isinstance(score, ModelScore) else score
        info = describe_model(inner)
        self.group = get_group(info["group"])
        self.rdtype = real_dtype(s.dtype)
        self.score = score if isinstance(score, ModelScore) else ModelScore(score, device, complex_dtype(self.rdtype))
        self.s, self.path, self.B, self.generator, self.device, self.adapt = s, path, n_chains, generator, device, adapt
        self.progress, self.progress_offset = progress, progress_offset
        self.scale = s.beta / info["beta0"]
        self.f64 = dict(dtype=torch.float64, device=device)
        self.nonfinite = torch.zeros(populations, dtype=torch.int64, device=device)
        self.steps_done = 0

    def tick(self, extra) -> None:
        if self.progress is not None:
            self.progress.update(self.progress_offset + self.steps_done * self.P, extra)

    def per_population(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ...) per chain -> (P, n, ...)."""
        return x.view(self.P, self.n, *x.shape[1:])

    def population_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of a per-chain (B,) quantity over each population, (P,).  One population takes
        the whole-tensor mean, the reduction of one batch at a time, so its numbers stay
        bit-identical to those of a run without passes."""
        return x.mean().reshape(1) if self.P == 1 else self.per_population(x).mean(-1)

    def model_drift(self, sigma: float):
        sig = torch.full((self.B,), sigma, dtype=self.rdtype, device=self.device)

        def drift(U):
            d = self.scale * self.score(U, sig)
            bad = ~torch.isfinite(d)
            self.nonfinite = self.nonfinite + bad.reshape(self.P, -1).sum(-1)
            return torch.where(bad, torch.zeros_like(d), d)

        return drift

    def drift_at(self, sigma: float, beta_i: float):
        if self.s.drift == "physics":
            return lambda U: -wilson_force(self.group, U, beta_i)
        return self.model_drift(sigma)

    def start(self) -> None:
        """Haar particles (density 1), unit weights, empty history."""
        K, f64 = len(self.path.sigma), self.f64
        self.U = self.group.haar((self.B, 2, self.s.L, self.s.L), generator=self.generator, dtype=self.rdtype,
                                 device=self.device)
        self.S = action_density_sum(self.U)
        P = self.P
        self.logw = torch.zeros((P, self.n), **f64)
        self.log_z = torch.zeros(P, **f64)
        self.hist = {k: torch.zeros((K, P), **f64) for k in (
            "level_acceptance", "level_ess", "level_log_weight_var", "level_resampled", "level_unique",
            "level_plaquette")}
        if self.group.has_topology:
            self.hist["level_chi_t"] = torch.zeros((K, P), **f64)
            self.hist["level_q_hist"] = torch.zeros((K, P, 2 * Q_HIST_MAX + 1), **f64)
        # the pilot adapts log c, eps = c * (first guess at this level): the guess carries the
        # coupling dependence, the control only the slowly varying rest
        self.log_c = torch.zeros((), **f64)
        self.eps_used = np.zeros(K)
        self.beta_prev = 0.0

    def moves(self, state: ChainState, eps: float, n: int, log_prob, drift):
        """n Metropolis-adjusted steps with step size eps (times the pilot's multiplier when
        adapting); returns (state, summed acceptance per population (P,), the step sizes used)."""
        s, adaptive = self.s, self.adapt
        acc_sum = torch.zeros(self.P, **self.f64)
        used = []
        for _ in range(n):
            step = (eps * torch.exp(self.log_c)).clamp(max=math.exp(LOG_EPS_RANGE[1])) if adaptive else eps
            used.append(step)
            state, acc, _ = mh_step(self.group, state, step.to(self.rdtype) if adaptive else step, log_prob, drift,
                                    self.generator)
            acc_sum = acc_sum + self.population_mean(acc)
            if adaptive:
                self.log_c = (self.log_c + PILOT_GAIN * (acc.mean() - s.target_acceptance)).clamp(*LOG_EPS_RANGE)
            self.steps_done += 1
        return state, acc_sum, used

    def reweight_and_resample(self, i: int, b: float) -> None:
        """Reweight to gamma_i, then resample when the ESS is low (a masked gather: no host
        synchronisation)."""
        n, hist, f64 = self.n, self.hist, self.f64
        logw = self.logw + (self.beta_prev - b) * self.per_population(self.S)
        ess = _kish(logw)
        hist["level_ess"][i] = ess / n
        hist["level_log_weight_var"][i] = logw.var(-1) if n > 1 else 0.0
        do = ess < self.s.resample_ess * n
        own = torch.arange(n, device=self.device)
        idx = torch.where(do[:, None], systematic_resample(logw, self.generator), own)
        self.log_z = self.log_z + torch.where(do, _log_mean_exp(logw), torch.zeros((), **f64))
        self.logw = torch.where(do[:, None], torch.zeros_like(logw), logw)
        rows = (idx + n * torch.arange(self.P, device=self.device)[:, None]).flatten()  # within each population
        self.U, self.S = self.U[rows], self.S[rows]
        hist["level_resampled"][i] = do.to(torch.float64)
        hist["level_unique"][i] = (idx[:, 1:] != idx[:, :-1]).sum(-1) + 1

    def level(self, i: int) -> None:
        """Level i: reweight, resample, Metropolis-adjusted moves targeting exp(-beta_i S)."""
        path, hist = self.path, self.hist
        sigma, b = float(path.sigma[i]), float(path.beta[i])
        self.reweight_and_resample(i, b)
        drift = self.drift_at(sigma, b)
        log_prob = (lambda V, b=b: -b * action_density_sum(V))
        state = ChainState(self.U, -b * self.S, drift(self.U))
        n_moves = int(path.steps[i])
        state, acc_sum, used = self.moves(state, float(path.eps[i]), n_moves, log_prob, drift)
        self.U = U = state.U
        self.S = -state.log_prob / b if b > 0 else action_density_sum(U)
        hist["level_acceptance"][i] = acc_sum / n_moves
        if self.adapt:
            self.eps_used[i] = float(torch.exp(torch.log(torch.stack(used)).mean()))
        self.record_observables(i)
        self.beta_prev = b
        self.tick(lambda i=i, sigma=sigma, b=b: (
            f"level {i + 1}/{len(path.sigma)} sigma={sigma:.3g} beta_i={b:.3g} "
            f"acc={float(hist['level_acceptance'][i].mean()):.2f} ess={float(hist['level_ess'][i].mean()):.2f}"))

    def record_observables(self, i: int) -> None:
        """Weighted plaquette (and topology) after the moves of level i."""
        hist, volume = self.hist, self.s.L * self.s.L
        p = torch.softmax(self.logw, -1)
        hist["level_plaquette"][i] = 1.0 - (p * self.per_population(self.S)).sum(-1) / volume
        if self.group.has_topology:
            from ..observables import topological_charge

            q = self.per_population(topological_charge(self.group, self.U, tol=None).to(torch.float64))
            hist["level_chi_t"][i] = (p * q * q).sum(-1) / volume
            n_bins = 2 * Q_HIST_MAX + 1
            bins = (q.clamp(-Q_HIST_MAX, Q_HIST_MAX) + Q_HIST_MAX).long()
            bins = bins + n_bins * torch.arange(self.P, device=self.device)[:, None]
            hist["level_q_hist"][i] = torch.zeros(self.P * n_bins, **self.f64).index_add_(
                0, bins.flatten(), p.flatten()).view(self.P, n_bins)

    def tail(self) -> tuple[torch.Tensor, float]:
        """Final reweighting to the target, then rejuvenation there (weights unchanged);
        returns the tail's acceptance per step and its step size."""
        s, path = self.s, self.path
        self.logw = self.logw + (self.beta_prev - path.target_beta) * self.per_population(self.S)
        tail_acc = torch.zeros((s.tail_steps, self.P), **self.f64)
        tail_eps = path.tail_eps
        if not s.tail_steps:
            return tail_acc, float(self.eps_used[-1]) if self.adapt else tail_eps
        if s.drift == "physics":
            drift = self.drift_at(float(path.sigma[-1]), path.target_beta)
        else:
            drift = self.model_drift(float(path.sigma[-1]))
        beta = path.target_beta
        log_prob = (lambda V: -beta * action_density_sum(V))
        state = ChainState(self.U, -beta * self.S, drift(self.U))
        start_eps = float(self.eps_used[-1]) if self.adapt else tail_eps
        if self.adapt:
            self.log_c = torch.zeros((), **self.f64)
        used_all = []
        for k in range(s.tail_steps):
            state, acc_sum, used = self.moves(state, start_eps, 1, log_prob, drift)
            tail_acc[k] = acc_sum
            used_all += used
            self.tick(lambda k=k: f"tail {k + 1}/{s.tail_steps} acc={float(tail_acc[max(0, k - 9):k + 1].mean()):.2f}")
        self.U = state.U
        if self.adapt:
            half = used_all[len(used_all) // 2:]
            tail_eps = float(torch.exp(torch.log(torch.stack(half)).mean()))
        return tail_acc, tail_eps

    def result(self, tail_acc: torch.Tensor, tail_eps: float, start: float) -> list[SMCBatch]:
        """One ``SMCBatch`` per population; the pass's wall time shared evenly."""
        s, path = self.s, self.path
        log_z = self.log_z + _log_mean_exp(self.logw)
        log_weights = (log_z[:, None] + self.logw - torch.logsumexp(self.logw, -1, keepdim=True)).cpu().numpy()
        hist = {k: v.cpu().numpy() for k, v in self.hist.items()}
        tail_acc, nonfinite, log_z = tail_acc.cpu().numpy(), self.nonfinite.cpu().numpy(), log_z.cpu().numpy()
        if self.adapt:
            steps = (allocate_steps(path.eps, self.eps_used, s.steps_per_level) if s.step_allocation == "relaxation"
                     else path.steps)
            path = SMCPath(path.sigma, path.beta, self.eps_used, float(tail_eps), path.target_beta, steps)
        U, wall = self.per_population(self.U.detach().cpu()), (time.monotonic() - start) / self.P
        batches = []
        for k in range(self.P):
            history = {name: v[:, k] for name, v in hist.items()}
            history["tail_acceptance"] = tail_acc[:, k]
            history["nonfinite_scores"] = int(nonfinite[k])
            # a population's own copy: a saved view would carry the whole pass's storage
            samples = U[k] if self.P == 1 else U[k].clone()
            batches.append(SMCBatch(samples, log_weights[k].copy(), float(log_z[k]), history, wall, path))
        return batches


def run_smc_batch(
    score, s: SampleSettings, path: SMCPath, n_chains: int, generator: torch.Generator,
    device: torch.device, progress: Progress | None = None, progress_offset: int = 0, adapt: bool = False,
) -> SMCBatch:
    """One independent SMC run of ``n_chains`` particles along ``path`` (module docstring).
    ``adapt=True`` is the pilot: step sizes follow the acceptance, and the returned path
    carries the tuned ones."""
    return run_smc_batches(score, s, path, n_chains, 1, generator, device, progress, progress_offset, adapt)[0]


def run_smc_batches(
    score, s: SampleSettings, path: SMCPath, n_chains: int, populations: int, generator: torch.Generator,
    device: torch.device, progress: Progress | None = None, progress_offset: int = 0, adapt: bool = False,
) -> list[SMCBatch]:
    """``populations`` independent SMC runs of ``n_chains`` particles each, side by side in
    one vectorised pass (module docstring: batches side by side); one ``SMCBatch`` each."""
    start = time.monotonic()
    run = _SMCRun(score, s, path, n_chains * populations, generator, device, progress, progress_offset, adapt,
                  populations)
    run.start()
    for i in range(len(path.sigma)):
        run.level(i)
    tail_acc, tail_eps = run.tail()
    return run.result(tail_acc, tail_eps, start)
