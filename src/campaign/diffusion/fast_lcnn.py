"""The L-CNN of ``campaign.diffusion.lcnn`` in real arithmetic: same parameters, same
function (to rounding), several times faster.

Representation
--------------
A site field is a complex 2x2 matrix; write it as a complexified quaternion
``W = w_0 1 + sum_k w_k e_k`` with ``e_k = i sigma_k`` and complex w (U(1): just w_0).
It is stored as real tensors channels-last, ``(B, L, L, K, C, 2)``: K = 4 components
(1 for U(1)), C channels, (Re, Im) last.  In this basis

* parallel transport ``U W U^dag`` leaves w_0 alone and rotates (w_1, w_2, w_3) by the
  SO(3) matrix of the link's SU(2) part (a U(2) phase cancels; for U(1) it is the
  identity), so transporting a field is one 4x4 real matrix per site instead of two
  complex 2x2 products, and for U(1) only a shift;
* ``W^dag = (conj w_0, -conj w)``, a fixed real-linear map, so the (W, W^dag) channel
  mixing of ``LBilin`` is a single real matrix product;
* the product is the quaternion product with ``e_j e_k = -delta_jk - eps_jkl e_l``;
* ``Re tr W / N``, ``Im tr W / N`` are Re w_0, Im w_0, and ``tr(W W^dag) / N = sum |w_k|^2``.

Channel mixing with complex weights is a real matrix product on the last (C, 2) axes.
A convolution mixes first and transports after (transport is linear and acts on every
channel alike), Horner-style for kernel_size > 2, so no term stack is concatenated.
Only the input loops and the output link fields are complex matrices.

``FastLCNN`` subclasses ``LCNN``: the state_dict is the reference's, so any model file
loads into either.  Its ``forward`` returns what ``LCNN.forward`` returns (complex
algebra elements per link, the parameters' precision).  ``ScoreModel(fast=True)`` uses it;
it is not the default: on a loaded 2-core CPU it measured 0.65-1.0x the reference in eager
mode and 1.3x compiled (SU(2), L = 32, batch 16, float32), see benchmarks/maala.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..groups import complex_dtype
from ..lattice import links
from .lcnn import LCNN, LBilin, input_loops

SITE_AXES = (1, 2)  # x, y axes of a channels-last field (B, L, L, K, C, 2)


# ------------------------------------------------------------ representation
def to_quaternion(M: torch.Tensor) -> torch.Tensor:
    """Complex (..., N, N) -> real (..., K, 2): w_0 (N = 1), or (w_0, w_1, w_2, w_3) with
    M = w_0 1 + sum_k w_k i sigma_k (N = 2)."""
    if M.shape[-1] == 1:
        return torch.view_as_real(M[..., 0, 0]).unsqueeze(-2)
    m00, m01, m10, m11 = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
    w = torch.stack(((m00 + m11) / 2, (m01 + m10) / 2j, (m01 - m10) / 2, (m00 - m11) / 2j), -1)
    return torch.view_as_real(w)


def algebra_to_matrix(c: torch.Tensor, N: int) -> torch.Tensor:
    """Real algebra coordinates (..., K) in the basis i 1, i sigma_k -> complex (..., N, N)
    anti-Hermitian matrices (c = (c_0, c_1, c_2, c_3): i c_0 1 + sum_k c_k i sigma_k)."""
    if N == 1:
        return torch.complex(torch.zeros_like(c), c)[..., None]
    c0, c1, c2, c3 = c.unbind(-1)
    zero = torch.zeros_like(c0)
    re = torch.stack((zero, c2, -c2, zero), -1)
    im = torch.stack((c0 + c3, c1, c1, c0 - c3), -1)
    return torch.complex(re, im).unflatten(-1, (2, 2))


def adjoint_matrix(u: torch.Tensor) -> torch.Tensor:
    """4x4 real matrix of W -> u W u^dag on quaternion components, for unitary 2x2 links
    (..., 2, 2): block diag(1, R) with R in SO(3) the rotation of the SU(2) part."""
    q = to_quaternion(u)  # u = e^{i alpha} q with q a real unit quaternion
    # R_ij = (|u_0|^2 - |u|^2) delta_ij + 2 P_ij + 2 eps_ijk P_0k with P_ab = Re conj(u_a) u_b:
    # bilinear in (conj u, u), so the phase e^{i alpha} drops out
    P = (q[..., :, None, :] * q[..., None, :, :]).sum(-1)  # (..., 4, 4)
    v1, v2, v3 = (2 * P[..., 0, 1:]).unbind(-1)
    zero = torch.zeros_like(v1)
    eps_v = torch.stack((zero, v3, -v2, -v3, zero, v1, v2, -v1, zero), -1).unflatten(-1, (3, 3))
    diag = (P[..., 0, 0] - P[..., 1, 1] - P[..., 2, 2] - P[..., 3, 3])[..., None, None]
    R = 2 * P[..., 1:, 1:] + diag * torch.eye(3, dtype=P.dtype, device=P.device) + eps_v
    return F.pad(R, (1, 0, 1, 0)) + F.pad(torch.ones_like(R[..., :1, :1]), (0, 3, 0, 3))


def quaternion_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-channel product of fields (..., K, C, 2) (complex components, K = 1 or 4)."""
    ac, bc = torch.view_as_complex(a), torch.view_as_complex(b)
    if a.shape[-3] == 1:
        return torch.view_as_real(ac * bc)
    a0, a1, a2, a3 = ac.unbind(-2)
    b0, b1, b2, b3 = bc.unbind(-2)
    c = torch.stack((
        a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3,
        a0 * b1 + a1 * b0 - (a2 * b3 - a3 * b2),
        a0 * b2 + a2 * b0 - (a3 * b1 - a1 * b3),
        a0 * b3 + a3 * b0 - (a1 * b2 - a2 * b1),
    ), -2)
    return torch.view_as_real(c)


