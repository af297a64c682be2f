"""The L-CNN of ``campaign.diffusion.lcnn`` in the quaternion representation: same
parameters, same function (to rounding), 1.2-1.4x faster on CPU (forward, eager; see
benchmarks/maala.py and benchmarks/train.py for the measured ratios).

Representation
--------------
A site field is a complex 2x2 matrix; write it as a complexified quaternion
``W = w_0 1 + sum_k w_k e_k`` with ``e_k = i sigma_k`` and complex w (U(1): just w_0).
It is stored as a complex tensor ``(B, K, C, L, L)`` with K = 4 components (1 for U(1))
and C channels, sites last, so that every elementwise operation runs over contiguous
planes of L x L sites.  In this basis

* parallel transport ``U W U^dag`` leaves w_0 alone and rotates (w_1, w_2, w_3) by the
  SO(3) matrix of the link's SU(2) part (a U(2) phase cancels; for U(1) it is the
  identity), so transporting a field is nine multiply-adds per component instead of two
  complex 2x2 products, and for U(1) only a shift;
* ``W^dag = (conj w_0, -conj w)``: a' W^dag = sign * conj(conj(a') W) per component, so
  the (W, W^dag) channel mixing of ``LBilin`` is one matrix product;
* the product is the quaternion product with ``e_j e_k = -delta_jk - eps_jkl e_l``;
* ``Re tr W / N``, ``Im tr W / N`` are Re w_0, Im w_0, and ``tr(W W^dag) / N = sum |w_k|^2``.

Channel mixing is one matrix product over the channel axis per (batch, component).
A convolution mixes first and transports after (transport is linear and acts on every
channel alike), Horner-style for kernel_size > 2, so no stack of transported terms is
concatenated.
Only the input loops and the output link fields are complex matrices.

``FastLCNN`` subclasses ``LCNN``: the state_dict is the reference's, so any model file
loads into either.  Its ``forward`` returns what ``LCNN.forward`` returns (complex
algebra elements per link, the parameters' precision).  ``ScoreModel`` uses it by default
(``fast=False``: the reference).
"""

from __future__ import annotations

import torch

from ..groups import complex_dtype
from ..lattice import links
from .lcnn import LCNN, LBilin, input_loops

SITE_AXES = (-2, -1)  # x, y axes of a field (B, K, C, L, L)


# ------------------------------------------------------------ representation
def to_quaternion(M: torch.Tensor) -> torch.Tensor:
    """Complex (..., N, N) -> complex (..., K): w_0 (N = 1), or (w_0, w_1, w_2, w_3) with
    M = w_0 1 + sum_k w_k i sigma_k (N = 2)."""
    if M.shape[-1] == 1:
        return M[..., 0, :]
    m00, m01, m10, m11 = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
    return torch.stack(((m00 + m11) / 2, (m01 + m10) / 2j, (m01 - m10) / 2, (m00 - m11) / 2j), -1)


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
    q = torch.view_as_real(to_quaternion(u))  # u = e^{i alpha} q, q a real unit quaternion
    # R_ij = (|u_0|^2 - |u|^2) delta_ij + 2 P_ij + 2 eps_ijk P_0k with P_ab = Re conj(u_a) u_b:
    # bilinear in (conj u, u), so the phase e^{i alpha} drops out
    P = (q[..., :, None, :] * q[..., None, :, :]).sum(-1)  # (..., 4, 4)
    v1, v2, v3 = (2 * P[..., 0, 1:]).unbind(-1)
    zero = torch.zeros_like(v1)
    one = torch.ones_like(v1)
    d = P[..., 0, 0] - P[..., 1, 1] - P[..., 2, 2] - P[..., 3, 3]
    rows = (one, zero, zero, zero,
            zero, d + 2 * P[..., 1, 1], 2 * P[..., 1, 2] + v3, 2 * P[..., 1, 3] - v2,
            zero, 2 * P[..., 2, 1] - v3, d + 2 * P[..., 2, 2], 2 * P[..., 2, 3] + v1,
            zero, 2 * P[..., 3, 1] + v2, 2 * P[..., 3, 2] - v1, d + 2 * P[..., 3, 3])
    return torch.stack(rows, -1).unflatten(-1, (4, 4))


