"""Scalar phi^4 lattice field theory (issue 18): the action in hopping form, HMC through
the shared integrators of ``campaign.hmc``, observables and exact references.

Convention (docs/conventions-phi4.md): on a periodic lattice of any dimension d,

    S[phi] = sum_x [ -2 kappa sum_mu phi_x phi_{x+mu} + phi_x^2 + lambda (phi_x^2 - 1)^2 ].

Fields are real tensors ``(chains, *lattice)``, chain axis first like every batch of the
package; ``lattice = ()`` is the one-site (0D) theory, which has no hopping term.
"""

from .action import Phi4Couplings, Phi4Field, action, force, from_mass_form, to_mass_form

__all__ = ["Phi4Couplings", "Phi4Field", "action", "force", "from_mass_form", "to_mass_form"]
