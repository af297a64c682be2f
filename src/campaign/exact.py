"""Exact results for 2D Wilson lattice gauge theory on an L x L periodic torus.

Public API (groups "u1", "su2", "u2" as names or ``campaign.groups.Group``; V = L*L):

* ``plaquette(group, beta, L)``                     W(1, 1) on the torus
* ``wilson_loop(group, beta, L, R, T)``             (1/N) Re tr of the R x T loop, 1 <= R, T <= L
* ``chi_t(group, beta, L)``                         <Q^2>/V, u1 and u2 (su2: ValueError)
* ``wilson_loop_infinite_volume(group, beta, R, T)``
* ``chi_t_infinite_volume(group, beta)``            u1 and u2
* ``exact_observables(group, beta, L, max_loop=None)`` -> JSON-ready dict
* ``log_partition_function(group, beta, L)``        log Z, Z = int dU exp(-S) over normalised Haar
* ``character_coefficient(group, beta, rep)``       c_r, exposed for tests

Actions and observables are those of docs/conventions.md: U(1) S = beta sum_P (1 - cos theta_P);
SU(2), U(2) S = beta sum_P (1 - (1/2) Re tr U_P); Q = (1/2pi) sum_P arg U_P (U(1)) or
arg det U_P (U(2)), each arg wrapped into (-pi, pi].

Method (Migdal, Rusakov).  The one-plaquette weight w(U) = exp(-S_P(U)) is a class function,
w = sum_r c_r chi_r with c_r = int dU w(U) conj chi_r(U).  Integrating out the links of a
genus-one surface of V plaquettes leaves

    Z = sum_r F_r^V,   F_r = c_r / d_r,
    <chi_f(W)> = (1/Z) sum_r sum_{s in r x f} (d_s / d_r) F_s^A F_r^(V-A)

for a loop that bounds a disk of A plaquettes.  An R x T rectangle with R, T < L does.  So do
the wound ones the measurement code also produces: for R = L the loop is the boundary of a
strip (an annulus) cut open along one vertical link path S; integrating the two annuli and
then S and the two Polyakov loops with the orthogonality relations gives the same sum
(multiplicity of r in s x f, then two deltas).  R = T = L is the commutator of the two
Polyakov loops, the boundary of the whole cut-open torus (A = V, F_r^0 = 1; the sum still
converges through F_s^V).  R > L winds twice and bounds no disk: rejected.
Everything is computed with ratios rho_r = F_r / F_0 in [0, 1] (the trivial representation
dominates because |chi_r| <= d_r and w >= 0), so F^V never overflows for L = 64, and the
representation sums are truncated adaptively (outermost shell below 1e-17 of the total).

Character coefficients, derived from the Weyl integration formula and checked against
direct quadrature in tests/test_exact.py (all include the e^-beta of the action, x = beta/2);
each theory's module in ``campaign.theories`` implements its own (this module has no
per-group branch):

* U(1), n in Z, d = 1:  c_n = e^-beta I_n(beta).
* SU(2), k = 2j + 1 >= 1, d = k.  Class angle a, Haar density (2/pi) sin^2 a on [0, pi],
  chi_k = sin(k a)/sin a:  c_k = e^-beta (2/pi) int_0^pi e^(beta cos a) sin a sin(k a) da
  = e^-beta [I_{k-1}(beta) - I_{k+1}(beta)] = e^-beta 2 k I_k(beta) / beta, hence
  F_k = 2 e^-beta I_k(beta) / beta and rho_k = I_k(beta) / I_1(beta).
* U(2), (l1 >= l2) in Z^2, d = l1 - l2 + 1:  c = e^-beta [I_l1(x) I_l2(x) - I_{l1+1}(x) I_{l2-1}(x)]
  (the U(N) Bessel determinant det[I_{l_i - i + j}(x)] for w = e^-beta exp(x sum_i cos phi_i),
  i.e. exp((beta/2) Re tr U) with eigenphases phi_i).  Fundamental
  f = (1, 0); (l1, l2) x f = (l1+1, l2) + (l1, l2+1), the latter only if l2 + 1 <= l1.
  rho_f = F_(1,0)/F_(0,0) = I_1(x)^2 / (x [I_0(x)^2 - I_1(x)^2]) is the infinite-volume
  plaquette (-> beta/8 at small beta).

Topology.  The theta term e^(i theta q(U_P)) per plaquette keeps the weight a class function,
so Z(theta) = sum_r (c_r(theta)/d_r)^V.  Both topological groups reduce to one integral over
the U(1) angle sigma in (-pi, pi] (sigma = arg U for U(1), sigma = arg det U for U(2), where
q = sigma/2pi needs no further wrapping):

    c_r(theta) = (1/2pi) int dsigma e^(i theta sigma/2pi) e^(-i mu_r sigma) G_r(sigma),

U(1): mu_n = n, G = e^(beta (cos sigma - 1)).  U(2): eigenphases sigma/2 +- delta/2; the
variables (sigma, delta) in (-pi, pi] x (-2pi, 2pi] cover the maximal torus once (Jacobian
1/2), chi_(l1,l2) = e^(i (l1+l2) sigma/2) sin(k delta/2)/sin(delta/2) with k = l1 - l2 + 1,
and the delta integral is the SU(2) one: mu_r = (l1 + l2)/2,
G_k(sigma) = e^-beta [I_{k-1}(y) - I_{k+1}(y)], y = beta cos(sigma/2).
With c_r' = (1/2pi) int (sigma/2pi) sin(mu sigma) G and b_r = -c_r'' = (1/2pi) int
(sigma/2pi)^2 cos(mu sigma) G at theta = 0,

    chi_t = -(1/V) d^2 log Z / d theta^2 = (1/Z) sum_r [F_r^(V-1) b_r/d_r - (V-1) F_r^(V-2) (c_r'/d_r)^2].

Z'(0) = 0 because r and its conjugate have opposite c_r'.  For V -> infinity only r = 0 is
left: chi_t -> b_0/c_0 = <q^2> of a single plaquette (U(1): <phi^2>/(4 pi^2)).  On the 1 x 1
torus the only plaquette is a commutator, trivial for U(1) and of unit determinant for U(2),
so Q = 0 there (and the U(1) plaquette and every U(1) loop is exactly 1).

Numerical accuracy: loops and plaquettes to ~1e-15 relative (the U(2) coefficients lose
~log10(beta) digits to the determinant's cancellation); chi_t to a few 1e-16 <q^2> absolute, so
where the nontrivial sectors are exponentially rare (V = 4, 9 at beta >~ 10) only its
order of magnitude is meaningful and rounding noise below zero is clipped to 0.

Reference values (this module; the U(1) beta = 7 line matches the public notebook numbers
0.92553, 0.28991, 0.0039313):
  U(1)  beta=7, L=16:  W(1,1)=0.925532  W(2,2)=0.733780  W(4,4)=0.289911  chi_t=0.00393131
  U(1)  beta=1, L=16:  W(1,1)=0.446390  W(2,2)=0.0397061                  chi_t=0.0406362
  SU(2) beta=2, L=8:   W(1,1)=0.433127  W(2,2)=0.0351935
  U(2)  beta=2, L=8:   W(1,1)=0.248851  W(2,2)=0.00383493                 chi_t=0.0718019
"""

