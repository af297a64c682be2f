"""Command line of the weights campaign: ``python -m campaign.weights {train,spectra,table,figure}``.

    python -m campaign.weights train teacher_student --lr 0.02 --batch-size 8 --steps 4000 --seed 1 --out run.h5
    python -m campaign.weights train rbm --lr 0.005 --batch-size 8 --steps 4000 --seed 1 --set n_hidden=8 --out r.h5
    python -m campaign.weights spectra run_s1.h5 run_s2.h5 ... --json model.json --hist model_hist.csv
    python -m campaign.weights table model.json ... --out temperatures.csv
    python -m campaign.weights figure temperature_collapse --out fig.png --table t.csv --hists h.csv --summaries s.json

Only argument parsing lives here; user errors are one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse

from ..cli import OneLineParser, nonnegative_float, positive_int, run_command


def _setting(text: str):
    import yaml

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v}")
    return v


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m campaign.weights", description="Dyson Brownian motion of weight matrices")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    t = sub.add_parser("train", help="one SGD run logging weight-matrix spectra")
    t.add_argument("model", choices=("teacher_student", "rbm", "nanogpt"))
    t.add_argument("--lr", type=_positive_float, required=True)
    t.add_argument("--batch-size", type=positive_int, required=True)
    t.add_argument("--steps", type=positive_int, required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--log-every", type=positive_int, default=10)
    t.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    t.add_argument("--set", type=_setting, action="append", default=[], metavar="KEY=VALUE",
                   help="a model setting (repeatable), e.g. --set n=8 --set replicas=16")
    t.add_argument("--out", required=True)
    t.add_argument("--device", default="cpu")
    t.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    t.add_argument("--checkpoint-interval", type=nonnegative_float, default=60.0,
                   help="seconds between checkpoints (0: at every snapshot)")
    t.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True, help="continue from OUT.ckpt")
    t.add_argument("--threads", type=positive_int, default=1)
    t.add_argument("--quiet", action="store_true")

    s = sub.add_parser("spectra", help="temperature and level statistics of one model's runs")
    s.add_argument("runs", nargs="+")
    s.add_argument("--json", required=True)
    s.add_argument("--hist", required=True)
    s.add_argument("--stationary-fraction", type=_positive_float, default=0.5)
    s.add_argument("--n-blocks", type=positive_int, default=8)

    c = sub.add_parser("table", help="the points table from spectra summaries")
    c.add_argument("summaries", nargs="+")
    c.add_argument("--out", required=True)

    f = sub.add_parser("figure", help="one figure")
    f.add_argument("name")
    f.add_argument("--out", required=True, help="PNG path (the PDF goes beside it)")
    f.add_argument("--table")
    f.add_argument("--hists", nargs="*", default=[])
    f.add_argument("--summaries", nargs="*", default=[])
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return run_command(f"weights {args.command}", _run, args)


def _run(args) -> int:
    if args.command == "train":
        import torch

        from .training import train_run

        torch.set_num_threads(args.threads)
        out = train_run(
            args.out, args.model, lr=args.lr, batch_size=args.batch_size, steps=args.steps, seed=args.seed,
            log_every=args.log_every, settings=dict(args.set), optimizer=args.optimizer, device=args.device,
            dtype=args.dtype, checkpoint_interval=args.checkpoint_interval, resume=args.resume,
            progress=not args.quiet,
        )
        print(out)
    elif args.command == "spectra":
        from .analysis import analyse_model

        analyse_model(args.runs, args.json, args.hist, stationary_fraction=args.stationary_fraction,
                      n_blocks=args.n_blocks)
    elif args.command == "table":
        from .analysis import write_points_table

        write_points_table(args.summaries, args.out)
    else:
        from .figures import make_figure

        make_figure(args.name, args.out, table=args.table, hists=args.hists, summaries=args.summaries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
