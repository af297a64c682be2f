"""Sines and cosines inside compiled kernels: range reduction and Taylor polynomials."""

from __future__ import annotations

import math

import torch


# On CPU inductor calls SLEEF's 1-ulp sin/cos, several times slower than the rest of a
# kernel.  Instead: t = 2 pi k + r with |r| <= pi (Cody-Waite, two-part 2 pi), then a
# Taylor polynomial in r^2 (truncation error below 1e-18 in float64, 1e-8 in float32):
# a dozen fused multiply-adds, no branches.  Absolute error a few 1e-16 in float64 for
# |t| up to ~100 (beyond, the rounding of t itself dominates, as for any sine).  Eager
# code and other devices use torch.sin / torch.cos.
def _poly_wanted(x) -> bool:
    return x.device.type == "cpu" and torch.compiler.is_compiling()


def _reduce(t):
    """(k, r) with t = 2 pi k + r, |r| <= pi."""
    k = torch.round(t * (0.5 / math.pi))
    return k, (t - k * 6.283185307179586) - k * 2.4492935982947064e-16


def _horner(x2, coeffs):
    acc = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = acc * x2 + c
    return acc


def _taylor(dtype):
    """Coefficients of sin(r) / r and cos(r) in r^2 for |r| <= pi."""
    n_sin, n_cos = (15, 16) if dtype == torch.float64 else (10, 10)
    s = [(-1) ** k / math.factorial(2 * k + 1) for k in range(n_sin)]
    c = [(-1) ** k / math.factorial(2 * k) for k in range(n_cos)]
    return s, c


def _sin(x):
    if not _poly_wanted(x):
        return torch.sin(x)
    _, r = _reduce(x)
    return r * _horner(r * r, _taylor(x.dtype)[0])


def _cos(x):
    if not _poly_wanted(x):
        return torch.cos(x)
    _, r = _reduce(x)
    return _horner(r * r, _taylor(x.dtype)[1])


def _cos_sinc(t):
    """cos t and sin(t) / t for t >= 0."""
    if not _poly_wanted(t):
        return torch.cos(t), torch.sinc(t * (1 / math.pi))
    s, c = _taylor(t.dtype)
    k, r = _reduce(t)
    r2 = r * r
    sinc_r = _horner(r2, s)
    small = k == 0  # then r = t
    return _horner(r2, c), torch.where(small, sinc_r, r * sinc_r / torch.where(small, 1.0, t))


def _wrap_angle(t):
    """t - 2 pi k in [-pi, pi]: a multiplication and a rounding (``_reduce``), where
    torch.remainder divides (several times slower)."""
    return _reduce(t)[1]
