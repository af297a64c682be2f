"""The L-CNN of ``campaign.diffusion.lcnn`` in real arithmetic: same parameters, same
function (to rounding), written so that torch.compile (inductor) fuses it.

Representation
--------------
A complex 2x2 site field is a complexified quaternion ``W = w_0 1 + sum_k w_k i sigma_k``
with e_k = i sigma_k (U(1): w_0 only), stored as REAL tensors ``(B, K, 2, C, L, L)``:
K = 4 (1) components, (Re, Im), C channels, sites last (every elementwise operation runs
over contiguous planes of sites).  Complex products are written out in real arithmetic,
so the network is real tensor algebra that inductor's CPU code generator fuses into a
few loops; it has no code generation for complex tensors (an earlier complex-quaternion
version of this module gained nothing from compiling).

* channel mixing with complex weights a: one real matrix product with the block matrix
  [[Re a, -Im a], [Im a, Re a]] over the (Re/Im, channel) axis; a convolution mixes
  first and transports after (transport is linear, the same for every channel),
  Horner-style for kernel_size > 2, so no stack of transported terms is built;
* ``W^dag = (conj w_0, -conj w)``: the real components times a fixed sign, and
  ``a' W^dag = sign * conj(conj(a') W)``, so the (W, W^dag) mixing of ``LBilin`` is one
  matrix product;
* parallel transport ``U W U^dag`` leaves w_0 alone and rotates (w_1, w_2, w_3) by the
  SO(3) matrix of the link's SU(2) part (a U(2) phase cancels; U(1): only a shift),
  nine real site fields per direction;
* the product is the quaternion product, ``e_j e_k = -delta_jk - eps_jkl e_l``;
* ``Re tr W / N``, ``Im tr W / N`` are Re w_0, Im w_0, ``tr(W W^dag) / N = sum |w_k|^2``;
* the input loops are products of the links' quaternions in the same representation,
  and the output is built as the real view of the complex algebra element per link.

``FastLCNN`` subclasses ``LCNN``: the state_dict is the reference's, so any model file
loads into either.  ``forward`` takes and returns what ``LCNN.forward`` does (complex
links in, complex algebra elements per link out); given the score model's output scale and
skip weight it returns the whole score, the Wilson force built from the network's own
plaquettes and transports (one pass, compiled with the network: the separate
complex-matrix force cost about a tenth of a compiled sampling step).  ``plan`` (the expected number of
link evaluations of a run) decides, with ``campaign.fields.compile``'s policy
(``CAMPAIGN_COMPILE``, the run's expected eager time), whether the network runs
through torch.compile: one compilation for every batch size > 1 (the batch axis is
dynamic; batch 1 is compiled on its own), a shape from its second call on (one-off
probes stay eager); a compilation that fails warns once and the process stays eager, the
fields' kernels included (``campaign.fields.compile.disable_compilation``).
Measured ratios: benchmarks/maala.py and benchmarks/train.py.
"""

from __future__ import annotations

import torch

from .lcnn import LCNN

SITE_AXES = (-2, -1)  # x, y axes of a field (B, K, 2, C, L, L) or a link field (B, K, 2, L, L)


# ------------------------------------------------------------ representation
def dagger_sign(K: int, dtype, device, trailing: int) -> torch.Tensor:
    """Real components of W^dag = those of W times this (K, 2, 1 x trailing): (conj w_0, -conj w)."""
    s = torch.ones(K, 2, *(1,) * trailing, dtype=dtype, device=device)
    s[0, 1] = -1.0
    s[1:, 0] = -1.0
    return s


def links_real(U: torch.Tensor) -> list[torch.Tensor]:
    """Real view of complex links (B, 2, L, L, N, N, 2) -> per direction (B, K, 2, L, L):
    U = u_0 1 + sum_k u_k i sigma_k (N = 2), u_0 = U (N = 1)."""
    out = []
    for mu in (0, 1):
        m = U[:, mu].movedim((-3, -2, -1), (1, 2, 3))  # (B, N, N, 2, L, L)
        if m.shape[1] == 1:
            out.append(m[:, 0])
            continue
        m00, m01, m10, m11 = m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1]
        s, d = m01 + m10, m00 - m11  # z / i = (Im z, -Re z)
        out.append(torch.stack(((m00 + m11) / 2, torch.stack((s[:, 1], -s[:, 0]), 1) / 2,
                                (m01 - m10) / 2, torch.stack((d[:, 1], -d[:, 0]), 1) / 2), 1))
    return out


