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


class _SampleBuffer:
    """Samples wait on the device and move to the host in blocks: a copy per sample would
    synchronise the step loop."""

    OFFLOAD_BYTES = 256 * 2**20

    def __init__(self):
        self.samples, self.on_device, self.acceptance = [], [], []

    def offload(self) -> None:
        if self.on_device:
            self.samples.append(torch.stack(self.on_device).to("cpu"))
            self.on_device.clear()

    def take(self, U: torch.Tensor, acceptance: torch.Tensor) -> None:
        self.on_device.append(U.detach().clone())
        if len(self.on_device) * U.numel() * U.element_size() > self.OFFLOAD_BYTES:
            self.offload()
        self.acceptance.append(acceptance)


class _MAALABatch:
    """One batch of chains: the unadjusted annealing (``anneal``), then the
    Metropolis-adjusted tail (``tail``) with its adapted, then frozen step size."""

    def __init__(self, model, s: SampleSettings, n_chains: int, generator: torch.Generator,
                 device: torch.device, progress: Progress | None, progress_offset: int):
        info = describe_model(model.model if isinstance(model, ModelScore) else model)
        self.s, self.B, self.generator, self.device = s, n_chains, generator, device
        self.group = get_group(info["group"])
        self.rdtype = real_dtype(s.dtype)
        self.score = model if isinstance(model, ModelScore) else ModelScore(model, device, complex_dtype(self.rdtype))
        self.scale = s.beta / info["beta0"]
        self.log_prob = wilson_log_prob(s.beta)
        self.progress, self.progress_offset = progress, progress_offset
        self.steps_done = 0
        self.nonfinite = torch.zeros((), dtype=torch.int64, device=device)
        self.sigmas = noise_levels(s.sigma_max, s.sigma_min, s.n_levels)
        self.level_eps = np.maximum(s.level_step_scale * self.sigmas**2, s.level_step_min)
        self.level_acc = torch.zeros((s.n_levels,), dtype=self.rdtype, device=device)
        self.prev = None  # (level, eps, log p, drift, eta) of the previous annealing move

    def tick(self, extra) -> None:
        if self.progress is not None:
            self.progress.update(self.progress_offset + self.steps_done, extra)

    def drift_at(self, sigma: float) -> Drift:
        sig = torch.full((self.B,), sigma, dtype=self.rdtype, device=self.device)
        return lambda U: self.scale * self.score(U, sig)

    def sanitised(self, d: torch.Tensor) -> torch.Tensor:
        bad = ~torch.isfinite(d)
        self.nonfinite = self.nonfinite + bad.sum()
        return torch.where(bad, torch.zeros_like(d), d)

    def score_previous_move(self, lp: torch.Tensor, d: torch.Tensor) -> None:
        """MH probability of the previous annealing move against the exact target, with
        the reverse proposal built from the drift the next step actually uses."""
        j, eps0, lp0, d0, eta0 = self.prev
        log_alpha = lp - lp0 + log_proposal_ratio(self.group, eta0, d0, d, eps0)
        self.level_acc[j] += torch.nan_to_num(torch.exp(log_alpha.clamp(max=0)), nan=0.0).mean()

    def anneal(self, U: torch.Tensor) -> torch.Tensor:
        """Unadjusted Langevin along the noise levels, with the would-be MH probability as a
        diagnostic."""
        s = self.s
        for i, (sigma, eps) in enumerate(zip(self.sigmas.tolist(), self.level_eps.tolist())):
            drift = self.drift_at(sigma)
            for _ in range(s.steps_per_level):
                d = self.sanitised(drift(U))
                lp = self.log_prob(U)
                if self.prev is not None:
                    self.score_previous_move(lp, d)
                U, eta = langevin_proposal(self.group, U, d, eps, self.generator)
                self.prev = (i, eps, lp, d, eta)
                self.steps_done += 1
                self.tick(lambda i=i, sigma=sigma: f"level {i + 1}/{s.n_levels} sigma={sigma:.3g}")
        return U

    def tail(self, U: torch.Tensor) -> dict:
        """The Metropolis-adjusted tail at sigma_tail and the continued chain; returns the
        samples and the tail's history."""
        s, group, B, rdtype, dev = self.s, self.group, self.B, self.rdtype, self.device
        drift = self.drift_at(s.sigma_tail)
        state = init_state(U, self.log_prob, drift)
        q_start = topological_charge_or_none(group, U)
        q_changed = None if q_start is None else torch.zeros(B, dtype=rdtype, device=dev)
        state = state._replace(drift=self.sanitised(state.drift))
        if self.prev is not None:
            self.score_previous_move(state.log_prob, state.drift)
        self.level_acc = self.level_acc / s.steps_per_level
        log_eps = torch.tensor(math.log(s.step_size), dtype=rdtype, device=dev)
        n_mh = s.mh_steps
        acc_hist = torch.zeros((n_mh, B), dtype=rdtype, device=dev)
        eps_hist = torch.zeros(n_mh, dtype=rdtype, device=dev)
        plaq_hist = torch.zeros(n_mh, dtype=rdtype, device=dev)
        buffer = _SampleBuffer()
        frozen_sum = torch.zeros(B, dtype=rdtype, device=dev)
        n_frozen = 0
        norm = 1.0 / (s.beta * (s.L * s.L)) if s.beta > 0 else None

        def take_sample():
            buffer.take(state.U, frozen_sum / n_frozen if n_frozen else torch.full_like(frozen_sum, float("nan")))

        if s.tail_steps == 0:
            take_sample()
        for k in range(n_mh):
            eps_t = torch.exp(log_eps)
            state, acc, _ = mh_step(group, state, eps_t, self.log_prob, drift, self.generator)
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
            self.steps_done += 1
            done = k + 1
            if done == s.tail_steps and q_start is not None:
                q_changed = (topological_charge_or_none(group, state.U) != q_start).to(rdtype)
            if done >= s.tail_steps and (done - s.tail_steps) % s.continue_sep == 0:
                take_sample()
            self.tick(lambda k=k, eps_t=eps_t: (
                f"{'adapt' if k < s.tail_adapt else 'tail' if k < s.tail_steps else 'chain'} "
                f"acc={float(acc_hist[max(0, k - 9):k + 1].mean()):.2f} eps={float(eps_t):.3g} "
                f"plaq={float(plaq_hist[k]):.4f}"
            ))
        buffer.offload()
        return {"samples": buffer.samples, "sample_acc": buffer.acceptance, "acc": acc_hist, "eps": eps_hist,
                "plaq": plaq_hist, "q_changed": q_changed, "log_eps": log_eps}

    def history(self, tail: dict) -> dict:
        acc_np = tail["acc"].cpu().numpy()
        frozen = acc_np[self.s.tail_adapt:]
        history = {
            "level_sigma": self.sigmas,
            "level_eps": self.level_eps,
            "level_acceptance": self.level_acc.cpu().numpy(),
            "tail_acceptance": acc_np.mean(1) if self.s.mh_steps else np.zeros(0),
            "tail_eps": tail["eps"].cpu().numpy(),
            "tail_plaquette": tail["plaq"].cpu().numpy(),
            "sample_acceptance": torch.stack(tail["sample_acc"]).cpu().numpy(),  # (samples_per_chain, B)
            "batch_acceptance": float(frozen.mean()) if frozen.size else float("nan"),
            "nonfinite_scores": int(self.nonfinite),
        }
        if tail["q_changed"] is not None:
            history["tail_q_changed"] = tail["q_changed"].cpu().numpy()  # (B,)
        return history


def run_maala_batch(
    model, s: SampleSettings, n_chains: int, generator: torch.Generator,
    device: torch.device, progress: Progress | None = None, progress_offset: int = 0,
) -> BatchResult:
    """Anneal and MH-correct ``n_chains`` chains; ``s`` must be resolved (``s.resolve``)."""
    start = time.monotonic()
    run = _MAALABatch(model, s, n_chains, generator, device, progress, progress_offset)
    U = run.group.haar((n_chains, 2, s.L, s.L), generator=generator, dtype=run.rdtype, device=device)
    U = run.anneal(U)
    tail = run.tail(U)
    return BatchResult(torch.cat(tail["samples"]), run.history(tail), float(torch.exp(tail["log_eps"])),
                       time.monotonic() - start)
