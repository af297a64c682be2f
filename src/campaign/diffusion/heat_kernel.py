"""Heat kernels on the gauge groups: exact densities, scores and samples of Brownian
motion on U(1), SU(2) and U(2) (pure maths, no learning).

Noise process and time
----------------------
Every link is noised independently by left multiplication with a heat-kernel element,
``U_sigma = V U_0``, V ~ K_t, the law at time ``t = sigma^2`` of unit Brownian motion on
the group started at 1, whose generator is Delta / 2 with Delta = sum_a d_a^2 for the
orthonormal basis of ``campaign.groups`` (<A,B> = -Re tr AB).  In exponential coordinates
V = exp(sqrt(t) eta) + O(t) with eta = ``Group.random_algebra`` (standard normal
coordinates): sigma is the square root of the Brownian time, and ``exp(sigma eta) U_0``
is the leading-order approximation of the exact kernel.  The noise is variance exploding
(U_0 is not shrunk); for large sigma K_t tends to the Haar measure (SU(2): |K_t - 1| ~
4 exp(-3 t / 4); U(1): ~2 exp(-t / 2)).  The noised density of U_sigma is Haar-invariant
under conjugation, so a gauge-invariant data distribution stays gauge invariant.

Exact kernels (densities with respect to normalised Haar measure)
  U(1):  wrapped normal of the angle, variance t (sum over windings); sampling exp(i sigma eta).
  SU(2): K_t(theta) = sum_{n>=1} n sin(n theta)/sin(theta) exp(-t (n^2-1)/4) (characters
         of spin j = (n-1)/2, Casimir eigenvalue 2 j(j+1) for this metric), theta in
         [0, pi] the eigenphase, cos theta = Re tr V / 2.  For t < 1/2 the Poisson-resummed
         (winding) form D(theta)/sin(theta), D = sum_k (theta+2 pi k) exp(-(theta+2 pi k)^2/t),
         is used instead (k = 0 for theta <= pi/2; the pair k = 0, -1 written without
         cancellation for theta > pi/2); both are smooth at theta = 0 and pi.
         Sampling is exact by rejection: for t < 2 from the proposal exp(sigma eta)
         (acceptance ratio K sin^2 theta / (theta^2 exp(-theta^2/t)) <= 1), for t >= 2 from
         Haar with ratio K_t(theta) / K_t(0).
  U(2) = (U(1) x SU(2)) / Z2: V = e^{i alpha} W with alpha ~ N(0, t/2) (the U(1) generator
         i 1/sqrt2 moves alpha by 1/sqrt2 per unit), W ~ K_t^{SU(2)}, independent; the
         density sums the two lifts (alpha, W), (alpha + pi, -W) and the alpha windings.

Score target: left derivative (ARCHITECTURE.md), grad log K_t(V) with V = U_sigma U_0^dag,
since d/ds K(exp(s T_a) U_sigma U_0^dag) is the left derivative of K at V.  For a class
function k(theta) on SU(2): grad theta = X / (2 theta) = P(V) / (2 sin theta), X = log V,
P(V) = (V - V^dag)/2, so the score is (k'(theta) / (2 k sin theta)) P(V).

Choice: the exact heat-kernel score (``target="heat"``, the default)
--------------------------------------------------------------------
The small-noise approximation -X / sigma^2 (X = log(U_sigma U_0^dag), exact for the
Euclidean Gaussian) differs from the exact score on SU(2) by (1/theta - cot theta) X /
(2 theta) ~ X/6 at small angles, and in every group by the windings once sigma ~ 1.
Measured with ``measure_score_approximation`` (V ~ K_t, 4000 links per sigma, float64):
relative RMS difference sqrt(E|s_small - s_heat|^2 / E|s_heat|^2), and in brackets the
RMS difference per algebra component times sigma (the scale of the DSM loss, whose
irreducible floor is ~1 per component at small sigma):

    sigma     U(1)               SU(2)              U(2)
    0.01      9.0e-17 [8.9e-17]  1.7e-05 [1.7e-05]  1.4e-05 [1.5e-05]
    0.1       9.4e-17 [9.4e-17]  1.7e-03 [1.7e-03]  1.4e-03 [1.4e-03]
    0.3       1.1e-16 [1.1e-16]  1.5e-02 [1.5e-02]  1.3e-02 [1.3e-02]
    0.5       1.1e-15 [1.1e-15]  4.5e-02 [4.3e-02]  3.9e-02 [3.7e-02]
    1.0       1.2e-01 [1.2e-01]  2.6e-01 [1.9e-01]  3.1e-01 [2.4e-01]
    2.0       1.4e+00 [5.4e-01]  3.7e+00 [5.3e-01]  7.0e+00 [5.7e-01]
    5.0       1.4e+04 [3.6e-01]  5.4e+06 [2.8e-01]  1.6e+09 [2.6e-01]

(U(1): identical up to windings, which matter from sigma ~ 1; SU(2), U(2): relative
difference ~ sigma^2/6 below sigma ~ 0.5, from the curvature term; beyond sigma ~ 1 the
approximation is useless: the exact score dies out like exp(-3 t / 4) while -X/sigma^2
does not.)  Since the exact kernel costs about as much as the approximation (closed
forms, a few dozen elementwise operations), the training target is the exact heat-kernel
score in every group: DSM with it is unbiased at every sigma, including the large-sigma
levels where the sampler starts.  ``target="small_noise"`` is kept for comparisons.
"""

