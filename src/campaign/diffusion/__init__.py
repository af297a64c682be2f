"""Diffusion on the gauge group.

* ``heat_kernel``: exact heat-kernel densities, scores and samples per group (pure maths);
* ``dsm``: forward noising, training noise levels and the denoising score-matching loss;
* ``lcnn``: the gauge-equivariant network (L-CNN);
* ``score_model``: ``ScoreModel``, physics skip term plus L-CNN, the score the sampler uses.

Imports point one way: heat_kernel <- dsm; heat_kernel, lcnn <- score_model.
"""

from .dsm import dsm_loss, perturb, sample_sigma
from .heat_kernel import (
    FUNDAMENTAL_DECAY,
    TARGETS,
    heat_kernel_log_density,
    heat_kernel_sample,
    heat_kernel_score,
    kernel_score,
    measure_score_approximation,
    small_noise_score,
    su2_heat_kernel,
)
from .score_model import DEFAULT_ARCH, ScoreModel, initial_physics_parameters, initial_physics_weight

__all__ = [
    "DEFAULT_ARCH", "FUNDAMENTAL_DECAY", "TARGETS", "ScoreModel", "dsm_loss", "heat_kernel_log_density",
    "heat_kernel_sample", "heat_kernel_score", "initial_physics_parameters", "initial_physics_weight",
    "kernel_score", "measure_score_approximation", "perturb", "sample_sigma", "small_noise_score",
    "su2_heat_kernel",
]