def real_mixing(w: torch.Tensor, conjugate: bool = False) -> torch.Tensor:
    """Complex weight (C_out, C_in) -> real (2 C_in, 2 C_out) matrix R with
    x.flatten(-2) @ R = (w x) (or w conj(x)) on (C, 2)-shaped fields x."""
    wr, wi = w.real.T, w.imag.T
    rows_re = torch.stack((wr, wi), -1)  # from Re x_j: (Re, Im) of the output
    rows_im = torch.stack((-wi, wr), -1)  # from Im x_j
    if conjugate:
        rows_im = -rows_im
    return torch.stack((rows_re, rows_im), 1).reshape(2 * w.shape[1], 2 * w.shape[0])


def mix(x: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Apply a ``real_mixing`` matrix to a field (..., C_in, 2) -> (..., C_out', 2)."""
    return (x.flatten(-2) @ R).unflatten(-1, (-1, 2))


# ------------------------------------------------------------------- transport
def _rotate(R: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """w_0 kept, w_i -> sum_j R_ij w_j, as a broadcast product and a sum (batched
    products of 3x3 matrices are several times slower on CPU)."""
    rotated = (R * X[..., None, 1:, :, :]).sum(-3)  # (..., 3, 3, C, 2) summed over j
    return torch.cat((X[..., :1, :, :], rotated), -3)


class Transport:
    """Parallel transport of channels-last fields along both axes, for given links."""

    def __init__(self, U: torch.Tensor, rdt: torch.dtype):
        self.abelian = U.shape[-1] == 1
        if not self.abelian:
            # forward: R(x); backward: R(x - mu)^T applied before the shift
            # R_ij(x) as (B, L, L, 3, 3, 1, 1), broadcasting against (C, 2) per component
            self.R = [adjoint_matrix(links(U, mu))[..., 1:, 1:, None, None].to(rdt) for mu in (0, 1)]

    def forward_(self, X: torch.Tensor, mu: int) -> torch.Tensor:
        """U_mu(x) X(x + mu) U_mu(x)^dag."""
        Xs = torch.roll(X, -1, SITE_AXES[mu])
        return Xs if self.abelian else _rotate(self.R[mu], Xs)

    def backward_(self, X: torch.Tensor, mu: int) -> torch.Tensor:
        """U_mu(x - mu)^dag X(x - mu) U_mu(x - mu)."""
        if not self.abelian:
            X = _rotate(self.R[mu].transpose(-3, -4), X)
        return torch.roll(X, 1, SITE_AXES[mu])


# ---------------------------------------------------------------------- layers
def _dagger_sign(K: int, dtype, device) -> torch.Tensor:
    """W^dag = conj(w_0) 1 - conj(w) . e: sign per component, shape (K, 1, 1)."""
    s = -torch.ones(K, 1, 1, dtype=dtype, device=device)
    s[0] = 1.0
    return s


def _identity_channels(c: torch.Tensor, K: int) -> torch.Tensor:
    """Complex per-channel constants c (C,) times the identity, as a (K, C, 2) field."""
    return F.pad(torch.view_as_real(c)[None], (0, 0, 0, 0, 0, K - 1))


def conv(layer, T: Transport, parts: list[tuple[torch.Tensor, slice]]) -> torch.Tensor:
    """``LConv`` on the block input given as (field, input-channel slice) parts."""
    w = torch.view_as_complex(layer.weight.to(parts[0][0].dtype))
    w = w.reshape(layer.c_out, layer.c_in, layer.n_terms)
    M = None
    for x, sl in parts:  # all terms at once: (..., n_terms * C_out, 2), term-major
        R = real_mixing(w[:, sl].permute(2, 0, 1).reshape(-1, x.shape[-2]))
        M = mix(x, R) if M is None else M + mix(x, R)
    M = M.unflatten(-2, (layer.n_terms, layer.c_out))
    out = M[..., 0, :, :]
    R_ = layer.reach
    for mu in (0, 1) if R_ else ():
        for d, step in enumerate((T.forward_, T.backward_)):
            first = 1 + (2 * mu + d) * R_
            acc = M[..., first + R_ - 1, :, :]
            for k in range(R_ - 2, -1, -1):  # T_k = T^k: Horner from the farthest term
                acc = M[..., first + k, :, :] + step(acc, mu)
            out = out + step(acc, mu)
    return out


def bilin(layer: LBilin, parts: list[tuple[torch.Tensor, slice]], Y: torch.Tensor) -> torch.Tensor:
    """``LBilin``: (sum a (X, X^dag) + a0 1)(sum b (Y, Y^dag) + b0 1), X given in parts."""
    K, dt = Y.shape[-3], Y.dtype
    sign = _dagger_sign(K, dt, Y.device)

    def side(weight, const, c_in, fields):
        w = torch.view_as_complex(weight.to(dt))
        out = None
        for x, sl in fields:
            R = torch.cat((real_mixing(w[:, sl]), real_mixing(w[:, c_in:][:, sl], conjugate=True)), 1)
            P = mix(x, R)
            out = P if out is None else out + P
        out = out[..., : w.shape[0], :] + sign * out[..., w.shape[0]:, :]
        return out + _identity_channels(torch.view_as_complex(const.to(dt)), K)

    A = side(layer.a, layer.a0, layer.c1, parts)
    B = side(layer.b, layer.b0, layer.c2, [(Y, slice(0, layer.c2))])
    return quaternion_product(A, B)


def trace_norm(X: torch.Tensor) -> torch.Tensor:
    r2 = (X * X).sum((-1, -3)).mean(-1)  # (B, L, L)
    return X * torch.rsqrt(1.0 + r2)[..., None, None, None]


def act(layer, X: torch.Tensor, bias_shift: torch.Tensor) -> torch.Tensor:
    """``LAct`` gate sigmoid(p Re w_0 + q Im w_0 + c) per channel."""
    z = (X[..., 0, :, :] * layer.pq.to(X.dtype)).sum(-1)  # (B, L, L, C)
    gate = torch.sigmoid(z + layer.bias.to(X.dtype) + bias_shift[:, None, None, :])
    return X * gate[..., None, :, None]


def head(layer, T: Transport, X: torch.Tensor, N: int, special: bool) -> torch.Tensor:
    """``LinkHead``: algebra element per link, complex (B, 2, L, L, N, N)."""
    C = layer.channels
    w = torch.view_as_complex(layer.weight.to(X.dtype))  # (2, 3C)
    out = []
    for mu in (0, 1):
        there = T.forward_(X, mu)
        y = (mix(X, real_mixing(w[mu : mu + 1, :C])) + mix(there, real_mixing(w[mu : mu + 1, C : 2 * C]))
             + mix(quaternion_product(X, there), real_mixing(w[mu : mu + 1, 2 * C :])))[..., 0, :]
        # projection (Y - Y^dag)/2 onto the algebra: i Im y_0 1 + Re y . e (y_0 dropped for SU(2))
        coords = y[..., 0].clone()
        coords[..., 0] = 0.0 if special else y[..., 0, 1]
        out.append(algebra_to_matrix(coords, N))
    return torch.stack(out, 1)


class FastLCNN(LCNN):
    """``LCNN`` evaluated in the real quaternion representation (module docstring)."""

    def features(self, U: torch.Tensor, sigma: torch.Tensor, T: Transport | None = None) -> torch.Tensor:
        """Final site fields, channels-last real (B, L, L, K, C, 2)."""
        rdt = sigma.dtype
        T = Transport(U, rdt) if T is None else T
        W0 = to_quaternion(input_loops(U, self.loops)).to(rdt).permute(0, 2, 3, 4, 1, 5).contiguous()
        c0 = W0.shape[-2]
        mod = self.embed(sigma).reshape(U.shape[0], self.layers, 2, self.channels)
        W = None
        for b in range(self.layers):
            C = self.channels
            parts = [(W0, slice(0, c0))] if W is None else [(W, slice(0, C)), (W0, slice(C, C + c0))]
            y = conv(self.convs[b], T, parts)
            y = y * (1.0 + mod[:, b, 0])[:, None, None, None, :, None]
            y = bilin(self.bilins[b], parts, y)
            y = act(self.acts[b], trace_norm(y), mod[:, b, 1])
            W = y if W is None else W + y
        return W

    def forward(self, U: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        T = Transport(U, sigma.dtype)
        out = head(self.head, T, self.features(U, sigma, T), self.group.N, self.group.special)
        return out.to(complex_dtype(sigma.dtype))