from __future__ import annotations

import math

import torch

from ..groups import SU2, complex_dtype, get_group, quaternion_to_su2, real_dtype, trace

T_SPECTRAL = 0.5  # t >= T_SPECTRAL: character sum; below: winding (Poisson) form
T_HAAR_PROPOSAL = 2.0  # t >= this: sample SU(2) by rejection from Haar
LOG_2SQRTPI = math.log(2.0 * math.sqrt(math.pi))
TARGETS = ("heat", "small_noise")
# E[Re tr V / N] = exp(-c_f t) for V ~ K_t: fundamental Casimir / 2 in this metric
FUNDAMENTAL_DECAY = {"u1": 0.5, "su2": 0.75, "u2": 1.0}


# ------------------------------------------------------- stable scalar helpers
def _sinc(x):
    return torch.sinc(x / math.pi)


def _c_over_x(x):
    """(1/x - cot x) / x, stable at x -> 0 (x in [0, pi/2])."""
    small = x < 0.05
    xs = torch.where(small, torch.ones_like(x), x)
    direct = (1.0 / xs - torch.cos(xs) / torch.sin(xs)) / xs
    x2 = x * x
    series = 1.0 / 3 + x2 / 45 + 2 * x2 * x2 / 945 + x2 * x2 * x2 / 4725
    return torch.where(small, series, direct)


def _s1_hat(u):
    """sinh(u)/u * exp(-u)."""
    us = torch.where(u > 0, u, torch.ones_like(u))
    return torch.where(u > 0, -torch.expm1(-2 * us) / (2 * us), torch.ones_like(u))


def _s3_hat(u):
    """(u cosh u - sinh u)/u^3 * exp(-u)."""
    small = u < 0.1
    us = torch.where(small, torch.ones_like(u), u)
    e = torch.exp(-2 * us)
    direct = (us * (1 + e) / 2 + torch.expm1(-2 * us) / 2) / us ** 3
    u2 = u * u
    series = torch.exp(-u) * (1.0 / 3 + u2 / 30 + u2 * u2 / 840 + u2 * u2 * u2 / 45360)
    return torch.where(small, series, direct)


# --------------------------------------------------------- SU(2) heat kernel
def _su2_theta(cos, sin):
    return torch.atan2(sin, cos)


def _su2_region_a(theta, t, want_h=True):
    """Winding form, k = 0 only (theta <= pi/2, t < T_SPECTRAL): (log K, h)."""
    logk = t / 4 + LOG_2SQRTPI - 1.5 * torch.log(t) - torch.log(_sinc(theta)) - theta * theta / t
    h = (_c_over_x(theta) - 2.0 / t) / (2.0 * _sinc(theta)) if want_h else None
    return logk, h


def _su2_region_b(theta, t, want_h=True):
    """Winding form, pair k = 0, -1 (theta > pi/2, t < T_SPECTRAL): (log K, h)."""
    phi = (math.pi - theta).clamp_min(0)
    u = 2 * math.pi * phi / t
    a = 2 * math.pi ** 2 / t
    s1, s3 = _s1_hat(u), _s3_hat(u)
    chat = (1 + torch.exp(-2 * u)) / 2
    bhat = a * s1 - chat
    logk = (t / 4 + LOG_2SQRTPI - 1.5 * torch.log(t) + math.log(2.0) + torch.log(bhat)
            - theta * theta / t - torch.log(_sinc(phi)))
    h = None
    if want_h:
        G = (2 * math.pi / t) ** 2 * (a * s3 - s1) / bhat + _c_over_x(phi) - 2.0 / t
        h = -G / (2.0 * _sinc(phi))
    return logk, h