from __future__ import annotations

import math
import numbers
import operator

import numpy as np
from .theories import THEORIES, Theory, get_theory
from .theories.base import Representations
from .theories.observables import exact_loop_key

TOLERANCE = 1e-17  # truncate representation sums when the outermost shell is this small
_MAX_CUTOFF = 4096
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)

__all__ = [
    "plaquette",
    "wilson_loop",
    "chi_t",
    "wilson_loop_infinite_volume",
    "chi_t_infinite_volume",
    "exact_observables",
    "character_coefficient",
    "log_partition_function",
]


# ------------------------------------------------------------------ input validation
def _check_beta(beta) -> float:
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
        raise ValueError(f"beta must be a real number, got {beta!r}")
    beta = float(beta)
    if not math.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be finite and >= 0, got {beta}")
    return beta


def _check_int(value, name: str, low: int = 1) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        n = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}") from None
    if n < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {n}")
    return n


def _check_loop(L: int, R, T) -> tuple[int, int]:
    """1 <= R, T <= L (which also keeps R T <= V): a longer side winds around the torus more
    than once, the loop then bounds no disk and the character formula does not apply."""
    R, T = _check_int(R, "R"), _check_int(T, "T")
    if R > L or T > L:
        raise ValueError(f"loop {R}x{T} is longer than the torus side L = {L}; need 1 <= R, T <= L")
    return R, T


def _topological_theory(group) -> Theory:
    theory = _theory(group)
    if not theory.has_topology:
        defined = " and ".join(t.name for t in THEORIES.values() if t.has_topology)
        raise ValueError(f"{theory.name} has no topological charge in two dimensions; chi_t is defined for {defined}")
    return theory


# ------------------------------------------------------------ character coefficients
def character_coefficient(group, beta, rep) -> float:
    """c_r = int dU exp(-S_P(U)) conj chi_r(U) for one plaquette (action including its
    constant, so c_trivial <= 1).  rep: n (u1), k = 2j+1 (su2), (l1, l2) with l1 >= l2 (u2)."""
    theory, beta = _theory(group), _check_beta(beta)
    return theory.coefficient(beta, rep)


