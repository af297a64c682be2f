"""Gaussian momenta from a counter-based generator (Threefry-4x32-20)."""

from __future__ import annotations

import math

import numpy as np
import torch

from .compile import _Kernel
from .trig import _cos, _sin

# Gaussian momenta come from a counter-based generator, Threefry-4x32-20 (Salmon, Moraes,
# Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC11; the Random123
# reference): the n-th pair of normals is a pure function of (key, n), so one compiled
# kernel draws all momenta in parallel, straight into the field's memory layout, with
# the same numbers on every device.  torch.randn's Mersenne twister is sequential and
# took a large share of a trajectory.  The 128-bit key is drawn
# from the run's torch.Generator at every refresh: the stream stays seeded by, and
# checkpointed with, that generator.
THREEFRY_ROTATIONS = ((10, 26), (11, 21), (13, 27), (23, 5), (6, 20), (17, 11), (25, 10), (18, 20))
_MASK32 = 0xFFFFFFFF


def _is_int32(x) -> bool:
    return torch.is_tensor(x) and x.dtype == torch.int32


def _wrap32(x):
    # int32 tensors wrap by themselves (two's complement; vector instructions wrap)
    return x if _is_int32(x) else x & _MASK32


def _rotl32(x, r):
    if _is_int32(x):  # >> is arithmetic on int32: keep only the r bits rotated in
        return (x << r) | ((x >> (32 - r)) & ((1 << r) - 1))
    return ((x << r) | (x >> (32 - r))) & _MASK32


def threefry4x32(counter, key, rounds: int = 20):
    """The Threefry-4x32 block function: four counter words and four key words, each a
    Python int, an int64 tensor of values in [0, 2^32), a numpy uint32 array or an int32
    tensor (the same bits, read as signed), to four pseudo-random words of that kind.
    int64 holds every intermediate exactly (no signed overflow anywhere); uint32 and
    int32 wrap, which the masks make no difference to."""
    ks = [*key, 0x1BD11BDA ^ key[0] ^ key[1] ^ key[2] ^ key[3]]
    x = [_wrap32(counter[i] + ks[i]) for i in range(4)]
    for r in range(rounds):
        a, b = THREEFRY_ROTATIONS[r % 8]
        i, j = (1, 3) if r % 2 == 0 else (3, 1)
        x[0] = _wrap32(x[0] + x[i])
        x[i] = _rotl32(x[i], a) ^ x[0]
        x[2] = _wrap32(x[2] + x[j])
        x[j] = _rotl32(x[j], b) ^ x[2]
        if r % 4 == 3:  # key injection
            s = r // 4 + 1
            x = [_wrap32(x[k] + ks[(s + k) % 5]) for k in range(4)]
            x[3] = _wrap32(x[3] + s)
    return x


def _as_int32(t):
    """int64 values in [0, 2^32) to int32 tensors with the same 32 bits."""
    return (t - ((t >> 31) << 32)).to(torch.int32)


def _counter_words(key, n_counters: int, dtype: torch.dtype):
    """The four Threefry words of counters 0 .. n_counters - 1, as tensors of dtype."""
    if key.device.type == "cpu" and not torch.compiler.is_compiling() and n_counters < 2**32:
        # eager on the CPU (small lattices): numpy's uint32 arithmetic wraps by itself and
        # costs a fraction of torch's per-operation overhead; the same bits
        n = np.arange(n_counters, dtype=np.uint32)
        zero = np.zeros_like(n)
        words = threefry4x32((n, zero, zero, zero), [np.uint32(k) for k in key.tolist()])
        return [torch.from_numpy(w.astype(np.float64)).to(dtype) for w in words]
    # int32 words: twice the lanes of int64 per vector instruction (half the time);
    # int32 -> float64 converts natively, and the unsigned value
    # is exact there, so the words round to float32 once, as from int64
    n = torch.arange(n_counters, device=key.device)
    zero = torch.zeros_like(n, dtype=torch.int32)
    words = threefry4x32((_as_int32(n & _MASK32), _as_int32(n >> 32), zero, zero), _as_int32(key).unbind(0))
    return [(w.to(torch.float64) + torch.where(w < 0, 4294967296.0, 0.0)).to(dtype) for w in words]


def _gaussian_pairs(key, n_pairs: int, dtype: torch.dtype):
    """(2, n_pairs) standard normals, Box-Muller from uniforms made of the counters' bits
    (the first uniform never 0, for the logarithm).  float64: pair n from counter n, two
    64-bit uniforms.  float32: counter n gives pairs n and n + ceil(n_pairs / 2), four
    32-bit uniforms -- a float32 normal cannot use more bits, and the integer work halves."""
    if dtype == torch.float64:
        w = _counter_words(key, n_pairs, dtype)
        u1 = (w[0] * 4294967296.0 + w[1] + 0.5) * 5.421010862427522e-20  # 2^-64
        u2 = (w[2] * 4294967296.0 + w[3]) * 5.421010862427522e-20
        return _box_muller(u1, u2)
    w = _counter_words(key, (n_pairs + 1) // 2, dtype)
    # both halves in one loop and one (2, 2, half) block: concatenating the halves first
    # made inductor's loops scale badly with threads (2 threads no faster than one)
    halves = [_box_muller((a + 0.5) * 2.3283064365386963e-10, b * 2.3283064365386963e-10)  # 2^-32
              for a, b in ((w[0], w[1]), (w[2], w[3]))]
    return torch.stack(halves, 1).flatten(1)[:, :n_pairs]


def _box_muller(u1, u2):
    """(2, n) standard normals from uniforms u1 in (0, 1] and u2 in [0, 1)."""
    r = torch.sqrt(-2.0 * torch.log(u1))
    theta = (2 * math.pi) * u2
    return torch.stack((r * _cos(theta), r * _sin(theta)))


_GAUSSIAN_PAIRS = _Kernel(_gaussian_pairs, dynamic=True)  # one compilation for every size


def gaussian_momenta(generator, shape, dtype, device, compiled: bool = False) -> torch.Tensor:
    """Standard normal momentum coordinates laid out (2, dim, L1, L2, chains) for
    shape = (chains, L1, L2, dim): pair number ((a L1 + x) L2 + y) chains + c of
    ``_gaussian_pairs`` is the coordinate a at site (x, y), chain c, of the links in
    direction 0 and 1.  Every field takes its momenta from here (a view, no copy), so one
    seed gives the same trajectory in every representation."""
    chains, L1, L2, dim = shape
    key = torch.randint(0, 2**32, (4,), generator=generator, dtype=torch.int64, device=device)
    z = _GAUSSIAN_PAIRS(compiled, key, dim * L1 * L2 * chains, dtype)
    return z.view(2, dim, L1, L2, chains)