def _su2_region_c(cos, t, want_h=True):
    """Character sum in cos theta: (log K, h) with h = -kappa'(c) / (2 kappa(c))."""
    t_min = float(t.min()) if t.numel() else 1.0
    n_max = int(math.ceil(math.sqrt(4 * 45.0 / t_min + 1))) + 1
    u_prev, u_cur = torch.zeros_like(cos), torch.ones_like(cos)  # U_{-1}, U_0
    d_prev, d_cur = torch.zeros_like(cos), torch.zeros_like(cos)
    kappa = torch.zeros_like(cos)
    dkappa = torch.zeros_like(cos)
    for n in range(1, n_max + 1):
        w = n * torch.exp(-t * (n * n - 1) / 4)
        kappa = kappa + w * u_cur
        dkappa = dkappa + w * d_cur
        u_next = 2 * cos * u_cur - u_prev
        d_next = 2 * u_cur + 2 * cos * d_cur - d_prev
        u_prev, u_cur, d_prev, d_cur = u_cur, u_next, d_cur, d_next
    logk = torch.log(kappa)
    h = -dkappa / (2 * kappa) if want_h else None
    return logk, h


def su2_heat_kernel(cos: torch.Tensor, sin: torch.Tensor, t: torch.Tensor, want_h: bool = True):
    """Normalised SU(2) heat kernel log K_t and score factor h (score = h P(V)) for
    elements with eigenphases exp(+-i theta), given cos theta, sin theta >= 0 and t > 0
    (all broadcastable, real).  Returns (log K, h) shaped like the broadcast."""
    cos, sin, t = torch.broadcast_tensors(cos, sin, t)
    shape = cos.shape
    cos, sin, t = cos.reshape(-1), sin.reshape(-1), t.reshape(-1)
    theta = _su2_theta(cos, sin)
    logk = torch.empty_like(cos)
    h = torch.empty_like(cos) if want_h else None
    spectral = t >= T_SPECTRAL
    low_a = (~spectral) & (theta <= math.pi / 2)
    low_b = (~spectral) & (theta > math.pi / 2)
    for mask, fn, args in (
        (spectral, _su2_region_c, (cos, t)),
        (low_a, _su2_region_a, (theta, t)),
        (low_b, _su2_region_b, (theta, t)),
    ):
        if mask.any():
            lk, hh = fn(*(a[mask] for a in args), want_h=want_h)
            logk[mask] = lk
            if want_h:
                h[mask] = hh
    return logk.reshape(shape), (h.reshape(shape) if want_h else None)


def _su2_parts(W: torch.Tensor):
    """cos theta, sin theta and P(W) for SU(2) matrices."""
    P = SU2.project_algebra(W)
    cos = (trace(W).real / 2).clamp(-1, 1)
    sin = torch.sqrt(SU2.algebra_norm2(P) / 2).clamp(0, 1)
    return cos, sin, P


# -------------------------------------------------------------- wrapped normal
def _windings(t_max: float, var_scale: float = 1.0) -> torch.Tensor:
    m = int(math.ceil(math.sqrt(2 * 45.0 * var_scale * t_max) / (2 * math.pi))) + 1
    return torch.arange(-m, m + 1, dtype=torch.float64)


def _wrapped_normal(phi: torch.Tensor, var: torch.Tensor):
    """log density (w.r.t. d phi) and d/d phi of the wrapped normal N(0, var) on the circle."""
    phi, var = torch.broadcast_tensors(phi, var)
    m = _windings(float(var.max()) if var.numel() else 1.0).to(phi.dtype).to(phi.device)
    a = phi[..., None] + 2 * math.pi * m
    e = -a * a / (2 * var[..., None])
    logp = torch.logsumexp(e, -1) - 0.5 * torch.log(2 * math.pi * var)
    w = torch.softmax(e, -1)
    dlogp = -(w * a).sum(-1) / var
    return logp, dlogp