def _theory(group) -> Theory:
    """The registered theory of a name or a campaign.groups.Group."""
    return get_theory(group)


def _initial_cutoff(beta: float) -> int:
    # rho_n ~ exp(-n^2 / (2 beta)) at large beta: the sums extend over ~ sqrt(beta) shells
    return 4 + int(2 * math.sqrt(beta))


def _truncated_sums(theory: Theory, beta: float, terms, min_cutoff: int = 0) -> list[np.ndarray]:
    """Sum ``terms(reps)`` (a list of arrays, first axis = representation) over all
    representations, doubling the cutoff until every outermost-shell contribution is below
    TOLERANCE relative to its total (term magnitudes fall off monotonically outside ~sqrt(beta))."""
    K = max(_initial_cutoff(beta), min_cutoff)
    while K <= _MAX_CUTOFF:
        reps = theory.representations(beta, K)
        parts = terms(reps)
        outer = reps.shell == K
        totals = [p.sum(0) for p in parts]
        tails = [np.abs(p[outer]).sum(0) for p in parts]
        if all(np.all(t <= TOLERANCE * np.abs(s)) for s, t in zip(totals, tails)):
            return totals
        K *= 2
    raise RuntimeError(f"{theory.name} character sum at beta={beta} did not converge by cutoff {_MAX_CUTOFF}")


# ------------------------------------------------------------------- torus: loops
def _torus_loops(theory: Theory, beta: float, V: int, areas, min_cutoff: int = 0) -> np.ndarray:
    """<(1/N) Re tr W> for loops bounding disks of the given areas on a V-plaquette torus."""
    areas = np.asarray(areas, dtype=int)
    if np.any((areas < 1) | (areas > V)):
        raise ValueError(f"loop areas must lie in [1, V={V}]")

    def terms(reps: Representations):
        z = reps.rho**V
        # sum_{s in r x f} (d_s/d_r) rho_s^A, for every area at once: (n_reps, n_areas)
        disk = ((reps.up_dim / reps.dim[:, None])[..., None] * reps.up_rho[..., None] ** areas).sum(1)
        # rho^0 = 1 also where rho = 0 (numpy: 0.0**0 == 1.0), as the formula needs
        return [z, reps.rho[:, None] ** (V - areas) * disk]

    z, numerator = _truncated_sums(theory, beta, terms, min_cutoff)
    return numerator / (theory.N * z)


def wilson_loop(group, beta, L, R, T) -> float:
    """Exact <(1/N) Re tr W(R x T)> on the L x L torus (1 <= R, T <= L)."""
    theory, beta, L = _theory(group), _check_beta(beta), _check_int(L, "L")
    R, T = _check_loop(L, R, T)
    return float(_torus_loops(theory, beta, L * L, [R * T])[0])


def plaquette(group, beta, L) -> float:
    """Exact <(1/N) Re tr U_P> on the L x L torus."""
    return wilson_loop(group, beta, L, 1, 1)


def log_partition_function(group, beta, L) -> float:
    """log Z on the L x L torus, Z = int prod dU exp(-S) with normalised Haar measure
    (Z = 1 at beta = 0): log Z = V log F_trivial + log sum_r rho_r^V."""
    theory, beta, L = _theory(group), _check_beta(beta), _check_int(L, "L")
    V = L * L
    (total,) = _truncated_sums(theory, beta, lambda reps: [reps.rho**V])
    return float(V * math.log(theory.coefficient(beta, theory.trivial)) + math.log(total))


