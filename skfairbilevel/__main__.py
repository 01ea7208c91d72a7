"""Command line: ``python -m skfairbilevel compare [options]`` (also ``skfairbilevel``).

Exit status: 0 when every fit ran, 1 when some fit failed (the others are still
reported), 2 for bad options (a one-line message on stderr), 130 when interrupted (the
finished fits are cached and reported; the same command resumes).
"""

import argparse
import os
import shlex
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


class _UsageError(Exception):
    """A bad option: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line naming the command and ``--help``."""

    def error(self, message):
        raise _UsageError(message)


def _int_at_least(minimum, what, *, also=None):
    """An argparse type: an int >= ``minimum`` (or the single value ``also``)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer; got {text!r}") from None
        if value < minimum and value != also:
            extra = f" (or {also})" if also is not None else ""
            raise argparse.ArgumentTypeError(f"{what} must be >= {minimum}{extra}; got {value}")
        return value

    return parse


def build_parser():
    """The argument parser of the command line."""
    from .compare import DATASETS, DEFAULT_EPSILONS, METRIC_ALIASES, METRICS

    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    parser = _Parser(
        prog="skfairbilevel" if script == "skfairbilevel" else "python -m skfairbilevel",
        description="skfairbilevel command line. The main job is 'compare'.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    cmp = sub.add_parser(
        "compare",
        help="sweep each method's trade-off knob, choose operating points on validation "
        "data, report test figures over seeds",
        description=(
            "Fit our estimators and fairlearn's and scikit-learn's baselines for every "
            "value of their trade-off knob, on train/validation/test splits of several "
            "seeds; for each fairness bound epsilon choose each method's operating point "
            "on validation data, and report its test accuracy and unfairness (mean and 95% "
            "interval over seeds). Writes runs.csv, summary.csv, report.md, report.html "
            "and pareto.png into --out. With no options: Adult, sensitive feature 'sex', "
            "demographic parity, 3 seeds, every method's default grid, one job per core."
        ),
        epilog="Examples: python -m skfairbilevel compare --quick | "
        "python -m skfairbilevel compare --data my.csv --target label --positive yes "
        "--sensitive gender --methods ours,eg_dp,logreg",
    )
    data = cmp.add_argument_group("data")
    data.add_argument(
        "--dataset", default=None, choices=list(DATASETS), help="bundled dataset (default: adult)"
    )
    data.add_argument(
        "--data",
        default=None,
        metavar="PATH",
        help="your own table instead: a CSV or Parquet file (string columns "
        "are one-hot encoded, numeric ones standardised)",
    )
    data.add_argument(
        "--target", default=None, metavar="COLUMN", help="with --data: the column to predict"
    )
    data.add_argument(
        "--positive",
        default=None,
        metavar="VALUE",
        help="with --data: the positive class, when the target is not 0/1",
    )
    data.add_argument(
        "--sensitive",
        default=None,
        metavar="COLUMN[,COLUMN]",
        help="sensitive column(s), never model inputs; several give "
        "intersectional groups (default: the dataset's, e.g. sex for "
        "adult; required with --data)",
    )
    proto = cmp.add_argument_group("protocol")
    proto.add_argument(
        "--methods",
        default="all",
        metavar="LIST",
        help="comma-separated method names or groups (all, ours, fairlearn, "
        "sklearn); see --list-methods (default: all)",
    )
    proto.add_argument(
        "--metric",
        default="demographic_parity",
        choices=list(METRICS) + list(METRIC_ALIASES),
        help="the unfairness that epsilon bounds; also the constraint our "
        "estimators target (default: demographic_parity)",
    )
    proto.add_argument(
        "--epsilons",
        default=",".join(f"{e:g}" for e in DEFAULT_EPSILONS),
        metavar="LIST",
        help="fairness bounds, comma-separated (default: %(default)s)",
    )
    proto.add_argument(
        "--seeds",
        type=_int_at_least(1, "--seeds"),
        default=None,
        metavar="N",
        help="number of seeds, each with its own split (default: 3; 2 with --quick)",
    )
    proto.add_argument(
        "--seed", type=_int_at_least(0, "--seed"), default=0, help="first seed (default: 0)"
    )
    proto.add_argument(
        "--cv",
        type=_int_at_least(2, "--cv"),
        default=None,
        metavar="K",
        help="choose on K-fold cross-validation of the training and "
        "validation rows instead of the validation split",
    )
    proto.add_argument(
        "--quick", action="store_true", help="fewer rows and epochs, 2 seeds: about a minute"
    )
    proto.add_argument(
        "--full", action="store_true", help="denser grids (and FACIMS at the paper's settings)"
    )
    run = cmp.add_argument_group("execution")
    run.add_argument(
        "--n-jobs",
        type=_int_at_least(1, "--n-jobs", also=-1),
        default=None,
        metavar="N",
        help="fits in parallel (default, and -1: the number of cores)",
    )
    run.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the fits on a Dask cluster (e.g. tcp://host:8786); needs "
        "pip install 'skfairbilevel[dask]'",
    )
    run.add_argument(
        "--device",
        default="cpu",
        choices=["cpu", "cuda", "auto"],
        help="device of our estimators and of the adversarial baseline (default: cpu)",
    )
    run.add_argument(
        "--threads",
        type=_int_at_least(1, "--threads"),
        default=1,
        metavar="N",
        help="torch and BLAS threads per fit (default: 1, the fastest for these small models)",
    )
    run.add_argument(
        "--out",
        default="compare_out",
        metavar="DIR",
        help="output directory (default: compare_out)",
    )
    run.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the fit cache (<out>/cache)"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument(
        "--list-methods",
        action="store_true",
        help="list the methods, their knobs and grids, and exit",
    )
    cmp.set_defaults(subparser=cmp)
    return parser


def _list_methods(full):
    from .compare import METHODS, Settings

    width = max(len(n) for n in METHODS)
    s = Settings(full=full)
    for name, m in METHODS.items():
        status = " (not available)" if m.unavailable() else ""
        grid = m.param_grid(s)
        values = ", ".join(
            ", ".join(f"{k.split('__')[-1]}={v}" for k, v in p.items())
            if len(p) != 1 or m.knob is None
            else str(next(iter(p.values())))
            for p in grid
        )
        knob = f"{m.knob_label()}: {values}" if grid != [{}] else "(fitted once)"
        print(f"{name:<{width}}  {m.family:<13}  {knob}")
        print(f"{'':<{width}}  {'':<13}  {m.description}{status}")


def _print_result(result):
    from .compare import format_table
    from .compare._report import best_per_epsilon

    info = result.info
    print(f"skfairbilevel compare: {info['description']}")
    groups = ", ".join(f"{k} ({v})" for k, v in info["groups"].items())
    print(f"  sensitive: {', '.join(info['sensitive'])}: {groups}")
    sizes = ", ".join(f"{k} {v}" for k, v in info["split_sizes"].items())
    print(
        f"  {len(info['seeds'])} seed(s); rows per seed: {sizes}"
        + ("; quick settings" if info["quick"] else "")
    )
    print(
        f"  fits: {info['fits_planned']} planned, {info['fits_cached']} cached, "
        f"{info['fits_run']} run, {info['fits_failed']} failed"
    )
    print()
    for line in best_per_epsilon(result.summary):
        print("* " + line.replace("**", ""))
    for eps in info["epsilons"]:
        print()
        print(
            f"epsilon = {eps:g} (ranked by test accuracy among the methods with a "
            f"feasible point on validation in every seed):"
        )
        print(format_table(result.summary, result.chosen, info["metric"], eps))
    if result.notes:
        print()
        print("Notes:")
        for note in result.notes:
            print(f"  * {note}")
    if result.files:
        print()
        print("Wrote " + ", ".join(result.files.values()))
    print(f"Done in {info['seconds']:.0f} s.")


def _compare(args, parser):
    from .compare import run_comparison

    if args.list_methods:
        _list_methods(args.full)
        return 0
    if args.quick and args.full:
        raise _UsageError("--quick and --full exclude each other")
    if args.data is not None and args.dataset is not None:
        raise _UsageError("give --dataset or --data, not both")
    if args.data is None and (args.target is not None or args.positive is not None):
        raise _UsageError("--target and --positive go with --data")
    if args.scheduler is not None and args.n_jobs is not None:
        raise _UsageError(
            "--n-jobs does not apply with --scheduler (the cluster's workers run the fits)"
        )
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise _UsageError(f"--out {args.out!r} exists and is not a directory")
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 3)
    command = " ".join([parser.prog] + [shlex.quote(a) for a in args.argv[1:]])
    try:
        result = run_comparison(
            dataset=args.dataset or "adult",
            data=args.data,
            target=args.target,
            sensitive=args.sensitive,
            positive=args.positive,
            methods=args.methods,
            metric=args.metric,
            epsilons=args.epsilons,
            seeds=seeds,
            seed=args.seed,
            cv=args.cv,
            quick=args.quick,
            full=args.full,
            n_jobs=args.n_jobs,
            scheduler=args.scheduler,
            device=args.device,
            n_threads=args.threads,
            out=args.out,
            cache=not args.no_cache,
            progress=not args.no_progress,
            command=command,
        )
    except ValueError as exc:  # bad option values found while loading / resolving
        raise _UsageError(str(exc)) from None
    _print_result(result)
    if result.interrupted:
        return 130
    return 1 if result.failed else 0


def main(argv=None):
    """Entry point of ``python -m skfairbilevel`` and the ``skfairbilevel`` script."""
    prog = "python -m skfairbilevel"
    try:
        parser = build_parser()
        prog = parser.prog
        argv = list(sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
        args.argv = argv
        if args.command is None:
            parser.print_help(sys.stderr)
            print(
                "\nerror: give a command, e.g. 'python -m skfairbilevel compare'", file=sys.stderr
            )
            return 2
        return _compare(args, args.subparser)
    except _UsageError as exc:
        message = " ".join(str(exc).split())
        print(f"{prog} compare: error: {message} (see {prog} compare --help)", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which exited early
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