# ------------------------------------------------------------ kernels, all groups
def _t_like(sigma, shape, dtype, device):
    s = torch.as_tensor(sigma, dtype=dtype, device=device)
    return torch.broadcast_to(s * s, shape)


def heat_kernel_log_density(group, V: torch.Tensor, sigma) -> torch.Tensor:
    """log K_t(V), t = sigma^2, normalised w.r.t. Haar measure; sigma broadcasts against
    V.shape[:-2]."""
    group = get_group(group)
    rdt = real_dtype(V.dtype)
    t = _t_like(sigma, V.shape[:-2], rdt, V.device)
    if group.N == 1:
        logp, _ = _wrapped_normal(torch.angle(V[..., 0, 0]), t)
        return logp + math.log(2 * math.pi)
    if group.special:
        cos, sin, _ = _su2_parts(V)
        return su2_heat_kernel(cos, sin, t, want_h=False)[0]
    logs = _u2_terms(V, t)[0]
    return torch.logsumexp(torch.stack(logs, -1), -1) + math.log(math.pi)


def _u2_split(V: torch.Tensor):
    det = V[..., 0, 0] * V[..., 1, 1] - V[..., 0, 1] * V[..., 1, 0]
    alpha = 0.5 * torch.angle(det)
    W = V * torch.exp(-1j * alpha.to(V.dtype))[..., None, None]
    return alpha, W


def _u2_terms(V, t, want_score=False):
    """The two lifts (alpha, W), (alpha + pi, -W): log weights and, optionally, scores."""
    alpha, W = _u2_split(V)
    cos, sin, P = _su2_parts(W)
    logs, scores = [], []
    for sign, shift_ in ((1.0, 0.0), (-1.0, math.pi)):
        la, da = _wrapped_normal(alpha + shift_, t / 2)
        lk, h = su2_heat_kernel(sign * cos, sin, t, want_h=want_score)
        logs.append(la + lk)
        if want_score:
            eye = torch.eye(2, dtype=V.dtype, device=V.device)
            s = (h * sign).to(V.dtype)[..., None, None] * P + (0.5j * da).to(V.dtype)[..., None, None] * eye
            scores.append(s)
    return logs, scores


def heat_kernel_score(group, V: torch.Tensor, sigma) -> torch.Tensor:
    """Left-derivative score grad log K_t(V) as algebra elements shaped like V."""
    group = get_group(group)
    rdt = real_dtype(V.dtype)
    t = _t_like(sigma, V.shape[:-2], rdt, V.device)
    if group.N == 1:
        _, d = _wrapped_normal(torch.angle(V[..., 0, 0]), t)
        return (1j * d).to(V.dtype)[..., None, None]
    if group.special:
        cos, sin, P = _su2_parts(V)
        _, h = su2_heat_kernel(cos, sin, t)
        return h.to(V.dtype)[..., None, None] * P
    logs, scores = _u2_terms(V, t, want_score=True)
    w = torch.softmax(torch.stack(logs, -1), -1).to(V.dtype)
    return w[..., 0, None, None] * scores[0] + w[..., 1, None, None] * scores[1]


def small_noise_score(group, V: torch.Tensor, sigma) -> torch.Tensor:
    """-log(V) / sigma^2: the small-sigma approximation of the kernel score."""
    group = get_group(group)
    s = torch.as_tensor(sigma, dtype=real_dtype(V.dtype), device=V.device)
    s = torch.broadcast_to(s, V.shape[:-2])
    return -group.log(V) / (s * s).to(V.dtype)[..., None, None]


def kernel_score(group, V, sigma, target: str = "heat") -> torch.Tensor:
    if target == "heat":
        return heat_kernel_score(group, V, sigma)
    if target == "small_noise":
        return small_noise_score(group, V, sigma)
    raise ValueError(f"target must be one of {TARGETS}, got {target!r}")