def quaternion_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-channel product of fields (B, K, C, ...) with complex components, K = 1 or 4."""
    if a.shape[1] == 1:
        return a * b
    a0, a1, a2, a3 = a.unbind(1)
    b0, b1, b2, b3 = b.unbind(1)
    return torch.stack((
        a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3,
        a0 * b1 + a1 * b0 - a2 * b3 + a3 * b2,
        a0 * b2 + a2 * b0 - a3 * b1 + a1 * b3,
        a0 * b3 + a3 * b0 - a1 * b2 + a2 * b1,
    ), 1)


def mix(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Channel mixing: complex weight (C_out, C_in), field (B, K, C_in, L, L) -> (B, K, C_out, L, L)."""
    return (w @ x.flatten(-2)).unflatten(-1, x.shape[-2:])


# ------------------------------------------------------------------- transport
def _rotate(R: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """w_0 kept, w_i -> sum_j R_ij w_j (R: (B, 3, 3, 1, L, L)), written out elementwise:
    batched products of 3x3 matrices are several times slower on CPU."""
    v1, v2, v3 = X[:, 1], X[:, 2], X[:, 3]
    rows = [torch.addcmul(torch.addcmul(R[:, i, 0] * v1, R[:, i, 1], v2), R[:, i, 2], v3) for i in range(3)]
    return torch.stack((X[:, 0], *rows), 1)


class Transport:
    """Parallel transport of (B, K, C, L, L) fields along both axes, for given links."""

    def __init__(self, U: torch.Tensor, cdt: torch.dtype):
        self.abelian = U.shape[-1] == 1
        if not self.abelian:
            # R_ij(x) as (B, 3, 3, 1, L, L), in the field's dtype (complex: no promotion per use)
            self.R = [adjoint_matrix(links(U, mu))[..., 1:, 1:].permute(0, 3, 4, 1, 2).unsqueeze(3).to(cdt)
                      for mu in (0, 1)]

    def forward_(self, X: torch.Tensor, mu: int) -> torch.Tensor:
        """U_mu(x) X(x + mu) U_mu(x)^dag."""
        Xs = torch.roll(X, -1, SITE_AXES[mu])
        return Xs if self.abelian else _rotate(self.R[mu], Xs)

    def backward_(self, X: torch.Tensor, mu: int) -> torch.Tensor:
        """U_mu(x - mu)^dag X(x - mu) U_mu(x - mu): rotate by R(x)^T, then shift."""
        if not self.abelian:
            X = _rotate(self.R[mu].transpose(1, 2), X)
        return torch.roll(X, 1, SITE_AXES[mu])


# ---------------------------------------------------------------------- layers
def _dagger_sign(K: int, dtype, device) -> torch.Tensor:
    """W^dag = conj(w_0) 1 - conj(w) . e: sign per component, shape (K, 1, 1, 1)."""
    s = -torch.ones(K, 1, 1, 1, dtype=dtype, device=device)
    s[0] = 1.0
    return s


def _identity_channels(c: torch.Tensor, K: int) -> torch.Tensor:
    """Per-channel constants c (C,) times the identity, as a (K, C, 1, 1) field."""
    return torch.cat((c[None], c.new_zeros(K - 1, c.shape[0])), 0)[..., None, None]


def conv(layer, T: Transport, x: torch.Tensor) -> torch.Tensor:
    """``LConv``: every term's channel mixing in one matrix product, then the transports."""
    w = torch.view_as_complex(layer.weight).to(x.dtype).reshape(layer.c_out, layer.c_in, layer.n_terms)
    M = mix(w.permute(2, 0, 1).reshape(-1, layer.c_in), x)  # (B, K, n_terms * C_out, L, L), term-major
    M = M.unflatten(2, (layer.n_terms, layer.c_out))
    out = M[:, :, 0]
    R_ = layer.reach
    for mu in (0, 1) if R_ else ():
        for d, step in enumerate((T.forward_, T.backward_)):
            first = 1 + (2 * mu + d) * R_
            acc = M[:, :, first + R_ - 1]
            for k in range(R_ - 2, -1, -1):  # T_k = T^k: Horner from the farthest term
                acc = M[:, :, first + k] + step(acc, mu)
            out = out + step(acc, mu)
    return out


def _bilin_side(weight, const, x: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """sum_j a_j x_j + a'_j x_j^dag + a_0 1 in one matrix product: a' x^dag component-wise
    is sign * conj(conj(a') x)."""
    w = torch.view_as_complex(weight).to(x.dtype)
    c_out, c_in = w.shape[0], x.shape[2]
    P = mix(torch.cat((w[:, :c_in], w[:, c_in:].conj()), 0), x)
    plain = P[:, :, :c_out] + _identity_channels(torch.view_as_complex(const).to(x.dtype), x.shape[1])
    return torch.addcmul(plain, sign, P[:, :, c_out:].conj())


def bilin(layer: LBilin, x: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """``LBilin``: (sum a (X, X^dag) + a0 1)(sum b (Y, Y^dag) + b0 1)."""
    sign = _dagger_sign(Y.shape[1], Y.real.dtype, Y.device)
    return quaternion_product(_bilin_side(layer.a, layer.a0, x, sign), _bilin_side(layer.b, layer.b0, Y, sign))


def trace_norm(X: torch.Tensor) -> torch.Tensor:
    """``TraceNorm``: r^2 = mean over channels of sum_k |w_k|^2 per site."""
    B, K, C, L1, L2 = X.shape
    # summed over the contiguous (K, C) axis first: a reduction over the (Re, Im) pair last
    r2 = torch.view_as_real(X).reshape(B, K * C, -1).square().sum(1).view(B, L1, L2, 2).sum(-1) / C
    return X * torch.rsqrt(1.0 + r2)[:, None, None]


def act(layer, X: torch.Tensor, bias_shift: torch.Tensor) -> torch.Tensor:
    """``LAct`` gate sigmoid(p Re w_0 + q Im w_0 + c) per channel."""
    pq = layer.pq.to(X.real.dtype)
    w0 = X[:, 0]
    z = w0.real * pq[:, 0, None, None] + w0.imag * pq[:, 1, None, None]
    gate = torch.sigmoid(z + (layer.bias.to(z.dtype) + bias_shift)[..., None, None])
    return X * gate[:, None]


def head(layer, T: Transport, X: torch.Tensor, N: int, special: bool) -> torch.Tensor:
    """``LinkHead``: algebra element per link, complex (B, 2, L, L, N, N)."""
    C = layer.channels
    w = torch.view_as_complex(layer.weight).to(X.dtype)  # (2, 3C)
    out = []
    for mu in (0, 1):
        there = T.forward_(X, mu)
        # one output channel: weighted channel sums (a 1-row matrix product transposes its input)
        wa, wb, wc = (w[mu, i * C : (i + 1) * C, None, None] for i in range(3))
        y = (torch.addcmul(X * wa, there, wb) + quaternion_product(X, there) * wc).sum(2)  # (B, K, L, L)
        # projection (Y - Y^dag)/2 onto the algebra: i Im y_0 1 + Re y . e (y_0 dropped for SU(2))
        y0 = torch.zeros_like(y[:, :1].imag) if special else y[:, :1].imag
        coords = torch.cat((y0, y[:, 1:].real), 1)
        out.append(algebra_to_matrix(coords.permute(0, 2, 3, 1), N))
    return torch.stack(out, 1)


class FastLCNN(LCNN):
    """``LCNN`` evaluated in the complexified-quaternion representation (module docstring)."""

    def features(self, U: torch.Tensor, sigma: torch.Tensor, T: Transport | None = None) -> torch.Tensor:
        """Final site fields (B, K, C, L, L), complex."""
        cdt = complex_dtype(sigma.dtype)
        T = Transport(U, cdt) if T is None else T
        W0 = to_quaternion(input_loops(U, self.loops)).to(cdt).permute(0, 4, 1, 2, 3).contiguous()
        C = self.channels
        mod = self.embed(sigma).reshape(U.shape[0], self.layers, 2, C)
        W = None
        for b in range(self.layers):
            # the block input: C + c0 channels once per block (the reference concatenates
            # every transported term, n_terms times as many)
            x = W0 if W is None else torch.cat((W, W0), 2)
            y = conv(self.convs[b], T, x)
            y = y * (1.0 + mod[:, b, 0])[:, None, :, None, None]
            y = bilin(self.bilins[b], x, y)
            y = act(self.acts[b], trace_norm(y), mod[:, b, 1])
            W = y if W is None else W + y
        return W

    def forward(self, U: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        T = Transport(U, complex_dtype(sigma.dtype))
        return head(self.head, T, self.features(U, sigma, T), self.group.N, self.group.special)
