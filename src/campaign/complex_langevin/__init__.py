"""Complex Langevin for 0D models with a complex action, its correctness diagnostics and
diffusion models of the CL distribution P(x, y) (issue 19; arXiv 2412.01919, 2510.01328).
docs/complex_langevin.md has the physics and the closed-form Gaussian P(x, y)."""

from .diagnostics import drift_tail, moment_summary, verdict
from .exact import gaussian_covariance, gaussian_density, gaussian_score
from .langevin import CLSettings, run_cl
from .models import Gaussian, LogGaussian, Quartic, make_model, model_from_params

__all__ = ["CLSettings", "Gaussian", "LogGaussian", "Quartic", "drift_tail", "gaussian_covariance",
           "gaussian_density", "gaussian_score", "make_model", "model_from_params", "moment_summary",
           "run_cl", "verdict"]