def _su2_heat_sample(shape, t, generator, dtype, device):
    """Exact SU(2) heat-kernel samples by rejection (see module docstring).  Works with
    quaternions V = cos theta + i sin theta n.sigma; only accepted ones become matrices."""
    rdt = real_dtype(dtype)
    t = torch.broadcast_to(torch.as_tensor(t, dtype=rdt, device=device), shape).reshape(-1)
    n = t.numel()
    quat = torch.empty((n, 4), dtype=rdt, device=device)
    pending = torch.arange(n, device=device)
    while pending.numel():
        tp = t[pending]
        gauss = tp < T_HAAR_PROPOSAL
        k = pending.numel()
        # both proposals are drawn for every pending element (keeps the random stream simple)
        eta = torch.randn((k, 3), generator=generator, dtype=rdt, device=device)
        q = torch.randn((k, 4), generator=generator, dtype=rdt, device=device)
        u = torch.rand(k, generator=generator, dtype=rdt, device=device)
        # Gaussian proposal exp(sigma eta): X = i (sigma eta).sigma / sqrt2, angle |X|/sqrt2
        r = eta.norm(dim=-1)
        theta_g = torch.sqrt(tp) * r / math.sqrt(2.0)
        n_g = eta / r.clamp_min(1e-300)[:, None]
        ok_g = theta_g <= math.pi
        th = torch.where(ok_g & (theta_g > 0), theta_g, torch.ones_like(theta_g))
        # Haar proposal: uniform unit quaternion
        q = q / q.norm(dim=-1, keepdim=True)
        qv = q[:, 1:].norm(dim=-1)
        n_h = q[:, 1:] / qv.clamp_min(1e-300)[:, None]
        cos = torch.where(gauss, torch.cos(th), q[:, 0])
        sin = torch.where(gauss, torch.sin(th), qv)
        logk, _ = su2_heat_kernel(cos, sin, tp, want_h=False)
        log_r = (logk + 2 * torch.log(sin.clamp_min(1e-300)) + 1.5 * torch.log(tp) - tp / 4
                 - LOG_2SQRTPI - 2 * torch.log(th) + th * th / tp)
        log_r = torch.where(ok_g, log_r, torch.full_like(log_r, -math.inf))
        log_r = torch.where(theta_g == 0, torch.zeros_like(log_r), log_r)
        if (~gauss).any():
            hm = ~gauss
            logk0, _ = su2_heat_kernel(torch.ones_like(tp[hm]), torch.zeros_like(tp[hm]), tp[hm], want_h=False)
            log_r[hm] = logk[hm] - logk0
        acc = torch.log(u) < log_r
        nvec = torch.where(gauss[:, None], n_g, n_h)
        quat[pending[acc]] = torch.cat((cos[acc, None], sin[acc, None] * nvec[acc]), -1)
        pending = pending[~acc]
    return quaternion_to_su2(quat).to(complex_dtype(dtype)).reshape(*shape, 2, 2)


def heat_kernel_sample(group, shape, sigma, generator=None, dtype=torch.float64, device=None) -> torch.Tensor:
    """Exact samples V ~ K_t, t = sigma^2 (sigma broadcastable to ``shape``)."""
    group = get_group(group)
    rdt = real_dtype(dtype)
    sig = torch.broadcast_to(torch.as_tensor(sigma, dtype=rdt, device=device), tuple(shape))
    if group.N == 1:
        eta = torch.randn(tuple(shape), generator=generator, dtype=rdt, device=device)
        return torch.polar(torch.ones_like(eta), sig * eta)[..., None, None]
    W = _su2_heat_sample(tuple(shape), sig * sig, generator, dtype, device)
    if group.special:
        return W
    eta = torch.randn(tuple(shape), generator=generator, dtype=rdt, device=device)
    alpha = sig * eta / math.sqrt(2.0)
    return W * torch.polar(torch.ones_like(alpha), alpha)[..., None, None]


def measure_score_approximation(group, sigmas, n_links: int = 4000, seed: int = 0) -> list[dict]:
    """Heat-kernel score versus -X/sigma^2 on V ~ K_t: per sigma the relative RMS
    difference and the RMS difference per component times sigma."""
    group = get_group(group)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for sigma in sigmas:
        V = heat_kernel_sample(group, (n_links,), float(sigma), generator=gen)
        sh = heat_kernel_score(group, V, sigma)
        ss = small_noise_score(group, V, sigma)
        d2 = group.algebra_norm2(ss - sh).mean()
        h2 = group.algebra_norm2(sh).mean()
        rows.append({
            "sigma": float(sigma),
            "rel_rms": float(torch.sqrt(d2 / h2)),
            "sigma_rms_per_dof": float(sigma * torch.sqrt(d2 / group.algebra_dim)),
        })
    return rows
