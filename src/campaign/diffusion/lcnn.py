"""Lattice gauge-equivariant convolutional network (L-CNN; Favoni, Ipp, Mueller, Schuh,
arXiv 2012.12901) for U(1), SU(2) and U(2), one code path through ``campaign.groups``.

Tensor layout
-------------
* links ``U``: complex ``(B, 2, L, L, N, N)`` (mu = 0: x, 1: y), ARCHITECTURE.md;
* site fields ("W fields"): complex ``(B, C, L, L, N, N)``, C channels of N x N matrices,
  each transforming in the adjoint, ``W(x) -> Omega(x) W(x) Omega(x)^dag``;
* the network output: one Lie-algebra element per link, ``(B, 2, L, L, N, N)``,
  transforming as ``Omega(x) s_mu(x) Omega(x)^dag`` (like forces and scores).

Layers (each gauge equivariant by construction, each tested on its own)
-----------------------------------------------------------------------
* ``input_loops``: W_0 = (U_P, U_P^dag) per site, optionally the 2x1 and 1x2 rectangles
  and their daggers, all based at x.
* ``LConv``: W'_i(x) = sum_j sum_{mu, |k| < K} w_{ijmuk} U_{x->x+k mu} W_j(x + k mu)
  U_{x->x+k mu}^dag with complex weights; the parallel transporter along the straight
  line is built recursively, T_{k+1}(x) = U_mu(x) T_k(x + mu) U_mu(x)^dag.  As in the
  L-CNN paper, ``kernel_size`` K counts sites along an axis: offsets -(K-1)..K-1, i.e. up
  to K-1 links transported per axis, 4(K-1)+1 terms (K = 1: no transport, K = 2: nearest
  neighbours), costing 2(K-1) matrix products per direction and sign.
* ``LBilin``: W''_i = (sum_j a_ij V_j + a_i0 1)(sum_k b_ik V'_k + b_i0 1) with V = (W, W^dag)
  and V' = (W', W'^dag): bilinear products with learnable (complex) channel mixing,
  factorised per output channel (C products instead of C^3); the identity channels give
  the linear and constant terms as well.
* ``TraceNorm``: W_i(x) -> W_i(x) / sqrt(1 + r(x)^2), r^2 = mean_i tr(W_i W_i^dag) / N, a
  gauge-invariant soft normalisation per site.  Products of products otherwise grow
  doubly exponentially with depth (public code saw 1e2..1e12 at random init); with it the
  channel RMS of every block output is below 1 whatever the input.
* ``LTrace``: gauge invariants (Re tr W_i, Im tr W_i) / N per channel and site.
* ``LAct``: W_i -> W_i * sigmoid(p_i Re tr W_i / N + q_i Im tr W_i / N + c_i), the gate a
  gauge-invariant scalar (c_i carries the noise level, below).
* ``LinkHead``: per link, Y_mu(x) = sum_i a_{mu i} W_i(x) + b_{mu i} U_mu(x) W_i(x+mu)
  U_mu(x)^dag + c_{mu i} W_i(x) U_mu(x) W_i(x+mu) U_mu(x)^dag (complex weights), output
  ``Group.project_algebra(Y)``; every term transforms as Omega(x) . Omega(x)^dag.

Noise level
-----------
sigma enters only through gauge-invariant numbers: a sinusoidal embedding of log sigma ->
MLP -> per block and channel a scale (1 + g_i) of the L-Conv output and the gate bias c_i.
The last MLP layer starts at zero, so at initialisation the network ignores sigma.

Everything is built from ``torch.roll`` (periodic, translation equivariant) and local
matrix products, so the same weights run on any L.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..actions import wilson_force
from ..groups import Group, dagger, get_group, matmul, trace
from ..lattice import line, links, plaquettes, rectangle, shift

LOOP_SETS = ("plaquette", "rect")


# ----------------------------------------------------------------- helpers
def _cweight(w: torch.Tensor) -> torch.Tensor:
    """Real parameter (..., 2) -> complex tensor (...)."""
    return torch.complex(w[..., 0], w[..., 1])


def _site_links(U: torch.Tensor, mu: int) -> torch.Tensor:
    """U_mu(x) with a channel axis, shape (B, 1, L, L, N, N)."""
    return links(U, mu).unsqueeze(-5)


def _eye_like(W: torch.Tensor) -> torch.Tensor:
    n = W.shape[-1]
    return torch.eye(n, dtype=W.dtype, device=W.device)


def mix(weight: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Channel mixing: weight complex (C_out, C_in), W (B, C_in, ...) -> (B, C_out, ...)."""
    B, C = W.shape[:2]
    flat = W.reshape(B, C, -1)
    out = torch.matmul(weight, flat)
    return out.reshape(B, weight.shape[0], *W.shape[2:])


