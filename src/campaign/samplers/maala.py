"""MAALA, the papers' sampler: annealed Langevin with a Metropolis-adjusted tail.

APPROXIMATE.  Every batch of chains
1. starts from Haar-random links (the sigma_max-noised distribution is close to Haar);
2. anneals: ``n_levels`` noise levels, geometric from sigma_max down to sigma_min, with
   ``steps_per_level`` unadjusted Langevin steps per level,
       U' = exp(eps_i (beta/beta0) s(U, sigma_i) + sqrt(2 eps_i) eta) U,
   eps_i = max(level_step_scale * sigma_i^2, level_step_min) (Song & Ermon's
   alpha_i ~ sigma_i^2, floored so that the links still move at the last levels);
3. runs the Metropolis-adjusted tail: ``tail_steps`` steps at sigma_tail with drift
   (beta/beta0) s(U, sigma_tail) and the exact target exp(-S_beta); the first
   ``tail_adapt`` steps adapt eps toward ``target_acceptance``, then eps is frozen;
4. yields the final state of every chain; with ``continue_chain = K`` the tail goes on and
   yields K further (correlated) samples, one every ``continue_sep`` steps.

The tail is exp(-S_beta)-invariant but a few hundred local steps cannot undo what the
annealing hands over: at large beta the topological charge cannot change in the tail, so
Q (and chi_t) carry the annealing's bias.  Measured: U(1) trained at beta0 = 1, L = 16,
sampled at beta = 7: chi_t 5-6x the exact value.  The exact sampler is
``campaign.samplers.smc``; this one stays for comparison with the papers.

History (first axis = time):
  level_sigma, level_eps               (n_levels,)
  level_acceptance                     (n_levels, n_batches): mean MH probability that
                                       the unadjusted moves of the level would have had
                                       against the exact target (a diagnostic)
  tail_acceptance, tail_eps,
  tail_plaquette                       (n_mh_steps, n_batches): per MH step, batch means
  batch_eps, batch_acceptance,
  batch_chains, batch_wall_s           (n_batches,)
  sample_acceptance                    (n_samples,)
  tail_q_changed                       (n_chains,) U(1)/U(2): whether the tail changed Q
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np
import torch

from ..device import real_dtype
from ..groups import Group, complex_dtype, get_group, trace
from ..lattice import plaquettes
from ..progress import Progress
from .kernels import Drift, init_state, langevin_proposal, log_proposal_ratio, mh_step, noise_levels, wilson_log_prob
from .scores import ModelScore, describe_model
from .settings import SampleSettings

# below this fraction of chains whose Q the tail changed, the job says so
TAIL_Q_CHANGED_WARN = 0.5


class BatchResult(NamedTuple):
    samples: torch.Tensor  # (samples_per_chain, B, 2, L, L, N, N) on CPU
    history: dict  # numpy arrays, see the module docstring
    eps: float  # frozen tail step size
    wall_s: float


def topological_charge_or_none(group: Group, U: torch.Tensor) -> torch.Tensor | None:
    """Topological charge per chain for U(1)/U(2) (None for SU(2)), without the host-side
    integrality check."""
    if not group.has_topology:
        return None
    from ..observables import topological_charge

    return topological_charge(group, U, tol=None)


def run_maala_batch(
    model, s: SampleSettings, n_chains: int, generator: torch.Generator,
    device: torch.device, progress: Progress | None = None, progress_offset: int = 0,
) -> BatchResult:
    """Anneal and MH-correct ``n_chains`` chains; ``s`` must be resolved (``s.resolve``)."""
    start = time.monotonic()
    info = describe_model(model.model if isinstance(model, ModelScore) else model)
    group = get_group(info["group"])
    rdtype = real_dtype(s.dtype)
    cdtype = complex_dtype(rdtype)
    score = model if isinstance(model, ModelScore) else ModelScore(model, device, cdtype)
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
    q_start = topological_charge_or_none(group, U)
    q_changed = None if q_start is None else torch.zeros(B, dtype=rdtype, device=device)
    state = state._replace(drift=sanitised(state.drift))
    if prev is not None:
        score_previous_move(state.log_prob, state.drift)
    level_acc = level_acc / s.steps_per_level
    log_eps = torch.tensor(math.log(s.step_size), dtype=rdtype, device=device)
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
            q_changed = (topological_charge_or_none(group, state.U) != q_start).to(rdtype)
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

