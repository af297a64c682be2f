"""Zero-dimensional models with a complex action S(z), for complex Langevin.

Each model gives the CL drift K(z) = -S'(z) of the holomorphic action and the exact
expectation values <z^n> = int dx x^n e^{-S(x)} / int dx e^{-S(x)} along the real axis
(``exact_moment``), which is what a correct CL process must reproduce.

* ``Gaussian(sigma)``: S = sigma z^2 / 2, complex sigma with Re sigma > 0.  The CL
  distribution P(x, y) is a 2D Gaussian known in closed form (``campaign.complex_langevin.exact``).
* ``Quartic(sigma, lam)``: S = sigma z^2/2 + lam z^4/4 (Aarts, Giudice, Seiler 2013; the
  model of arXiv 2412.01919 / 2510.01328 with sigma = 1 + i, lam = 1).
* ``LogGaussian(p, alpha)``: the weight (z + i alpha)^p e^{-z^2/2}, S = z^2/2 - p log(z + i alpha)
  (Nishimura, Shimasaki arXiv 1504.08359; Nagata, Nishimura, Shimasaki arXiv 1606.07627): a
  drift with a pole at z = -i alpha, the standard example where CL converges to a wrong
  result when the process comes close to the pole (small alpha).

The lattice model (the 0+1D Bose gas at nonzero mu) lives in ``bose_gas.py`` and is
registered here as "bose-gas".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import CampaignError
from .bose_gas import BoseGas


def _complex(value, name: str) -> complex:
    try:
        z = complex(value)
    except (TypeError, ValueError):
        raise CampaignError(f"{name} must be a complex number such as 1+1j, got {value!r}") from None
    if not (math.isfinite(z.real) and math.isfinite(z.imag)):
        raise CampaignError(f"{name} must be finite, got {value!r}")
    return z


class Model:
    """A 0D complex action: name, parameters, drift and exact moments."""

    name = "model"

    def drift(self, z: torch.Tensor) -> torch.Tensor:
        """K(z) = -dS/dz for a complex tensor z."""
        raise NotImplementedError

    def weight(self, x: np.ndarray) -> np.ndarray:
        """e^{-S(x)} on the real axis (complex), for the quadrature."""
        raise NotImplementedError

    def params(self) -> dict:
        raise NotImplementedError

    def exact_moment(self, n: int) -> complex:
        return quadrature_moment(self.weight, n)

    # the observable interface shared with the lattice model (bose_gas.BoseGas): the 0D
    # models' observables are the moments z^n, keyed by n
    field_shape = ()

    def observables(self, z, orders=(2, 4)) -> dict:
        z = np.asarray(z)
        return {n: z ** n for n in orders}

    def exact_observable(self, n) -> complex:
        return self.exact_moment(int(n))


@dataclass
class Gaussian(Model):
    sigma: complex = 1.0 + 1.0j
    name = "gaussian"

    def __post_init__(self):
        self.sigma = _complex(self.sigma, "sigma")
        if self.sigma.real <= 0:
            # the linear CL process has no stationary distribution: it runs away
            raise CampaignError(f"the Gaussian model needs Re sigma > 0, got sigma = {self.sigma}")

    def drift(self, z):
        return -self.sigma * z

    def weight(self, x):
        return np.exp(-0.5 * self.sigma * x * x)

    def params(self):
        return {"model": self.name, "sigma_re": self.sigma.real, "sigma_im": self.sigma.imag}

    def exact_moment(self, n: int) -> complex:
        # <z^n> = (n-1)!! / sigma^(n/2) for even n (analytic continuation of the real Gaussian)
        if n % 2:
            return 0j
        return complex(math.prod(range(n - 1, 0, -2)) / self.sigma ** (n // 2))


@dataclass
class Quartic(Model):
    sigma: complex = 1.0 + 1.0j
    lam: complex = 1.0
    name = "quartic"

    def __post_init__(self):
        self.sigma = _complex(self.sigma, "sigma")
        self.lam = _complex(self.lam, "lambda")
        if self.lam.real <= 0 and not (self.lam == 0 and self.sigma.real > 0):
            raise CampaignError(f"the quartic model needs Re lambda > 0 (integrable weight), got lambda = {self.lam}")

    def drift(self, z):
        return -(self.sigma * z + self.lam * z ** 3)

    def weight(self, x):
        return np.exp(-0.5 * self.sigma * x * x - 0.25 * self.lam * x ** 4)

    def params(self):
        return {"model": self.name, "sigma_re": self.sigma.real, "sigma_im": self.sigma.imag,
                "lam_re": self.lam.real, "lam_im": self.lam.imag}


@dataclass
class LogGaussian(Model):
    p: int = 4
    alpha: float = 1.0
    name = "log-gaussian"

    def __post_init__(self):
        if int(self.p) != self.p or self.p < 1:
            raise CampaignError(f"the power p must be a positive integer, got {self.p!r}")
        self.p = int(self.p)
        self.alpha = float(self.alpha)
        if not math.isfinite(self.alpha) or self.alpha <= 0:
            raise CampaignError(f"alpha must be > 0 (the pole sits at z = -i alpha), got {self.alpha!r}")

    def drift(self, z):
        return -z + self.p / (z + 1j * self.alpha)

    def weight(self, x):
        return (x + 1j * self.alpha) ** self.p * np.exp(-0.5 * x * x)

    def params(self):
        return {"model": self.name, "p": self.p, "alpha": self.alpha}


MODELS = {"gaussian": Gaussian, "quartic": Quartic, "log-gaussian": LogGaussian, "bose-gas": BoseGas}


def make_model(name: str, **params) -> Model:
    if name not in MODELS:
        raise CampaignError(f"unknown complex Langevin model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](**params)


def model_from_params(params: dict) -> Model:
    """Inverse of ``Model.params()`` (e.g. from a file's attributes)."""
    name = params["model"]
    if name == "gaussian":
        return Gaussian(complex(params["sigma_re"], params["sigma_im"]))
    if name == "quartic":
        return Quartic(complex(params["sigma_re"], params["sigma_im"]), complex(params["lam_re"], params["lam_im"]))
    if name == "log-gaussian":
        return LogGaussian(int(params["p"]), float(params["alpha"]))
    if name == "bose-gas":
        return BoseGas(n_t=int(params["n_t"]), m=float(params["m"]), lam=float(params["lam"]),
                         mu=float(params["mu"]))
    raise CampaignError(f"unknown complex Langevin model {name!r}")


def quadrature_moment(weight, n: int, cutoff: float = 30.0) -> complex:
    """<x^n> of the complex weight on the real axis, by adaptive quadrature of its real and
    imaginary parts.  ``cutoff``: the integrand is negligible beyond |x| = cutoff for the
    models here (weights decay at least like e^{-Re(sigma) x^2/2} or e^{-x^4/4})."""
    from scipy.integrate import quad

    def integral(f):
        re, re_err = quad(lambda x: f(x).real, -cutoff, cutoff, limit=400, epsabs=0, epsrel=1e-11, full_output=1)[:2]
        im, im_err = quad(lambda x: f(x).imag, -cutoff, cutoff, limit=400, epsabs=0, epsrel=1e-11, full_output=1)[:2]
        # full_output silences the round-off warning of a part that vanishes by symmetry
        # (its relative tolerance cannot be met); check the absolute accuracy instead
        scale = max(abs(re), abs(im), 1e-300)
        if max(re_err, im_err) > 1e-8 * scale:
            raise CampaignError(f"quadrature of the complex weight did not converge (error {max(re_err, im_err):.1e})")
        return complex(re, im)

    z0 = integral(weight)
    if abs(z0) == 0:
        raise CampaignError("the partition function vanishes: <z^n> is undefined")
    return integral(lambda x: x ** n * weight(x)) / z0
