"""Diffusion samplers on the gauge group.

* ``scores``   what a sampler needs from a score model (``ScoreFn``), reference scores;
* ``kernels``  Langevin proposals and the generic Metropolis-Hastings kernel;
* ``smc``      the exact sampler: sequential Monte Carlo along the model's noise levels,
               importance weights, resampling (``method = "smc"``, the default);
* ``maala``    the papers' annealed Langevin with a Metropolis-adjusted tail, unweighted,
               approximate (``method = "maala"``);
* ``settings`` ``SampleSettings``, the one source of every sampling parameter;
* ``job``      ``sample_to_file``: batches, checkpoints, resume, the sample file.
"""
