"""Statistics and tables: measure ensembles, Gamma-method summaries, the tidy campaign table.

Statistics (``campaign.stats``)
-------------------------------
* Markov chains (file attr ``independent`` false or absent): ``chain_summary``, the Gamma
  method with every chain a replica, plus the scatter between chains; marked unreliable
  where a chain is frozen, shorter than 50 tau_int, or the chains disagree.
* chi_t = <Q^2> / V (V = L^2): the same analysis of Q^2 / V.
* Independent samples (attr ``independent`` true): ``independent_summary``.
* Weighted samples (dataset ``log_weights``, e.g. the smc sampler): ``weighted_summary``,
  the self-normalised estimator with jackknife errors over the independent blocks
  (dataset ``weight_block``); n_eff is the effective sample size.

measure_file summary (JSON, NaN written as null)
------------------------------------------------
``{"file", "table", "group", "beta", "L", "algorithm", "n_configs", "n_chains",
"independent", "weighted", "max_loop", "observables": {name: {"value", "error", "tau_int",
"tau_int_error", "n_eff", "reliable", "note", ...}}, "chi_t": {...same keys} (u1/u2 only),
"diagnostics": {...}, "attrs": {every root attr of the file}, "measured": provenance()}``.

Diagnostics from the file's ``history/`` group:
* HMC (``accept_prob``, ``accepted``, ``dH`` of shape (trajectories, chains); the first
  ``attrs["therm"]`` trajectories are dropped): ``acceptance`` (mean Metropolis
  probability), ``acceptance_rate`` (fraction accepted), ``exp_minus_dH`` (<exp(-dH)>,
  which must be 1), each {"value", "error", "tau_int", ...}, and ``n_trajectories``.
* smc (weighted): ``ess`` and ``ess_per_sample`` (of the whole file), ``tail_step_size``
  (the pilot-tuned step size at the target, at the fixed target acceptance: larger means
  a better drift), ``level_acceptance_min`` (worst level), ``resamplings`` per batch,
  ``log_z``.
* MAALA and other samplers: ``tail_acceptance`` (and the alias ``acceptance``) from the
  first history key among ``tail_acceptance, tail_accept_prob, accept_prob, acceptance,
  accepted``, else from the attr ``tail_acceptance`` / ``acceptance``; every other history key
  containing "accept" is reported as ``history_<key>``.  MAALA files also give
  ``tail_step_size`` (the frozen MH step size, mean over batches, from ``batch_eps``) and
  ``annealed_plaquette`` (plaquette after the first tail step, from ``tail_plaquette``:
  how close the annealing alone lands to the target) and, for U(1)/U(2),
  ``tail_q_changed`` (fraction of chains whose topological charge the corrected tail
  changed: near 0, Q is inherited from the annealing).

Tidy table (``collect_summaries``)
----------------------------------
One row per (summary file, observable); columns ``TABLE_COLUMNS``.  Observables: the
measured ones (plaquette, W_RxT, Q), ``chi_t``, and the diagnostics ``acceptance``
(HMC: mean acceptance probability; MAALA: tail acceptance) and ``exp_minus_dH`` (HMC).
``exact`` comes from the exact JSONs (``campaign.exact.exact_observables`` format; <Q> = 0
and <exp(-dH)> = 1 are exact without them); ``pull`` = (value - exact) / error;
``cost_per_independent_sample_s`` = wall_time_s / n_eff.
"""

from .collect import collect_summaries
from .diagnostics import TAIL_ACCEPT_KEYS, algorithm_diagnostics
from .measure import measure_file
from .summaries import summarize_table
from .tables import TABLE_COLUMNS, read_table, write_json_atomic, write_table

__all__ = [
    "TABLE_COLUMNS", "TAIL_ACCEPT_KEYS", "algorithm_diagnostics", "collect_summaries", "measure_file",
    "read_table", "summarize_table", "write_json_atomic", "write_table",
]