def transport_forward(U_mu: torch.Tensor, W: torch.Tensor, mu: int) -> torch.Tensor:
    """U_mu(x) W(x + mu) U_mu(x)^dag (U_mu with channel axis)."""
    return matmul(matmul(U_mu, shift(W, mu, 1)), dagger(U_mu))


def transport_backward(U_mu: torch.Tensor, W: torch.Tensor, mu: int) -> torch.Tensor:
    """U_mu(x - mu)^dag W(x - mu) U_mu(x - mu)."""
    Ub = shift(U_mu, mu, -1)
    return matmul(matmul(dagger(Ub), shift(W, mu, -1)), Ub)


def transported_terms(U: torch.Tensor, W: torch.Tensor, reach: int) -> list[torch.Tensor]:
    """[W, then for mu in (0, 1): T_{mu,+1..+R}, T_{mu,-1..-R}], 4R+1 fields like W, where
    T_{mu,k}(x) = U_{x->x+k mu} W(x + k mu) U_{x->x+k mu}^dag."""
    terms = [W]
    for mu in (0, 1):
        u = _site_links(U, mu)
        cur = W
        for _ in range(reach):
            cur = transport_forward(u, cur, mu)
            terms.append(cur)
        cur = W
        for _ in range(reach):
            cur = transport_backward(u, cur, mu)
            terms.append(cur)
    return terms


def input_loops(U: torch.Tensor, loops: str = "plaquette") -> torch.Tensor:
    """W_0 site field (B, C0, L, L, N, N): U_P, U_P^dag (+ 2x1, 1x2 rectangles and daggers)."""
    if loops not in LOOP_SETS:
        raise ValueError(f"loops must be one of {LOOP_SETS}, got {loops!r}")
    p = plaquettes(U)
    fields = [p, dagger(p)]
    if loops == "rect":
        lx1, ly1 = links(U, 0), links(U, 1)
        lx2, ly2 = line(U, 0, 2), line(U, 1, 2)
        r21 = rectangle(lx2, ly1, 2, 1)
        r12 = rectangle(lx1, ly2, 1, 2)
        fields += [r21, dagger(r21), r12, dagger(r12)]
    return torch.stack(fields, -5)


def n_input_channels(loops: str) -> int:
    return {"plaquette": 2, "rect": 6}[loops]


