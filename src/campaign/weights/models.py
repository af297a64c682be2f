"""The learning problems whose weight matrices we follow, behind one interface.

``build_model(name, settings, generator, dtype, device)`` returns a ``WeightModel``: a
``torch.nn.Module`` holding ``R`` independent replicas of one learning problem (batched
over replicas, as the project batches Markov chains; the nano-GPT has R = 1).  It is
trained by SGD on ``loss(batch, generator).sum()``, where ``loss`` returns the (R,)
per-replica mini-batch losses (so each replica gets exactly its own gradient) and batches
come from ``sample_batch(batch_size, generator)`` (fresh draws from the data distribution,
or windows of a fixed corpus for the nano-GPT).  ``spectra()`` maps names to the sorted
eigenvalues of the followed matrices, shape (R, k); ``theory()`` states what the
stationary state should be.

``theory()`` keys (absent when unknown):
  primary             name of the spectrum the temperature and spacing analysis uses
  matrix              what that spectrum is (words, for the file attributes)
  curvature, centre   the quadratic Coulomb-gas potential kappa (x - c)^2 / 2 near the
                      stationary point, in learning-time units (t = lr * step)
  temperature_coefficient
                      g in the prediction T = g lr / B (small lr / B)
  init_mp             {spectrum: {"q", "sigma2", "n_long"}}: Marchenko-Pastur law of the
                      initial spectrum (eigenvalues of the smaller Gram matrix)
  unfolding           "pooled" (default: a stationary ensemble) or "local_log" (each
                      spectrum unfolded on its own; campaign.weights.analysis)

Models: ``teacher_student`` (campaign.weights.teacher_student), ``rbm``
(campaign.weights.rbm), ``nanogpt`` (campaign.weights.nanogpt).
"""

from __future__ import annotations

import inspect

import torch

from ..errors import CampaignError

MODEL_NAMES = ("teacher_student", "rbm", "nanogpt")


class WeightModel(torch.nn.Module):
    """Interface of a learning problem (see the module docstring)."""

    name = "?"

    def sample_batch(self, batch_size: int, generator: torch.Generator):
        raise NotImplementedError

    def loss(self, batch, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def spectra(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def theory(self) -> dict:
        return {}

    def settings(self) -> dict:
        """The constructor settings (recorded with every run)."""
        return dict(self._settings)


def _model_class(name: str):
    if name == "teacher_student":
        from .teacher_student import TeacherStudent

        return TeacherStudent
    if name == "rbm":
        from .rbm import GaussianRBM

        return GaussianRBM
    if name == "nanogpt":
        from .nanogpt import NanoGPT

        return NanoGPT
    raise CampaignError(f"unknown weights model {name!r}; choose one of {', '.join(MODEL_NAMES)}")


def model_defaults(name: str) -> dict:
    """The model's settings and their defaults (its constructor's keyword arguments)."""
    sig = inspect.signature(_model_class(name).__init__)
    return {
        k: p.default for k, p in sig.parameters.items()
        if p.kind == p.KEYWORD_ONLY and k not in ("generator", "dtype", "device")
    }


def build_model(name: str, settings: dict | None, generator: torch.Generator,
                dtype=torch.float64, device="cpu") -> WeightModel:
    """A freshly initialised model (the generator draws the initial weights)."""
    cls = _model_class(name)
    allowed = model_defaults(name)
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise CampaignError(f"{name}: unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    model = cls(**settings, generator=generator, dtype=dtype, device=device)
    model._settings = {**allowed, **settings}
    return model
