"""Complex Langevin for 0D models with a complex action and for the 0+1D Bose gas at nonzero
chemical potential (bose_gas.py), its correctness diagnostics and diffusion models of the CL
distribution P(x, y) (issue 19; arXiv 2412.01919, 2510.01328).  docs/complex_langevin.md has
the physics, the closed-form Gaussian P(x, y), the exact Bose-gas reference and the workflow
section (campaign.py, pipeline.py)."""

from .bose_gas import BoseGas
from .diagnostics import drift_tail, histogram_chi2, moment_summary, verdict
from .exact import gaussian_covariance, gaussian_density, gaussian_score
from .langevin import CLSettings, run_cl
from .models import Gaussian, LogGaussian, Quartic, make_model, model_from_params

__all__ = ["BoseGas", "CLSettings", "Gaussian", "LogGaussian", "Quartic", "drift_tail", "gaussian_covariance",
           "gaussian_density", "gaussian_score", "histogram_chi2", "make_model", "model_from_params", "moment_summary",
           "run_cl", "verdict"]
