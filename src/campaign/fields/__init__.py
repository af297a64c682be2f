"""Representations of a batch of gauge fields for molecular dynamics.

HMC only needs the action, the force, the drift q -> exp(eps p) q, momenta and kinetic
energy; how the links are stored is free.  Every representation here is exact (the same
action, force and trajectory as the generic one up to rounding); they differ in speed:

* ``MatrixField`` -- any group, complex N x N matrices (the reference).
* ``U1AngleField`` -- U(1) links as angles: the drift is an addition, the force one sine
  per plaquette, no unitarity drift.
* ``SU2QuaternionField`` -- SU(2) links as unit quaternions ``a0 1 + i a.sigma`` stored as
  real component planes: products, daggers, the projection to the algebra and the
  exponential are a few real multiply-adds.
* ``U2QuaternionField`` -- U(2) links as ``exp(i phi) Q`` with Q a unit quaternion: the
  U(1) phase is an angle, the SU(2) part as above.  (phi, Q) and (phi + pi, -Q) are the
  same link; nothing depends on the choice.

Shapes (real tensors, chain axis first like every other batch in the package):

==================  ====================  ===============================
field               q                     p (algebra coordinates)
==================  ====================  ===============================
U1AngleField        (chains, 2, L, L)     (chains, 2, L, L)
SU2QuaternionField  (chains, 2, 4, L, L)  (chains, 2, 3, L, L)
U2QuaternionField   (chains, 2, 5, L, L)  (chains, 2, 4, L, L)
==================  ====================  ===============================

Quaternion components are (a0, a1, a2, a3) of ``campaign.groups.quaternion_to_su2``; the
fifth U(2) component is phi.  Momenta are the coordinates ``p_a`` of ``sum_a p_a T_a`` in
the orthonormal basis of ``Group.basis``; every representation takes them from
``gaussian_momenta`` (a counter-based Threefry stream keyed by the run's generator), so
the same seed gives the same trajectory in every representation.

Memory layout: the fast fields create their tensors with the chain axis innermost in
memory (``chains_last``: a permuted view of a ``(2, [components,] L, L, chains)``
buffer), so that every lattice shift moves whole contiguous rows of chains and the
compiled kernels vectorise over chains without wrap-around index arithmetic.  This is a
pure performance matter: every method accepts any strides, elementwise torch ops keep
the layout, and with one chain it coincides with the contiguous one.

Speed: the per-step kernels (force, drift, action) are pure tensor functions.  On large
enough problems they run through ``torch.compile`` (inductor fuses each into one or two
C++/OpenMP or Triton loops; on CPU sines and cosines become range-reduced polynomials,
exact to a few ulp); they run eagerly for small problems, for inputs that require grad,
and whenever compilation is unavailable or fails (one warning, then eager for the rest
of the process).  Environment variable ``CAMPAIGN_COMPILE``: ``auto`` (default: compile
from ``COMPILE_MIN_LINKS`` links x chains on, for runs long enough to pay for compiling;
with a campaign compile cache the compiled kernels are ahead-of-time packages, ``aot``, that
later jobs load without tracing), ``1``/``always``, ``0``/``never``.
Nothing in the molecular-dynamics step synchronises with the host.

Modules (imports point down the list): ``aot`` (AOTInductor packages in the campaign's
compile cache), ``compile`` (when and how kernels compile),
``layout`` (chains innermost, lattice shifts), ``trig`` (polynomial sin/cos), ``momenta``
(Threefry Gaussian momenta), ``base`` (``LinkField``, ``MatrixField``), ``fast`` (plumbing
of the real-tensor fields), ``u1`` and ``quaternion`` (the kernels and fields of U(1) and
of SU(2)/U(2)); this module picks the field for a group.
"""

from __future__ import annotations

import torch

from ..groups import Group
from .base import LinkField, MatrixField
from .compile import COMPILE_MIN_LINKS, compile_disabled_reason, compile_mode
from .layout import chains_last
from .momenta import THREEFRY_ROTATIONS, gaussian_momenta, threefry4x32
from .quaternion import SU2QuaternionField, U2QuaternionField
from .u1 import U1AngleField

__all__ = [
    "COMPILE_MIN_LINKS", "FIELDS", "THREEFRY_ROTATIONS", "LinkField", "MatrixField", "SU2QuaternionField",
    "U1AngleField", "U2QuaternionField", "chains_last", "compile_disabled_reason", "compile_mode", "field_for",
    "gaussian_momenta", "threefry4x32",
]

FIELDS = {"u1": U1AngleField, "su2": SU2QuaternionField, "u2": U2QuaternionField}


def field_for(group: Group, dtype=torch.float64, device=None) -> LinkField:
    """The fastest exact representation available for the group."""
    cls = FIELDS.get(group.name)
    if cls is None:
        return MatrixField(group, dtype, device)
    return cls(dtype, device)
