"""campaign: lattice gauge theory ensembles, gauge-equivariant diffusion models and
exact Metropolis-adjusted sampling for 2D U(1), SU(2) and U(2), orchestrated by Snakemake."""

__version__ = "0.1.0"