def product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Componentwise product of fields (B, K, 2, ...): the quaternion product for K = 4,
    ``e_j e_k = -delta_jk - eps_jkl e_l``, the complex product for K = 1.  Written out
    (128 real products), except eagerly with autograd: there it is vectorised over the
    components (a dozen tensor operations with 16 times the memory), because every
    operation adds an autograd node.  Without autograd the written-out form runs 2x
    faster eagerly and 1.1-1.3x faster compiled."""
    if a.shape[1] == 1:
        (ar, ai), (br, bi) = a.unbind(2), b.unbind(2)
        return torch.stack((ar * br - ai * bi, ar * bi + ai * br), 2)
    taped = torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)
    if taped and not torch.compiler.is_compiling():
        return _product_vectorised(a, b)
    return _product_written_out(a, b)


# out_k = sum_j a_j s_kj b_(p_kj): per component j of a, the component of b it multiplies
# into each output component k, and the sign
_PRODUCT_INDEX = ((0, 1, 2, 3), (1, 0, 3, 2), (2, 3, 0, 1), (3, 2, 1, 0))
_PRODUCT_SIGN = ((1, 1, 1, 1), (-1, 1, 1, -1), (-1, -1, 1, 1), (-1, 1, -1, 1))


def _product_vectorised(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    idx = torch.tensor(_PRODUCT_INDEX, device=a.device).flatten()
    sign = torch.tensor(_PRODUCT_SIGN, dtype=a.dtype, device=a.device).reshape(4, 4, *(1,) * (a.ndim - 2))
    Bp = b[:, idx].unflatten(1, (4, 4)) * sign  # (B, j, k, 2, ...)
    ar, ai = a[:, :, None].unbind(3)  # (B, j, 1, ...)
    Br, Bi = Bp.unbind(3)
    return torch.stack(((ar * Br - ai * Bi).sum(1), (ar * Bi + ai * Br).sum(1)), 2)


def _product_written_out(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    (a0r, a0i), (a1r, a1i), (a2r, a2i), (a3r, a3i) = ((a[:, k, 0], a[:, k, 1]) for k in range(4))
    (b0r, b0i), (b1r, b1i), (b2r, b2i), (b3r, b3i) = ((b[:, k, 0], b[:, k, 1]) for k in range(4))
    rows = (
        (a0r * b0r - a0i * b0i - a1r * b1r + a1i * b1i - a2r * b2r + a2i * b2i - a3r * b3r + a3i * b3i,
         a0r * b0i + a0i * b0r - a1r * b1i - a1i * b1r - a2r * b2i - a2i * b2r - a3r * b3i - a3i * b3r),
        (a0r * b1r - a0i * b1i + a1r * b0r - a1i * b0i - a2r * b3r + a2i * b3i + a3r * b2r - a3i * b2i,
         a0r * b1i + a0i * b1r + a1r * b0i + a1i * b0r - a2r * b3i - a2i * b3r + a3r * b2i + a3i * b2r),
        (a0r * b2r - a0i * b2i + a2r * b0r - a2i * b0i - a3r * b1r + a3i * b1i + a1r * b3r - a1i * b3i,
         a0r * b2i + a0i * b2r + a2r * b0i + a2i * b0r - a3r * b1i - a3i * b1r + a1r * b3i + a1i * b3r),
        (a0r * b3r - a0i * b3i + a3r * b0r - a3i * b0i - a1r * b2r + a1i * b2i + a2r * b1r - a2i * b1i,
         a0r * b3i + a0i * b3r + a3r * b0i + a3i * b0r - a1r * b2i - a1i * b2r + a2r * b1i + a2i * b1r),
    )
    return torch.stack([c for row in rows for c in row], 1).unflatten(1, (4, 2))


def real_block(w: torch.Tensor, conj: bool = False) -> torch.Tensor:
    """The reference's parameter (..., C_out, C_in, 2) for a complex weight a (conj: its
    conjugate) -> real (..., 2 C_out, 2 C_in) acting on (Re, Im) x channels.  Real
    arithmetic only: inductor has no code generation for complex tensors."""
    re, im = w[..., 0], (-w[..., 1] if conj else w[..., 1])
    return torch.cat((torch.cat((re, -im), -1), torch.cat((im, re), -1)), -2)


def mix(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Real weight (rows, 2 C_in) on a field (B, K, 2, C_in, L, L) -> (B, K, rows, L, L)."""
    B, K, _, _, L1, L2 = x.shape
    return (w @ x.reshape(B, K, -1, L1 * L2)).reshape(B, K, -1, L1, L2)


