"""``SampleSettings``: every parameter of the sample stage, with its default and meaning,
written once.  The CLI flags (``campaign sample --n-levels ...``) are generated from these
fields (``campaign.cli``), the workflow passes the config's ``sample`` section straight in,
and a test checks the config schema against them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..device import DTYPES
from ..groups import get_group
from ..settings import SettingError, check_choice, check_integer, check_number, option
from .kernels import default_step_size

METHODS = ("smc", "maala")
DRIFTS = ("model", "physics")
ALLOCATIONS = ("relaxation", "uniform")


@dataclass
class SampleSettings:
    beta: float = field(metadata=option("target coupling"))
    L: int = field(metadata=option("lattice extent of the samples (L x L torus)"))
    n_samples: int = field(metadata=option("configurations to draw"))
    method: str = field(default="smc", metadata=option(
        "smc: exact (importance-weighted sequential Monte Carlo along the noise levels); "
        "maala: the papers' unweighted annealed Langevin with a Metropolis-adjusted tail "
        "(approximate)", choices=METHODS))
    n_levels: int = field(default=400, metadata=option(
        "annealing levels (smc: intermediate couplings from 0 to beta, each with the model's score at "
        "the matching noise level; maala: noise levels, geometric from sigma-max to sigma-min)"))
    steps_per_level: int = field(default=2, metadata=option(
        "Langevin steps per level (smc: on average, see step-allocation)"))
    step_allocation: str = field(default="relaxation", metadata=option(
        "smc: where the moves go: in proportion to the target's relaxation time over the tuned step "
        "size (relaxation: more moves where the drift needs small steps), or the same everywhere "
        "(uniform)", choices=ALLOCATIONS))
    sigma_max: float | None = field(default=None, metadata=option("largest noise level used (default: the model's)"))
    sigma_min: float | None = field(default=None, metadata=option("smallest noise level used (default: the model's)"))
    drift: str = field(default="model", metadata=option(
        "smc: Langevin drift of the Metropolis moves: the model's score at the matching noise level "
        "(model), or the exact force of the intermediate target (physics: the baseline without the "
        "network; measured for U(1) trained at beta0 = 1 and sampled at beta = 7 it takes 5-10x larger "
        "steps at the same acceptance at intermediate levels, at a tenth of the cost per step)",
        choices=DRIFTS))
    target_acceptance: float = field(default=0.6, metadata=option(
        "Metropolis acceptance the step sizes are tuned to (smc: per level, by the pilot; "
        "maala: the tail's)"))
    resample_ess: float = field(default=0.5, metadata=option(
        "smc: resample a batch when its effective sample size falls below this fraction of "
        "its particles (0: never, i.e. annealed importance sampling)"))
    pilot_chains: int = field(default=16, metadata=option(
        "smc: particles of the pilot run that fixes the step sizes before any sample is drawn"))
    tail_steps: int = field(default=20, metadata=option(
        "Metropolis-adjusted steps at the target after the last level (smc: rejuvenation, "
        "weights unchanged; maala: the corrected tail)"))
    batch: int = field(default=64, metadata=option(
        "chains per batch (and per checkpoint); smc: particles per independent SMC run"))
    batches_per_pass: int = field(default=1, metadata=option(
        "smc: batches of equal size run side by side in one vectorised pass, each still its own "
        "SMC run (resampling, weights, log Z); more chains per network call, faster where one "
        "batch is too small to keep the machine busy (small L); the random draws differ from "
        "one batch at a time, their distribution does not"))
    level_step_scale: float = field(default=0.1, metadata=option(
        "maala: annealing step size eps_i = max(scale * sigma_i^2, level-step-min)"))
    level_step_min: float | None = field(default=None, metadata=option(
        "maala: smallest annealing step size (default: the initial tail step size; 0: no floor)"))
    sigma_tail: float | None = field(default=None, metadata=option(
        "maala: noise level of the score in the tail (default: sigma-min)"))
    tail_adapt: int | None = field(default=None, metadata=option(
        "maala: first tail steps that adapt the step size (default: half the tail)"))
    step_size: float | None = field(default=None, metadata=option("maala: initial tail step size"))
    adapt_gain: float = field(default=2.0, metadata=option("maala: Robbins-Monro gain of the tail adaptation"))
    continue_chain: int = field(default=0, metadata=option(
        "maala: further correlated samples per chain along the tail (0: independent samples)"))
    continue_sep: int = field(default=1, metadata=option("maala: tail steps between continued samples"))
    seed: int = field(default=0, metadata=option("seed of every random stream of the run"))
    device: str = field(default="cpu", metadata=option("torch device, e.g. cpu, cuda, cuda:1, auto"))
    dtype: str = field(default="float64", metadata=option(
        "real precision of fields and network (log-densities accumulate in float64)", choices=DTYPES))

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ resolution
    def resolve(self, model_info: dict) -> "SampleSettings":
        """Fill the defaults that depend on the model, then validate."""
        if self.sigma_max is None:
            self.sigma_max = model_info["sigma_max"]
        if self.sigma_min is None:
            self.sigma_min = model_info["sigma_min"]
        if self.method == "maala":
            if self.sigma_tail is None:
                self.sigma_tail = self.sigma_min
            if self.tail_adapt is None:
                self.tail_adapt = self.tail_steps // 2
        self.validate()
        if self.method == "maala":
            if self.step_size is None:
                self.step_size = default_step_size(get_group(model_info["group"]), self.beta, self.L)
            if self.level_step_min is None:
                self.level_step_min = self.step_size
        return self

    def validate(self) -> None:
        """Raise ``SettingError`` naming the first invalid field.  The noise range may still
        be None (the model's, filled by ``resolve``): the config checks a section before
        any model exists."""
        for name, choices in (("method", METHODS), ("drift", DRIFTS), ("dtype", DTYPES),
                              ("step_allocation", ALLOCATIONS)):
            check_choice(self, name, choices)
        check_number(self, "beta", strict=False)
        check_integer(self, "L", 2)
        for name in ("n_samples", "steps_per_level", "batch", "batches_per_pass", "continue_sep", "pilot_chains"):
            check_integer(self, name, 1)
        for name in ("n_levels", "tail_steps", "continue_chain", "seed"):
            check_integer(self, name, 0)
        for name in ("level_step_scale", "adapt_gain"):
            check_number(self, name)
        for name in ("sigma_max", "sigma_min", "sigma_tail", "step_size"):
            if getattr(self, name) is not None:
                check_number(self, name)
        if self.level_step_min is not None:
            check_number(self, "level_step_min", strict=False)
        lo, hi, tail = self.sigma_min, self.sigma_max, self.sigma_tail
        if lo is not None and hi is not None and lo > hi:
            raise SettingError("sigma_min", f"exceeds sigma_max ({lo} > {hi})")
        if tail is not None and hi is not None and tail > hi:
            raise SettingError("sigma_tail", f"exceeds sigma_max ({tail} > {hi})")
        if not 0 < self.target_acceptance < 1:
            raise SettingError("target_acceptance", f"must lie in (0, 1), got {self.target_acceptance}")
        if not 0 <= self.resample_ess <= 1:
            raise SettingError("resample_ess", f"must lie in [0, 1], got {self.resample_ess}")
        if self.tail_adapt is not None:
            self._validate_tail_adapt()
        if self.method == "smc":
            self._validate_smc()
        elif self.batches_per_pass != 1:
            raise SettingError("batches_per_pass", "is an smc option; maala runs one batch at a time")

    def _validate_smc(self) -> None:
        if self.n_levels < 1:
            raise SettingError("n_levels", "must be >= 1 for the smc sampler")
        if self.continue_chain:
            raise SettingError("continue_chain", "is a maala option; smc samples are weighted particles")

    def _validate_tail_adapt(self) -> None:
        check_integer(self, "tail_adapt", 0)
        if self.tail_steps and self.tail_adapt >= self.tail_steps:
            raise SettingError("tail_adapt", f"must be smaller than tail_steps ({self.tail_adapt} >= "
                               f"{self.tail_steps}): the last tail steps run with the frozen step size")
        if not self.tail_steps and self.tail_adapt:
            raise SettingError("tail_adapt", "> 0 needs tail_steps > 0")

    # ---------------------------------------------------------------- derived
    @property
    def samples_per_chain(self) -> int:
        return self.continue_chain + 1

    @property
    def n_chains(self) -> int:
        return -(-self.n_samples // self.samples_per_chain)

    @property
    def batch_sizes(self) -> list[int]:
        n, b = self.n_chains, self.batch
        return [min(b, n - i) for i in range(0, n, b)]

    @property
    def passes(self) -> list[list[int]]:
        """The batches (indices into ``batch_sizes``) of each vectorised pass: consecutive
        batches of equal size, ``batches_per_pass`` at most."""
        sizes, passes = self.batch_sizes, []
        for b, size in enumerate(sizes):
            if passes and len(passes[-1]) < self.batches_per_pass and sizes[passes[-1][0]] == size:
                passes[-1].append(b)
            else:
                passes.append([b])
        return passes

    @property
    def mh_steps(self) -> int:
        """maala: Metropolis-adjusted steps per chain (tail and continuation)."""
        return self.tail_steps + self.continue_chain * self.continue_sep

    @property
    def steps_per_batch(self) -> int:
        if self.method == "smc":
            return self.n_levels * self.steps_per_level + self.tail_steps
        return self.n_levels * self.steps_per_level + self.mh_steps

    @property
    def independent(self) -> bool:
        """Whether the samples are independent draws (no Markov-chain analysis)."""
        return self.continue_chain == 0

    @property
    def weighted(self) -> bool:
        return self.method == "smc"


SETTING_NAMES = tuple(f.name for f in fields(SampleSettings))