# ------------------------------------------------------------------ layers
class LConv(nn.Module):
    """Gauge-equivariant convolution by parallel transport along both axes."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 2):
        super().__init__()
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        self.c_in, self.c_out, self.kernel_size = c_in, c_out, kernel_size
        self.reach = kernel_size - 1
        self.n_terms = 4 * self.reach + 1
        scale = 1.0 / math.sqrt(2 * c_in * self.n_terms)
        self.weight = nn.Parameter(torch.randn(c_out, c_in * self.n_terms, 2) * scale)

    def forward(self, U: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        terms = transported_terms(U, W, self.reach)
        stack = torch.cat(terms, 1)  # (B, n_terms * C_in, ...), term-major
        w = _cweight(self.weight).to(W.dtype)
        # parameter layout (c_out, c_in, term) -> stacked layout (term, c_in)
        w = w.reshape(self.c_out, self.c_in, self.n_terms).transpose(1, 2).reshape(self.c_out, -1)
        return mix(w, stack)


class LBilin(nn.Module):
    """W''_i = (A_i)(B_i), A = mix(W, W^dag, 1), B = mix(W', W'^dag, 1)."""

    def __init__(self, c1: int, c2: int, c_out: int):
        super().__init__()
        self.c1, self.c2, self.c_out = c1, c2, c_out
        a = torch.randn(c_out, 2 * c1, 2) / math.sqrt(4 * c1)
        b = torch.randn(c_out, 2 * c2, 2) / math.sqrt(4 * c2)
        self.a = nn.Parameter(a)
        self.b = nn.Parameter(b)
        a0 = torch.zeros(c_out, 2)
        a0[:, 0] = 1.0
        self.a0 = nn.Parameter(a0)
        self.b0 = nn.Parameter(torch.randn(c_out, 2) * 0.1)

    def forward(self, W1: torch.Tensor, W2: torch.Tensor) -> torch.Tensor:
        eye = _eye_like(W1)
        dt = W1.dtype
        A = mix(_cweight(self.a).to(dt), torch.cat((W1, dagger(W1)), 1))
        A = A + _cweight(self.a0).to(dt).reshape(1, -1, 1, 1, 1, 1) * eye
        Bm = mix(_cweight(self.b).to(dt), torch.cat((W2, dagger(W2)), 1))
        Bm = Bm + _cweight(self.b0).to(dt).reshape(1, -1, 1, 1, 1, 1) * eye
        return matmul(A, Bm)


class TraceNorm(nn.Module):
    """Soft gauge-invariant normalisation per site: W / sqrt(1 + mean_i tr(W_i W_i^dag)/N)."""

    def forward(self, W: torch.Tensor) -> torch.Tensor:
        n = W.shape[-1]
        r2 = (W.real ** 2 + W.imag ** 2).sum((-1, -2)).mean(1, keepdim=True) / n  # (B,1,L,L)
        return W * torch.rsqrt(1.0 + r2)[..., None, None].to(W.dtype)


class LTrace(nn.Module):
    """Gauge invariants per channel: (Re tr W, Im tr W) / N, shape (B, C, L, L, 2)."""

    def forward(self, W: torch.Tensor) -> torch.Tensor:
        t = trace(W) / W.shape[-1]
        return torch.stack((t.real, t.imag), -1)


class LAct(nn.Module):
    """W_i * sigmoid(p_i Re tr W_i/N + q_i Im tr W_i/N + c_i); c_i may depend on sigma."""

    def __init__(self, channels: int):
        super().__init__()
        self.pq = nn.Parameter(torch.randn(channels, 2) * 0.5)
        self.bias = nn.Parameter(torch.full((channels,), 1.0))
        self.trace = LTrace()

    def forward(self, W: torch.Tensor, bias_shift: torch.Tensor | None = None) -> torch.Tensor:
        inv = self.trace(W)  # (B, C, L, L, 2)
        z = (inv * self.pq.to(inv.dtype)[None, :, None, None, :]).sum(-1)
        b = self.bias.to(inv.dtype).reshape(1, -1, 1, 1)
        if bias_shift is not None:
            b = b + bias_shift.reshape(*bias_shift.shape, 1, 1)
        gate = torch.sigmoid(z + b)
        return W * gate[..., None, None].to(W.dtype)


class LinkHead(nn.Module):
    """Site fields -> one algebra element per link (see module docstring)."""

    def __init__(self, group: Group, channels: int):
        super().__init__()
        self.group = group
        self.channels = channels
        self.weight = nn.Parameter(torch.randn(2, 3 * channels, 2) / math.sqrt(6 * channels))

    def forward(self, U: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        out = []
        w = _cweight(self.weight).to(W.dtype)
        for mu in (0, 1):
            u = _site_links(U, mu)
            here = W
            there = transport_forward(u, W, mu)
            feats = torch.cat((here, there, matmul(here, there)), 1)
            y = mix(w[mu : mu + 1], feats)[:, 0]
            out.append(self.group.project_algebra(y))
        return torch.stack(out, -5)


class NoiseEmbedding(nn.Module):
    """sigma -> (n_out,) gauge-invariant modulation numbers (zero at initialisation)."""

    def __init__(self, n_out: int, features: int = 8, hidden: int = 32):
        super().__init__()
        # frequencies for log sigma over roughly [-7, 3]
        self.register_buffer("freq", torch.logspace(-2, 1, features, base=2.0), persistent=False)
        self.mlp = nn.Sequential(
            nn.Linear(2 * features, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, n_out),
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        ls = torch.log(sigma)[:, None] * self.freq.to(sigma.dtype)
        return self.mlp(torch.cat((torch.sin(ls), torch.cos(ls)), -1))


class LCNN(nn.Module):
    """The score network body: links and sigma -> algebra element per link.

    ``layers`` blocks of  LConv -> sigma scale -> LBilin(block input, LConv output) ->
    TraceNorm -> LAct(sigma bias), with a residual connection from block 2 on and the
    input loops W_0 concatenated to every block input; then ``LinkHead``."""

    def __init__(self, group, channels: int = 6, layers: int = 2, kernel_size: int = 2,
                 loops: str = "plaquette", time_features: int = 8, hidden: int = 32):
        super().__init__()
        self.group = get_group(group)
        for name, value, low in (("channels", channels, 1), ("layers", layers, 1), ("kernel_size", kernel_size, 1)):
            if int(value) != value or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value}")
        if loops not in LOOP_SETS:
            raise ValueError(f"loops must be one of {LOOP_SETS}, got {loops!r}")
        self.channels, self.layers, self.kernel_size, self.loops = channels, layers, kernel_size, loops
        c0 = n_input_channels(loops)
        self.convs = nn.ModuleList()
        self.bilins = nn.ModuleList()
        self.acts = nn.ModuleList()
        for b in range(layers):
            c_in = c0 if b == 0 else channels + c0
            self.convs.append(LConv(c_in, channels, kernel_size))
            self.bilins.append(LBilin(c_in, channels, channels))
            self.acts.append(LAct(channels))
        self.norm = TraceNorm()
        self.head = LinkHead(self.group, channels)
        self.embed = NoiseEmbedding(2 * layers * channels, time_features, hidden)

    def features(self, U: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Final site fields (B, C, L, L, N, N)."""
        W0 = input_loops(U, self.loops)
        mod = self.embed(sigma).reshape(U.shape[0], self.layers, 2, self.channels)
        W = None
        for b in range(self.layers):
            x = W0 if W is None else torch.cat((W, W0), 1)
            y = self.convs[b](U, x)
            y = y * (1.0 + mod[:, b, 0]).to(y.dtype)[:, :, None, None, None, None]
            y = self.bilins[b](x, y)
            y = self.acts[b](self.norm(y), mod[:, b, 1])
            W = y if W is None else W + y
        return W

    def forward(self, U: torch.Tensor, sigma: torch.Tensor, out_scale: torch.Tensor | None = None,
                force_weight: torch.Tensor | None = None) -> torch.Tensor:
        """Algebra element per link; with ``out_scale`` and ``force_weight`` (B,), the score
        model's output ``out_scale * net - actions.wilson_force(U, force_weight)``."""
        out = self.head(U, self.features(U, sigma))
        if out_scale is not None:
            out = out * out_scale.to(out.dtype).reshape(-1, 1, 1, 1, 1, 1)
        if force_weight is not None:
            out = out - wilson_force(self.group, U, force_weight)
        return out