# ------------------------------------------------------------------- transport
def rotation(q: torch.Tensor) -> list[list[torch.Tensor]]:
    """R_ij (i, j = 1..3) of W -> u W u^dag for a link (B, 4, 2, L, L), each (B, 1, 1, L, L).
    R_ij = (|u_0|^2 - |u|^2) delta_ij + 2 P_ij + 2 eps_ijk P_0k, P_ab = Re conj(u_a) u_b:
    bilinear in (conj u, u), so a U(2) phase drops out."""
    u = q.unbind(1)
    P = [[(u[a] * u[b]).sum(1)[:, None, None] for b in range(4)] for a in range(4)]
    v1, v2, v3 = 2 * P[0][1], 2 * P[0][2], 2 * P[0][3]
    d = P[0][0] - P[1][1] - P[2][2] - P[3][3]
    return [[d + 2 * P[1][1], 2 * P[1][2] + v3, 2 * P[1][3] - v2],
            [2 * P[2][1] - v3, d + 2 * P[2][2], 2 * P[2][3] + v1],
            [2 * P[3][1] + v2, 2 * P[3][2] - v1, d + 2 * P[3][3]]]


def rotate(R, X: torch.Tensor) -> torch.Tensor:
    """w_0 kept, w_i -> sum_j R_ij w_j."""
    w0, *v = X.unbind(1)
    rows = [R[i][0] * v[0] + R[i][1] * v[1] + R[i][2] * v[2] for i in range(3)]
    return torch.stack((w0, *rows), 1)


class Transport:
    """Parallel transport of (B, K, 2, C, L, L) fields along both axes."""

    def __init__(self, q: list[torch.Tensor]):
        self.abelian = q[0].shape[1] == 1
        if not self.abelian:
            self.R = [rotation(q[mu]) for mu in (0, 1)]
            self.RT = [[list(r) for r in zip(*R)] for R in self.R]

    def forward_(self, X: torch.Tensor, mu: int) -> torch.Tensor:
        """U_mu(x) X(x + mu) U_mu(x)^dag."""
        Xs = torch.roll(X, -1, SITE_AXES[mu])
        return Xs if self.abelian else rotate(self.R[mu], Xs)

    def backward_(self, X: torch.Tensor, mu: int) -> torch.Tensor:
        """U_mu(x - mu)^dag X(x - mu) U_mu(x - mu): rotate by R(x)^T, then shift."""
        if not self.abelian:
            X = rotate(self.RT[mu], X)
        return torch.roll(X, 1, SITE_AXES[mu])


# ---------------------------------------------------------------------- layers
def input_loops(q: list[torch.Tensor], loops: str) -> torch.Tensor:
    """``lcnn.input_loops`` as a field (B, K, 2, C0, L, L)."""
    sign = dagger_sign(q[0].shape[1], q[0].dtype, q[0].device, 2)
    def shift(f, mu, n=1):  # f(x + n mu)
        return torch.roll(f, -n, SITE_AXES[mu])

    def loop(lx, ly, r, t):  # lx(x) ly(x + r 0) (ly(x) lx(x + t 1))^dag
        return product(product(lx, shift(ly, 0, r)), product(ly, shift(lx, 1, t)) * sign)

    p = loop(q[0], q[1], 1, 1)
    fields = [p, p * sign]
    if loops == "rect":
        lx2, ly2 = product(q[0], shift(q[0], 0)), product(q[1], shift(q[1], 1))
        r21, r12 = loop(lx2, q[1], 2, 1), loop(q[0], ly2, 1, 2)
        fields += [r21, r21 * sign, r12, r12 * sign]
    return torch.stack(fields, 3)


def conv(layer, T: Transport, x: torch.Tensor) -> torch.Tensor:
    """``LConv``: every term's channel mixing in one matrix product, then the transports
    (Horner-style from the farthest term)."""
    w = layer.weight.to(x.dtype).reshape(layer.c_out, layer.c_in, layer.n_terms, 2)
    M = mix(real_block(w.permute(2, 0, 1, 3)).reshape(-1, 2 * layer.c_in), x)
    M = M.unflatten(2, (layer.n_terms, 2, layer.c_out)).unbind(2)
    out = M[0]
    R_ = layer.reach
    for mu in (0, 1) if R_ else ():
        for d, step in enumerate((T.forward_, T.backward_)):
            first = 1 + (2 * mu + d) * R_
            acc = M[first + R_ - 1]
            for k in range(R_ - 2, -1, -1):
                acc = M[first + k] + step(acc, mu)
            out = out + step(acc, mu)
    return out


