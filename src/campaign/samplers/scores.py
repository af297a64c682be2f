"""What the samplers need from a diffusion model, and reference scores.

A score function ``s(U, sigma)`` is the left-derivative (Lie-algebra) score of the
sigma-noised distribution (``campaign.diffusion``); U complex (B, 2, L, L, N, N), sigma
real (B,) -> algebra tensor shaped like U.  A model trained at ``beta0`` is used at a
target ``beta`` with its score scaled by beta / beta0 (physics conditioning,
docs/conventions.md).
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from ..actions import wilson_force
from ..errors import CampaignError
from ..groups import Group, complex_dtype, get_group, real_dtype


@runtime_checkable
class ScoreFn(Protocol):
    """What a sampler needs from a trained diffusion model (docs/ARCHITECTURE.md)."""

    group: Group
    beta0: float
    L0: int
    sigma_min: float
    sigma_max: float

    def __call__(self, U: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        ...


class PhysicsScore:
    """The exact small-noise limit of the score at beta0, -F_beta0(U) = -grad S_beta0,
    independent of sigma: a reference "perfect" small-noise model and a baseline."""

    def __init__(self, group, beta0: float, L0: int = 0, sigma_min: float = 1e-3, sigma_max: float = 10.0):
        self.group = get_group(group)
        self.beta0, self.L0 = float(beta0), int(L0)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)

    def __call__(self, U, sigma):
        return -wilson_force(self.group, U, self.beta0)


class ZeroScore(PhysicsScore):
    """An "untrained" model: score zero, so every Langevin proposal is a Gaussian random
    walk on the group."""

    def __call__(self, U, sigma):
        return torch.zeros_like(U)


class ModelScore:
    """Calls a score function without autograd, on the sampler's device, casting inputs to
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
    """The model attributes the samplers rely on, validated (CampaignError if not)."""
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


def coupling_fraction(model, sigmas) -> np.ndarray:
    """g(sigma) / g(0): the fraction of the target coupling that the model's score carries
    at noise level sigma, from the model's physics term beta0 g(sigma) (the weight of
    -grad S in ``campaign.diffusion.ScoreModel``); models without one (reference scores,
    a model trained without the physics term) use the form the ScoreModel starts from,
    ``campaign.diffusion.initial_physics_weight``.  Used by the SMC sampler to place its
    intermediate targets exp(-beta g(sigma) S)."""
    from ..diffusion import initial_physics_weight

    inner = model.model if isinstance(model, ModelScore) else model
    sig = torch.as_tensor(np.asarray(sigmas, dtype=np.float64))
    skip = getattr(inner, "skip_weight", None)
    arch = getattr(inner, "arch", {}) or {}
    with torch.no_grad():
        if callable(skip) and arch.get("skip", True):
            g = skip(sig.to(inner.real_dtype)).to(torch.float64) / float(inner.beta0)
        else:
            g = initial_physics_weight(get_group(inner.group), float(inner.beta0), sig)
    return np.clip(g.numpy(), 0.0, 1.0)


def load_score_model(path):
    from .. import io

    return io.load_model(path)
