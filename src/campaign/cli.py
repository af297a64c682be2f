"""Command line: ``campaign {hmc,exact,measure,train,sample,phi4-hmc,phi4-train,phi4-sample,cl,cl-dm,cl-measure} ...``.

The Snakemake scripts call the same library functions; this module only parses
arguments, and turns user errors into one line on stderr with a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import types
import typing
from dataclasses import MISSING, fields

from . import runtime
from .errors import CampaignError
from .preemption import EXIT_PREEMPTED, Preempted


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the error; a campaign log wants exactly one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _integer_at_least(low: int, words: str):
    """An argparse type: an integer >= low, else one line naming what was expected."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {words}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {words}, got {value}")
        return value

    return parse


positive_int = _integer_at_least(1, "a positive integer")
nonnegative_int = _integer_at_least(0, "a non-negative integer")


def nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = nonnegative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number > 0, got 0")
    return value


def lattice_size(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"lattice size L must be >= 2, got {value}")
    return value


from .theories import THEORY_NAMES as GROUP_CHOICES  # noqa: E402 (the theory registry lists the groups)


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress output")


def add_force(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing output, and run beyond the memory limit")


def add_hmc_integration(p, start_help: str) -> None:
    """Molecular-dynamics and checkpoint options shared by every HMC command (gauge, phi^4)."""
    p.add_argument("--n-leapfrog", type=positive_int, default=None,
                   help="integration steps per trajectory (default: tuned during thermalisation)")
    p.add_argument("--trajectory-length", type=positive_float, default=1.0)
    p.add_argument("--integrator", choices=("leapfrog", "omelyan"), default="omelyan")
    p.add_argument("--target-acceptance", type=positive_float, default=0.8)
    p.add_argument("--start", choices=("hot", "cold"), default="hot", help=start_help)
    p.add_argument("--checkpoint-interval", type=positive_float, default=60.0, help="seconds between checkpoints")


def add_common_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--seed", type=nonnegative_int, default=0)
    add_quiet(p)
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads (default: $SLURM_CPUS_PER_TASK, else all cores)")
    p.add_argument("--compile-cache", default=None,
                   help="torch compile cache shared by a campaign's jobs (default: $CAMPAIGN_COMPILE_CACHE)")


# ------------------------------------------------------------------- commands
def cmd_hmc(args) -> int:
    from .hmc import generate_ensemble

    generate_ensemble(
        args.out, args.group, args.beta, args.L, args.n_configs,
        chains=args.chains, therm=args.therm, sep=args.sep, n_leapfrog=args.n_leapfrog,
        trajectory_length=args.trajectory_length, integrator=args.integrator,
        target_acceptance=args.target_acceptance, start=args.start, seed=args.seed, device=args.device,
        dtype=args.dtype, checkpoint_interval=args.checkpoint_interval,
        progress=not args.quiet, force=args.force,
    )
    return 0


def cmd_exact(args) -> int:
    from .exact import exact_observables

    print(json.dumps(exact_observables(args.group, args.beta, args.L, args.max_loop, force=args.force), indent=1))
    return 0


def cmd_measure(args) -> int:
    from .analysis import measure_file

    summary = measure_file(args.file, args.out, max_loop=args.max_loop, summary_path=args.summary)
    print(json.dumps(summary, indent=1))
    return 0


def complex_number(text: str) -> complex:
    try:
        value = complex(text.replace(" ", "").replace("i", "j"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a complex number such as 1+1j, got {text!r}") from None
    if not (math.isfinite(value.real) and math.isfinite(value.imag)):
        raise argparse.ArgumentTypeError(f"expected a finite complex number, got {text!r}")
    return value


def _one_thread() -> None:
    """0D models: per-operation overhead dominates, so more threads only add contention
    (measured: a CL step 15x slower with two threads on a loaded 2-core machine)."""
    import torch

    torch.set_num_threads(1)


def cmd_cl(args) -> int:
    from .complex_langevin.job import generate_cl_ensemble
    from .complex_langevin.langevin import CLSettings
    from .complex_langevin.models import make_model

    _one_thread()
    params = {"gaussian": {"sigma": args.sigma}, "quartic": {"sigma": args.sigma, "lam": args.lam},
              "log-gaussian": {"p": args.p, "alpha": args.alpha}}[args.model]
    model = make_model(args.model, **params)
    settings = CLSettings(n_chains=args.chains, n_meas=args.n_meas, tau_meas=args.tau_meas,
                          tau_therm=args.tau_therm, dt0=args.dt0, k_ref=args.k_ref, seed=args.seed)
    generate_cl_ensemble(args.out, model, settings, checkpoint_interval=args.checkpoint_interval,
                         force=args.force, progress=not args.quiet)
    return 0


def cmd_cl_dm(args) -> int:
    from .complex_langevin.diffusion import CLDiffusionSettings
    from .complex_langevin.job import train_and_sample

    _one_thread()
    settings = CLDiffusionSettings(sigma_min=args.sigma_min, sigma_max=args.sigma_max, hidden=args.hidden,
                                   sample_steps=args.sample_steps)
    train_and_sample(args.ensemble, args.out, settings, n_samples=args.n_samples, seed=args.seed,
                     force=args.force, progress=not args.quiet)
    return 0


def cmd_cl_measure(args) -> int:
    from .complex_langevin.job import measure

    res = measure(args.file, summary=args.summary, figure=args.figure, compare=args.compare)
    if "statement" in res:
        print(res["statement"])
    for n, m in res["moments"].items():
        print(f"<z^{n}> = {m['re']['value']:.5f}({m['re']['error']:.5f}) + i {m['im']['value']:.5f}"
              f"({m['im']['error']:.5f})   exact {m['exact_re']:.5f} + i {m['exact_im']:.5f}")
    return 0


def cmd_train(args) -> int:
    from .training import TrainSettings, train_model

    train_model(args.ensemble, args.out, settings_from_args(TrainSettings, args), resume=args.resume,
                progress=not args.quiet, loss_log=args.loss_log, stop_after=args.stop_after, force=args.force)
    return 0


def cmd_sample(args) -> int:
    from .samplers.job import sample_to_file
    from .samplers.settings import SampleSettings

    settings = settings_from_args(SampleSettings, args)
    sample_to_file(args.model, args.out, settings, model_path=args.model, progress=not args.quiet,
                   group=args.group, force=args.force)
    return 0


def cmd_phi4_hmc(args) -> int:
    from .phi4.hmc import Phi4HMCSettings, generate_ensemble

    settings = Phi4HMCSettings(
        kappa=args.kappa, lam=args.lam, shape=(args.L,) * args.dims, configs_per_chain=args.configs_per_chain,
        chains=args.chains, therm=args.therm, sep=args.sep, n_leapfrog=args.n_leapfrog,
        trajectory_length=args.trajectory_length, integrator=args.integrator,
        target_acceptance=args.target_acceptance, start=args.start, seed=args.seed, device=args.device,
        dtype=args.dtype,
    )
    generate_ensemble(args.out, settings, checkpoint_interval=args.checkpoint_interval, progress=not args.quiet)
    return 0


def cmd_phi4_train(args) -> int:
    from .flat_diffusion import DSMSettings
    from .phi4.jobs import Phi4NetSettings, train

    train(args.ensemble, args.out, settings_from_args(DSMSettings, args), settings_from_args(Phi4NetSettings, args),
          seed=args.seed, force=args.force, progress=not args.quiet)
    return 0


def cmd_phi4_sample(args) -> int:
    from .phi4.jobs import Phi4SampleSettings, sample

    s = Phi4SampleSettings(kappa=args.kappa, lam=args.lam, shape=(args.L,) * args.dims,
                           configs_per_chain=args.configs_per_chain, chains=args.chains, flow_steps=args.flow_steps,
                           batch=args.batch, seed=args.seed)
    sample(args.model, args.out, s, force=args.force, progress=not args.quiet)
    return 0


# ------------------------------------------------------- flags from settings dataclasses
def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _base_type(annotation):
    """int / float / str / bool from an annotation such as ``float | None``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def add_settings_arguments(p: argparse.ArgumentParser, cls) -> None:
    """One flag per field of a settings dataclass (``--n-levels`` for ``n_levels``): help,
    default and choices from the field; values are checked by the dataclass itself."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        base = _base_type(hints[f.name])
        kw = {"dest": f.name, "help": f.metadata.get("help")}
        if f.default is MISSING and f.default_factory is MISSING:
            kw["required"] = True
        else:
            kw["default"] = f.default
            if kw["help"] and f.default is not None:
                kw["help"] += f" (default: {f.default})"
        if "choices" in f.metadata:
            kw["choices"] = f.metadata["choices"]
        if base is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = {int: _integer, float: _number, str: str}[base]
        p.add_argument("--" + f.name.replace("_", "-"), **kw)


def settings_from_args(cls, args):
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def _add_hmc_parser(sub) -> None:
    p = sub.add_parser("hmc", help="generate an HMC ensemble")
    p.add_argument("--group", required=True, choices=GROUP_CHOICES)
    p.add_argument("--beta", required=True, type=nonnegative_float)
    p.add_argument("--L", required=True, type=lattice_size)
    p.add_argument("--n-configs", required=True, type=positive_int)
    p.add_argument("--out", required=True)
    p.add_argument("--chains", type=positive_int, default=4)
    p.add_argument("--therm", type=nonnegative_int, default=200, help="thermalisation trajectories per chain")
    p.add_argument("--sep", type=positive_int, default=5, help="trajectories between stored configurations")
    add_hmc_integration(p, start_help="hot: Haar-random links (frozen chains then scatter); cold: unit links")
    add_common_device(p)
    add_force(p)
    p.set_defaults(func=cmd_hmc)


def _add_exact_parser(sub) -> None:
    p = sub.add_parser("exact", help="exact finite-torus observables as JSON")
    p.add_argument("--group", required=True, choices=GROUP_CHOICES)
    p.add_argument("--beta", required=True, type=nonnegative_float)
    p.add_argument("--L", required=True, type=lattice_size)
    p.add_argument("--max-loop", type=positive_int, default=None)
    add_force(p)
    p.set_defaults(func=cmd_exact)


def _add_measure_parser(sub) -> None:
    p = sub.add_parser("measure", help="measure observables of an ensemble or sample file")
    p.add_argument("file")
    p.add_argument("--out", required=True, help="per-configuration table (.csv or .parquet)")
    p.add_argument("--summary", default=None, help="also write the JSON summary here")
    p.add_argument("--max-loop", type=positive_int, default=None)
    p.set_defaults(func=cmd_measure)


def _add_phi4_hmc_parser(sub) -> None:
    p = sub.add_parser("phi4-hmc", help="generate a scalar phi^4 HMC ensemble (docs/conventions-phi4.md)")
    p.add_argument("--kappa", required=True, type=nonnegative_float, help="hopping parameter")
    p.add_argument("--lam", required=True, type=nonnegative_float, help="quartic coupling lambda")
    p.add_argument("--L", required=True, type=lattice_size, help="lattice extent in every direction")
    p.add_argument("--dims", type=nonnegative_int, default=2,
                   help="lattice dimension (0: the one-site theory, --L unused)")
    p.add_argument("--configs-per-chain", required=True, type=positive_int)
    p.add_argument("--out", required=True)
    p.add_argument("--chains", type=positive_int, default=16)
    p.add_argument("--therm", type=nonnegative_int, default=200, help="thermalisation trajectories per chain")
    p.add_argument("--sep", type=positive_int, default=1, help="trajectories between stored configurations")
    add_hmc_integration(p, start_help="hot: phi_x standard normal; cold: phi = 0")
    add_common_device(p)
    p.set_defaults(func=cmd_phi4_hmc)


def _add_phi4_train_parser(sub) -> None:
    from .flat_diffusion import DSMSettings
    from .phi4.jobs import Phi4NetSettings

    p = sub.add_parser("phi4-train", help="train a symmetric phi^4 score model (VE diffusion) on a phi4-hmc ensemble")
    p.add_argument("--ensemble", required=True, help="phi^4 ensemble (HDF5, campaign phi4-hmc)")
    p.add_argument("--out", required=True, help="model file to write (.pt)")
    add_settings_arguments(p, DSMSettings)
    add_settings_arguments(p, Phi4NetSettings)
    p.add_argument("--seed", type=nonnegative_int, default=0)
    add_quiet(p)
    add_force(p)
    p.set_defaults(func=cmd_phi4_train)


def _add_phi4_sample_parser(sub) -> None:
    p = sub.add_parser("phi4-sample", help="exact phi^4 sampling: the model as an independence Metropolis proposal "
                       "with its exact flow density (small V)")
    p.add_argument("--model", required=True, help="model file from campaign phi4-train")
    p.add_argument("--kappa", required=True, type=nonnegative_float, help="hopping parameter")
    p.add_argument("--lam", required=True, type=nonnegative_float, help="quartic coupling lambda")
    p.add_argument("--L", required=True, type=lattice_size, help="lattice extent in every direction")
    p.add_argument("--dims", type=positive_int, default=2, help="lattice dimension")
    p.add_argument("--configs-per-chain", required=True, type=positive_int)
    p.add_argument("--chains", type=positive_int, default=8)
    p.add_argument("--flow-steps", type=positive_int, default=16, help="Heun steps of the probability-flow map")
    p.add_argument("--batch", type=positive_int, default=64, help="proposals per checkpointed part")
    p.add_argument("--out", required=True, help="ensemble to write (HDF5)")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    add_quiet(p)
    add_force(p)
    p.set_defaults(func=cmd_phi4_sample)


def _add_cl_parser(sub) -> None:
    from .complex_langevin.langevin import CLSettings as _CL

    p = sub.add_parser("cl", help="complex Langevin ensemble of a 0D model with a complex action "
                       "(docs/complex_langevin.md)")
    p.add_argument("--model", required=True, choices=("gaussian", "quartic", "log-gaussian"))
    p.add_argument("--sigma", type=complex_number, default=complex(1, 1),
                   help="gaussian, quartic: S = sigma z^2/2 + ... (a negative value as --sigma=-1+1j)")
    p.add_argument("--lam", type=complex_number, default=complex(1, 0), help="quartic: + lam z^4/4")
    p.add_argument("--p", type=positive_int, default=4, help="log-gaussian: weight (z + i alpha)^p e^{-z^2/2}")
    p.add_argument("--alpha", type=positive_float, default=1.0, help="log-gaussian: pole at z = -i alpha")
    p.add_argument("--out", required=True)
    p.add_argument("--chains", type=positive_int, default=_CL.n_chains)
    p.add_argument("--n-meas", type=positive_int, default=_CL.n_meas, help="measurements per chain")
    p.add_argument("--tau-meas", type=positive_float, default=_CL.tau_meas, help="Langevin time between measurements")
    p.add_argument("--tau-therm", type=nonnegative_float, default=_CL.tau_therm, help="Langevin time discarded first")
    p.add_argument("--dt0", type=positive_float, default=_CL.dt0, help="largest step (adaptive below it)")
    p.add_argument("--k-ref", type=positive_float, default=_CL.k_ref,
                   help="drift magnitude where the step starts to shrink (default: mean after thermalisation)")
    p.add_argument("--seed", type=nonnegative_int, default=_CL.seed)
    p.add_argument("--checkpoint-interval", type=nonnegative_float, default=60.0, help="seconds between checkpoints")
    add_quiet(p)
    add_force(p)
    p.set_defaults(func=cmd_cl)


def _add_cl_dm_parser(sub) -> None:
    from .complex_langevin.diffusion import CLDiffusionSettings as _DM

    p = sub.add_parser("cl-dm", help="train a diffusion model on a CL ensemble and write its draws (same layout)")
    p.add_argument("--ensemble", required=True, help="CL ensemble (HDF5, campaign cl)")
    p.add_argument("--out", required=True, help="DM sample file to write (HDF5)")
    p.add_argument("--n-samples", type=positive_int, default=10_000)
    p.add_argument("--sigma-min", type=positive_float, default=_DM.sigma_min,
                   help="smallest noise level (holomorphic moments do not depend on it)")
    p.add_argument("--sigma-max", type=positive_float, default=_DM.sigma_max)
    p.add_argument("--hidden", type=positive_int, default=_DM.hidden, help="MLP width")
    p.add_argument("--sample-steps", type=positive_int, default=_DM.sample_steps, help="Heun levels of the sampler")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    add_quiet(p)
    add_force(p)
    p.set_defaults(func=cmd_cl_dm)


def _add_cl_measure_parser(sub) -> None:
    p = sub.add_parser("cl-measure", help="moments <z^n> vs exact and the CL correctness verdict of a CL or DM file")
    p.add_argument("file")
    p.add_argument("--summary", default=None, help="write the JSON summary here")
    p.add_argument("--figure", default=None, help="write the P(x, y) figure here (.png)")
    p.add_argument("--compare", default=None, help="DM sample file for the figure's middle panel")
    p.set_defaults(func=cmd_cl_measure)


def _add_train_parser(sub) -> None:
    from .training import TrainSettings

    p = sub.add_parser("train", help="train a gauge-equivariant diffusion model on one ensemble")
    p.add_argument("--ensemble", required=True, help="training ensemble (HDF5, e.g. from campaign hmc)")
    p.add_argument("--out", required=True, help="model file to write (.pt)")
    add_settings_arguments(p, TrainSettings)
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from the checkpoint OUT.parts/ if present")
    p.add_argument("--loss-log", default=None, help="csv: step, loss, lr, wall_time, ema")
    p.add_argument("--stop-after", type=positive_int, default=None, help=argparse.SUPPRESS)
    add_quiet(p)
    add_force(p)
    p.set_defaults(func=cmd_train)


def _add_sample_parser(sub) -> None:
    from .samplers.settings import SampleSettings

    p = sub.add_parser("sample", help="diffusion sampling with a trained model at (beta, L): exact "
                       "(weighted SMC) by default, or the papers' approximate MAALA")
    p.add_argument("--model", required=True, help="trained score model (.pt, campaign.io.save_model)")
    p.add_argument("--out", required=True, help="sample file to write (HDF5)")
    p.add_argument("--group", choices=GROUP_CHOICES, default=None,
                   help="target group; a model of another group is refused (default: the model's)")
    add_settings_arguments(p, SampleSettings)
    add_quiet(p)
    add_force(p)
    p.set_defaults(func=cmd_sample)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="campaign", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for add in (_add_hmc_parser, _add_exact_parser, _add_measure_parser, _add_phi4_hmc_parser,
                _add_phi4_train_parser, _add_phi4_sample_parser, _add_cl_parser, _add_cl_dm_parser,
                _add_cl_measure_parser, _add_train_parser, _add_sample_parser):
        add(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    runtime.setup(getattr(args, "threads", None), getattr(args, "compile_cache", None))
    return run_command(f"campaign {args.command}", args.func, args)


def run_command(label: str, func, *args) -> int:
    """Run one command: what a user can cause ends as one line on stderr and an exit code
    (1: error, EXIT_PREEMPTED: stopped by the scheduler with a checkpoint, 130: Ctrl-C)."""
    try:
        return func(*args) or 0
    except Preempted as exc:
        print(f"{label}: stopped: {exc}", file=sys.stderr)
        return EXIT_PREEMPTED
    except (CampaignError, ValueError, NotImplementedError) as exc:
        print(f"{label}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{label}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