def _bilin_side(weight, const, x: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """sum_j a_j x_j + a'_j x_j^dag + a_0 1 in one matrix product."""
    w = weight.to(x.dtype)
    c_out, c_in = w.shape[0], x.shape[3]
    P = mix(torch.cat((real_block(w[:, :c_in]), real_block(w[:, c_in:], conj=True)), 0), x)
    plain, dagger = P.unflatten(2, (2, 2, c_out)).unbind(2)  # (B, K, Re/Im, C_out, L, L) each
    c = const.to(x.dtype)  # (C_out, 2): a_0 on the identity component
    one = torch.zeros(x.shape[1], 2, c_out, 1, 1, dtype=x.dtype, device=x.device)
    one[0] = c.t()[..., None, None]
    return plain + sign * dagger + one


def bilin(layer, x: torch.Tensor, Y: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    return product(_bilin_side(layer.a, layer.a0, x, sign), _bilin_side(layer.b, layer.b0, Y, sign))


def trace_norm(X: torch.Tensor) -> torch.Tensor:
    """r^2 = mean over channels of sum_k |w_k|^2 per site."""
    B, K, _, C, L1, L2 = X.shape
    r2 = X.reshape(B, -1, L1, L2).square().sum(1) / C
    return X * torch.rsqrt(1.0 + r2)[:, None, None, None]


def act(layer, X: torch.Tensor, bias_shift: torch.Tensor) -> torch.Tensor:
    """Gate sigmoid(p Re w_0 + q Im w_0 + c) per channel."""
    pq = layer.pq.to(X.dtype)
    re0, im0 = X[:, 0].unbind(1)
    z = re0 * pq[:, 0, None, None] + im0 * pq[:, 1, None, None]
    gate = torch.sigmoid(z + (layer.bias.to(X.dtype) + bias_shift)[..., None, None])
    return X * gate[:, None, None]


def wilson_force_components(T: Transport, plaquette: torch.Tensor) -> list[torch.Tensor]:
    """``actions.wilson_force`` at beta = N (per direction, (B, K, 2, L, L)) up to the
    projection onto the algebra, which ``head`` applies (linear, and the identity on the
    projected plaquettes): F_0 = A(x) - U_1(x - 1)^dag A(x - 1) U_1(x - 1),
    F_1 = U_0(x - 0)^dag A(x - 0) U_0(x - 0) - A(x), A the anti-Hermitian part of U_P."""
    A = plaquette[:, :, :, None]  # one channel
    return [(A - T.backward_(A, 1))[:, :, :, 0], (T.backward_(A, 0) - A)[:, :, :, 0]]


def head(layer, T: Transport, X: torch.Tensor, N: int, special: bool, out_scale=None, force=None,
         force_weight=None) -> torch.Tensor:
    """``LinkHead``: real view (B, 2, L, L, N, N, 2) of the algebra element per link; with
    ``out_scale`` (B,) and ``force`` (``wilson_force_components``) times ``force_weight``
    (B,): out_scale * head - force_weight * F / N, the score model's output."""
    C = layer.channels
    w = layer.weight.to(X.dtype)  # (2, 3C, 2)
    out = []
    for mu in (0, 1):
        there = T.forward_(X, mu)
        wa, wb, wc = (real_block(w[mu, i * C:(i + 1) * C][None]) for i in range(3))  # (2, 2C)
        y = mix(wa, X) + mix(wb, there) + mix(wc, product(X, there))  # (B, K, Re/Im, L, L)
        if out_scale is not None:
            y = y * out_scale[:, None, None, None, None]
        if force is not None:
            y = y - force[mu] * (force_weight / N)[:, None, None, None, None]
        # (Y - Y^dag)/2: i Im y_0 1 + Re y . e (y_0 dropped for SU(2))
        c0 = torch.zeros_like(y[:, 0, 1]) if special else y[:, 0, 1]
        zero = torch.zeros_like(c0)
        if N == 1:
            parts = [zero, c0]
        else:
            c1, c2, c3 = y[:, 1, 0], y[:, 2, 0], y[:, 3, 0]
            # [[i (c0 + c3), c2 + i c1], [-c2 + i c1, i (c0 - c3)]] as (row, column, Re/Im)
            parts = [zero, c0 + c3, c2, c1, -c2, c1, zero, c0 - c3]
        out.append(torch.stack(parts, -1).unflatten(-1, (N, N, 2)))
    return torch.stack(out, 1)


# Eager throughput of the default architecture, link evaluations per second on one thread
# (forward, no autograd; batch 8 at L = 32, measured on a loaded 2-core machine): the
# estimate of how long a run takes uncompiled.
EAGER_LINK_EVALUATIONS_PER_S = {
    ("u1", "float32"): 2.0e6, ("u1", "float64"): 1.0e6,
    ("su2", "float32"): 5.5e5, ("su2", "float64"): 2.3e5,
    ("u2", "float32"): 5.0e5, ("u2", "float64"): 2.1e5,
}


# Compiling the network costs 60-180 s with a cold inductor cache (about 500 s with the
# backward pass for training) and 6-9 s warm, on a loaded 2-core machine, for 1.2x (float64)
# to 2x (float32) per evaluation: it pays only on runs of a quarter of an hour or more eagerly,
# which a laptop campaign's jobs never are.
NETWORK_COMPILE_MIN_EAGER_S = 900.0


def compile_pays(group: str, dtype: torch.dtype, link_evaluations: float) -> bool:
    """``campaign.fields.compile``'s policy for the network: ``CAMPAIGN_COMPILE`` never /
    always, else (auto) compile when the run would take NETWORK_COMPILE_MIN_EAGER_S or more
    eagerly."""
    from ..fields.compile import compile_mode, long_enough

    mode = compile_mode()
    if mode != "auto":
        return mode == "always"
    return long_enough(EAGER_LINK_EVALUATIONS_PER_S, (group, str(dtype).removeprefix("torch.")),
                       link_evaluations, NETWORK_COMPILE_MIN_EAGER_S)


class FastLCNN(LCNN):
    """``LCNN`` evaluated in real arithmetic, compiled when a run is long enough (module
    docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.use_compiled = False
        self._compiled_fn = None
        self._calls: dict = {}  # calls per input signature

    def __getstate__(self):  # copies and pickles leave the compiled function behind
        state = dict(super().__getstate__())
        state["_compiled_fn"], state["_calls"] = None, {}
        return state

    def plan(self, link_evaluations: float) -> bool:
        """Tell the network how long the run will be (links x chains x evaluations);
        returns whether it will run compiled."""
        dtype = self.head.weight.dtype
        self.use_compiled = compile_pays(self.group.name, dtype, float(link_evaluations))
        return self.use_compiled

    def features_real(self, W0: torch.Tensor, T: Transport, sigma: torch.Tensor) -> torch.Tensor:
        """Final site fields (B, K, 2, C, L, L) from the input loops."""
        sign = dagger_sign(W0.shape[1], W0.dtype, W0.device, 3)
        mod = self.embed(sigma).reshape(sigma.shape[0], self.layers, 2, self.channels)
        W = None
        for b in range(self.layers):
            x = W0 if W is None else torch.cat((W, W0), 3)
            y = conv(self.convs[b], T, x)
            y = y * (1.0 + mod[:, b, 0])[:, None, None, :, None, None]
            y = bilin(self.bilins[b], x, y, sign)
            y = act(self.acts[b], trace_norm(y), mod[:, b, 1])
            W = y if W is None else W + y
        return W

    def forward_real(self, Ur: torch.Tensor, sigma: torch.Tensor, out_scale: torch.Tensor | None = None,
                     force_weight: torch.Tensor | None = None) -> torch.Tensor:
        """Real view of the links (B, 2, L, L, N, N, 2) -> real view of the output (times
        ``out_scale``, minus the Wilson force at ``force_weight``: ``forward``)."""
        q = [c.to(sigma.dtype) for c in links_real(Ur)]
        T = Transport(q)
        W0 = input_loops(q, self.loops)
        force = None if force_weight is None else wilson_force_components(T, W0[:, :, :, 0])
        return head(self.head, T, self.features_real(W0, T, sigma), self.group.N, self.group.special,
                    out_scale, force, force_weight)

    def forward(self, U: torch.Tensor, sigma: torch.Tensor, out_scale: torch.Tensor | None = None,
                force_weight: torch.Tensor | None = None) -> torch.Tensor:
        """``LCNN.forward``; with ``out_scale`` and ``force_weight`` (B,), ``out_scale * net -
        actions.wilson_force(U, force_weight)`` in one pass (the score model's output: its
        Wilson force is built from the network's own plaquettes and transports, and compiles
        with it)."""
        from ..fields.compile import compile_disabled_reason

        Ur = torch.view_as_real(U)
        per_chain = (sigma, out_scale, force_weight)
        if self.use_compiled and compile_disabled_reason() is None:
            key = (tuple(U.shape), U.dtype, U.device, torch.is_grad_enabled(), out_scale is None, force_weight is None)
            self._calls[key] = self._calls.get(key, 0) + 1
            if self._calls[key] >= 2:  # a one-off call is not worth a compilation
                return torch.view_as_complex(self._forward_compiled(Ur, per_chain))
        return torch.view_as_complex(self._forward_eager(Ur, per_chain))

    def _forward_eager(self, Ur: torch.Tensor, per_chain: tuple) -> torch.Tensor:
        B, L1, L2 = Ur.shape[0], Ur.shape[2], Ur.shape[3]
        per_block = max(1, EAGER_BLOCK_SITES // (L1 * L2))
        if B <= per_block:
            return self.forward_real(Ur, *per_chain)
        sizes = _block_sizes(B, per_block, single_chain_blocks=True)
        return torch.cat([self.forward_real(*block) for block in _split(sizes, Ur, *per_chain)])

    def _forward_compiled(self, Ur: torch.Tensor, per_chain: tuple) -> torch.Tensor:
        from ..fields.compile import INDUCTOR_OPTIONS, canonical_single_chain, disable_compilation

        try:
            if self._compiled_fn is None:
                self._compiled_fn = torch.compile(self.forward_real, dynamic=False, options=INDUCTOR_OPTIONS)
            outs = []
            sizes = _cache_block_sizes(Ur)
            for n, (u, *rest) in zip(sizes, _split(sizes, Ur, *per_chain)):
                # canonical strides, or dynamo's stride guards recompile (a one-chain batch's
                # chain stride is arbitrary; sigma may be expanded from a scalar)
                u = canonical_single_chain(u.contiguous())
                rest = [None if t is None else t.clone(memory_format=torch.contiguous_format) for t in rest]
                if n > 1:  # one compilation for every batch size > 1 (the last block, the pilot)
                    for t in (u, *rest):
                        if t is not None:
                            torch._dynamo.mark_dynamic(t, 0)
                outs.append(self._compiled_fn(u, *rest))
            return outs[0] if len(outs) == 1 else torch.cat(outs)
        except Exception as exc:  # noqa: BLE001 - the eager call below raises the caller's own errors
            out = self.forward_real(Ur, *per_chain)
            disable_compilation(exc, "campaign.diffusion", "the L-CNN")
            return out


def _split(sizes: list[int], *tensors):
    """Blocks of the chain axis: per block, a tuple of each tensor's block (None stays None)."""
    parts = [[None] * len(sizes) if t is None else t.split(sizes) for t in tensors]
    return list(zip(*parts))


# Eagerly, the network runs fastest per chain at about this many sites per call (B x L^2):
# fewer and the per-operation overhead shows, more and each elementwise operation streams its
# operands from memory instead of cache (one thread, L = 16 and 32, float32 and float64:
# 16 chains at L = 32 ran 1.5-1.8x faster per chain than 64), so a larger batch goes
# through in blocks of this size.  Measured by benchmarks/maala.py (batching columns).
EAGER_BLOCK_SITES = 16384


# Compiled, the network runs fastest on about this many bytes of one real field component
# (B x L^2 x itemsize; 2048 float32 sites: 2-4 chains at L = 32 ran 1.7x faster per chain
# than 8-16, in the 2 MB L2 cache of the machine measured), so a larger batch goes through
# in blocks of that size (at least 2 chains: a batch of 1 would be a second compilation).
CACHE_BLOCK_BYTES = 8192


def _cache_block_sizes(Ur: torch.Tensor) -> list[int]:
    """Block sizes of the batch for the compiled network; no block of one chain unless B = 1."""
    per_block = max(2, CACHE_BLOCK_BYTES // (Ur.shape[2] * Ur.shape[3] * Ur.element_size()))
    return _block_sizes(Ur.shape[0], per_block, single_chain_blocks=False)


def _block_sizes(B: int, per_block: int, single_chain_blocks: bool) -> list[int]:
    """Blocks of per_block chains covering B; a last block of one chain joins the one
    before unless single_chain_blocks (a compiled batch of 1 would be a second compilation)."""
    sizes = [per_block] * (B // per_block) or [B]
    rest = B - sum(sizes)
    if rest == 1 and not single_chain_blocks:
        sizes[-1] += 1
    elif rest:
        sizes.append(rest)
    return sizes