# ------------------------------------------------------------------ torus: topology
def _gauss_legendre(n_panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite 16-point Gauss-Legendre rule on [-pi, pi] (the integrands are smooth there
    but not periodic: q = sigma/2pi jumps at the ends)."""
    edges = np.linspace(-math.pi, math.pi, n_panels + 1)
    half = np.diff(edges)[:, None] / 2
    nodes = (edges[:-1, None] + half * (_GL_NODES + 1)).ravel()
    return nodes, (half * _GL_WEIGHTS).ravel()


def _theta_moments(theory: Theory, beta: float, labels: np.ndarray):
    """(c_r, c_r', b_r) at theta = 0 for each representation (see module docstring)."""
    mu, k = theory.theta.labels(labels)
    # panels: >= one oscillation of cos(mu sigma) and several peak widths 1/sqrt(beta) each
    n_panels = max(64, int(2 * np.abs(mu).max()) + 1, int(8 * math.sqrt(beta)) + 1)
    sigma, weight = _gauss_legendre(n_panels)
    weight = weight / (2 * math.pi)
    q = sigma / (2 * math.pi)
    k_values, k_index = np.unique(k, return_inverse=True)
    G = theory.theta.weight(beta, sigma, k_values)
    mu_values, mu_index = np.unique(mu, return_inverse=True)
    phase = mu_values[:, None] * sigma
    cos, sin = np.cos(phase) * weight, np.sin(phase) * weight
    c = (cos @ G.T)[mu_index, k_index]
    dc = ((sin * q) @ G.T)[mu_index, k_index]
    b = ((cos * q * q) @ G.T)[mu_index, k_index]
    return c, dc, b


def _torus_chi_t(theory: Theory, beta: float, V: int, min_cutoff: int = 0) -> float:
    if V == 1:
        return 0.0  # the single plaquette is a commutator: Q = 0 identically
    if V == 2:
        # (V-1) F^(V-2) = F^0 leaves a slowly converging sum over all r; not a square torus
        raise ValueError("chi_t needs V >= 3 plaquettes (V = 1 gives 0)")

    def terms(reps):
        _, dc, b = _theta_moments(theory, beta, reps.labels)
        c0 = _theta_moments(theory, beta, np.zeros_like(reps.labels[:1]))[0][0]
        b_ratio, dc_ratio = b / reps.dim / c0, dc / reps.dim / c0
        z = reps.rho**V
        numerator = reps.rho ** (V - 1) * b_ratio - (V - 1) * reps.rho ** (V - 2) * dc_ratio**2
        return [z, numerator]

    z, numerator = _truncated_sums(theory, beta, terms, min_cutoff)
    # chi_t >= 0; where the nontrivial sectors are exponentially rare (tiny V, large beta)
    # the sum cancels down to its absolute rounding level ~1e-16 <q^2>, which may be negative
    return max(float(numerator / z), 0.0)


def chi_t(group, beta, L) -> float:
    """Exact topological susceptibility <Q^2>/V on the L x L torus (u1, u2)."""
    theory, beta, L = _topological_theory(group), _check_beta(beta), _check_int(L, "L")
    return _torus_chi_t(theory, beta, L * L)


# ------------------------------------------------------------------ infinite volume
def _fundamental_rho(theory: Theory, beta: float) -> float:
    """F_f / F_0: the infinite-volume plaquette."""
    return float(theory.rho(beta, np.array(theory.fundamental)))


def wilson_loop_infinite_volume(group, beta, R, T) -> float:
    """Area law W = rho_f^(R T): u1 I1/I0, su2 I2/I1, u2 I1(x)^2/(x (I0(x)^2 - I1(x)^2)), x = beta/2."""
    theory, beta = _theory(group), _check_beta(beta)
    R, T = _check_int(R, "R"), _check_int(T, "T")
    return _fundamental_rho(theory, beta) ** (R * T)


def chi_t_infinite_volume(group, beta) -> float:
    """<q^2> of one plaquette, q = (wrapped arg U_P or arg det U_P)/2pi (u1, u2)."""
    theory, beta = _topological_theory(group), _check_beta(beta)
    c, _, b = _theta_moments(theory, beta, np.array([theory.trivial]))
    return float(b[0] / c[0])


# ----------------------------------------------------------------------- summary
def exact_observables(group, beta, L, max_loop=None, force: bool = False) -> dict:
    """{"group", "beta", "L", "plaquette", "wilson_loops": {"RxT": W} for 1 <= R, T <=
    max_loop (default max(1, L // 2)), "chi_t" (u1, u2 only)}; plain floats.
    Refuses beta beyond ``campaign.bounds.BETA_MAX`` or an estimated memory beyond the
    limit unless ``force``."""
    from .bounds import check_beta, check_memory, exact_memory_bytes

    theory, beta, L = _theory(group), _check_beta(beta), _check_int(L, "L")
    max_loop = max(1, L // 2) if max_loop is None else _check_int(max_loop, "max_loop")
    if max_loop > L:
        raise ValueError(f"max_loop must not exceed L = {L}, got {max_loop}")
    check_beta(beta, force)
    check_memory(f"exact {theory.name} beta={beta:g} L={L}", exact_memory_bytes(theory.name, beta, L, max_loop), force)
    areas = sorted({r * t for r in range(1, max_loop + 1) for t in range(1, max_loop + 1)} | {1})
    by_area = dict(zip(areas, _torus_loops(theory, beta, L * L, areas).tolist()))
    result = {
        "group": theory.name,
        "beta": beta,
        "L": L,
        "plaquette": float(by_area[1]),
        "wilson_loops": {
            exact_loop_key(r, t): float(by_area[r * t])
            for r in range(1, max_loop + 1)
            for t in range(1, max_loop + 1)
        },
    }
    if theory.has_topology:
        result["chi_t"] = _torus_chi_t(theory, beta, L * L)
    return result
