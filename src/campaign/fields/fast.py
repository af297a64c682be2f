"""Shared plumbing of the real-tensor (fast) representations: kernel dispatch, the
coefficient tensors, momenta and the fused drift/kick pairs."""

from __future__ import annotations

import torch

from ..groups import Group
from . import compile as _compile
from .base import LinkField
from .compile import _Kernel
from .layout import chains_last
from .momenta import gaussian_momenta


# Fused drift+kick pairs save kernel calls and memory passes, but inductor recomputes
# the sines of the shared plaquettes inside them; beyond this size of the field the
# recomputation costs more than the passes saved (benchmarks/hmc_kernels.py: per pair,
# the 4-pair kernel is faster at U(1) float32 L = 32 x 64 chains, 0.5 MiB, and slower
# at L = 64 x 64 chains, 2 MiB).
FUSE_MAX_BYTES = 2**20


def _kinetic(p):
    # actions, kinetic energies and H accumulate in float64 whatever the field's dtype:
    # dH is a small difference of two extensive sums
    return 0.5 * p.square().sum(tuple(range(1, p.ndim)), dtype=torch.float64)


_KINETIC = _Kernel(_kinetic)


class _FastField(LinkField):
    """Shared plumbing of the real-tensor representations."""

    components = 0  # per link; 0: a bare angle
    _force_kernel = _density_kernel = _drift_kernel = _kick_kernel = _drift_kick_kernel = None
    _normalise_kernel = _hamiltonian_kernel = None
    _fused_drift_kicks: dict = {}  # pairs per call -> kernel, largest first

    def __init__(self, group: Group, dtype=torch.float64, device=None):
        super().__init__(group, dtype, device)
        self._scalars: dict = {}

    def compiles(self, q):
        mode = _compile.compile_mode()
        if mode == "never" or _compile.compile_disabled_reason() is not None:
            return False
        if mode == "always":
            return True
        # the run length decides, also with a campaign compile cache: a short run stays
        # eager whatever the cache holds, so its bytes do not depend on which job ran first
        # (compiled and eager kernels differ by rounding), and no short job pays a cold build
        if self.expected_work is not None and not _compile.compile_pays(self.name, q.dtype, self.expected_work):
            return False
        return q.shape[0] * 2 * q.shape[-1] * q.shape[-2] >= _compile.COMPILE_MIN_LINKS

    def _use(self, q, *others) -> bool:
        if any(torch.is_tensor(t) and t.requires_grad for t in (q, *others)):
            return False
        return self.compiles(q)

    def _tensor(self, x, q):
        """beta or eps for a kernel: one value, or one per chain, as a 1-d tensor of q's
        dtype and device (the chain axis is innermost inside the kernels, so it
        broadcasts as is).  Not a Python float, which the compiled kernel would bake in
        and recompile for every new value; not a 0-d tensor, for which dynamo adds a
        guard calling .item() -- a host sync on every call on a GPU.  Python numbers are
        cached: an integrator uses the same few coefficients thousands of times, and a
        fresh tensor per call costs as much as a small kernel."""
        if torch.is_tensor(x):
            return x.to(dtype=q.dtype, device=q.device).reshape(-1)
        key = (float(x), q.dtype, q.device)
        t = self._scalars.get(key)
        if t is None:
            if len(self._scalars) >= 64:
                self._scalars.clear()
            # torch.full, not torch.tensor: no blocking host-to-device copy on a GPU
            t = self._scalars[key] = torch.full((1,), float(x), dtype=q.dtype, device=q.device)
        return t

    def _scaled(self, beta, c, q):
        """beta * c as a kernel argument (one multiplication in Python for a number)."""
        if torch.is_tensor(beta):
            return self._tensor(beta, q) * c
        return self._tensor(float(beta) * c, q)

    def _shape(self, chains, L):
        return (chains, 2, self.components, L, L) if self.components else (chains, 2, L, L)

    def cold_start(self, chains: int, L: int | None = None) -> torch.Tensor:
        q = torch.zeros(self._shape(chains, L), dtype=self.real_dtype, device=self.device)
        if self.components:
            q[:, :, 0] = 1
        return chains_last(q)

    def action(self, q, beta):
        return self._tensor(beta, q) * self._density_kernel(self._use(q), q)

    def mean_plaquette(self, q):
        return 1 - self._density_kernel(self._use(q), q) / (q.shape[-1] * q.shape[-2])

    def force(self, q, beta):
        return self._force_kernel(self._use(q, beta), q, self._tensor(beta, q))

    def drift(self, q, p, eps):
        return self._drift_kernel(self._use(q, p, eps), q, p, self._tensor(eps, q))

    def kick(self, p, q, beta, c):
        return self._kick_kernel(self._use(q, p, beta), q, p, self._scaled(beta, c, q))

    def drift_kick(self, q, p, h, beta, c):
        if self._drift_kick_kernel is None:
            return super().drift_kick(q, p, h, beta, c)
        return self._drift_kick_kernel(self._use(q, p, beta, h), q, p, self._tensor(h, q), self._scaled(beta, c, q))

    def drift_kicks(self, q, p, h, beta, kicks):
        kicks, use, ht = list(kicks), self._use(q, p, beta, h), self._tensor(h, q)
        fused = self._fused_drift_kicks if q.numel() * q.element_size() <= FUSE_MAX_BYTES else {}
        while kicks:
            size = next((n for n in fused if n <= len(kicks)), 1)
            if size == 1:
                q, p = self.drift_kick(q, p, h, beta, kicks.pop(0))
                continue
            coefficients = [self._scaled(beta, c, q) for c in kicks[:size]]
            q, p = fused[size](use, q, p, ht, *coefficients)
            del kicks[:size]
        return q, p

    def momenta(self, q, generator):
        chains, L1, L2 = q.shape[0], q.shape[-2], q.shape[-1]
        shape = (chains, L1, L2, self.group.algebra_dim)
        z = gaussian_momenta(generator, shape, q.dtype, q.device, self._use(q)).movedim(-1, 0)
        return z if self.components else z[:, :, 0]

    def kinetic(self, p):
        return _KINETIC(self._use(p), p)

    def hamiltonian(self, q, p, beta):
        return self._hamiltonian_kernel(self._use(q, p, beta), q, p, self._tensor(beta, q))

    def normalise(self, q):
        return self._normalise_kernel(self._use(q), q)
