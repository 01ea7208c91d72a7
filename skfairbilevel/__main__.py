"""Command line: ``python -m skfairbilevel compare [options]`` (also ``skfairbilevel``).

Exit status: 0 when every method ran, 1 when a method failed (the others are still
reported), 2 for bad options, 130 when interrupted (the finished methods are written).
"""

import argparse
import os
import shlex
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors name the command and suggest ``--help``."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\nRun '{self.prog} --help' for the "
                     f"options.\n")


def _positive_int(minimum, what):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer; got {text!r}") \
                from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be >= {minimum}; got {value}")
        return value

    return parse


def build_parser():
    """The argument parser of the command line."""
    from .compare import _METRIC_ALIASES, DATASETS, METRICS

    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    parser = _Parser(
        prog="skfairbilevel" if script == "skfairbilevel" else "python -m skfairbilevel",
        description="skfairbilevel command line. The main job is 'compare'.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    cmp = sub.add_parser(
        "compare",
        help="compare our estimators with fairlearn's and scikit-learn's baselines",
        description=(
            "Fit every method on the same split of a bundled dataset, with the same "
            "preprocessing, and report accuracy, balanced accuracy, demographic parity "
            "difference, equalized odds difference, sufficiency gap and fit time: a "
            "table on the terminal, results.csv, results.json and pareto.png in --out. "
            "With no options: Adult, sensitive feature 'sex', official train/test split."
        ),
        epilog="Example: python -m skfairbilevel compare --quick --methods ours,logreg,eg_dp",
    )
    cmp.add_argument("--dataset", default="adult", choices=list(DATASETS),
                     help="bundled dataset (default: adult)")
    cmp.add_argument("--sensitive", default=None, metavar="COLUMN[,COLUMN]",
                     help="sensitive column(s) of the dataset; several give "
                          "intersectional groups (default: the dataset's, e.g. sex for "
                          "adult)")
    cmp.add_argument("--methods", default="all", metavar="LIST",
                     help="comma-separated method names or groups (all, ours, fairlearn, "
                          "sklearn); see --list-methods (default: all)")
    cmp.add_argument("--metric", default="demographic_parity",
                     choices=list(METRICS) + list(_METRIC_ALIASES),
                     help="fairness axis of the Pareto plot and sort key; also the "
                          "constraint our estimators target (default: demographic_parity)")
    cmp.add_argument("--cv", type=_positive_int(2, "--cv"), default=None, metavar="K",
                     help="K-fold cross-validation on the training rows (cross_validate "
                          "with the fairness scorers, metadata routing on) instead of the "
                          "test split")
    cmp.add_argument("--quick", action="store_true",
                     help="small settings: at most 3000 rows per part, few epochs")
    cmp.add_argument("--seed", type=_positive_int(0, "--seed"), default=0,
                     help="random seed of every method (default: 0)")
    cmp.add_argument("--threads", type=_positive_int(1, "--threads"), default=1,
                     metavar="N", help="threads of torch and BLAS during the run (default: "
                                       "1, the fastest at these sizes)")
    cmp.add_argument("--out", default="compare_out", metavar="DIR",
                     help="output directory (default: compare_out)")
    cmp.add_argument("--no-progress", action="store_true", help="no progress bar")
    cmp.add_argument("--list-methods", action="store_true",
                     help="list the methods and exit")
    cmp.set_defaults(subparser=cmp)
    return parser


def _list_methods():
    from .compare import METHODS, _available

    width = max(len(n) for n in METHODS)
    for name, m in METHODS.items():
        status = " (not available)" if _available(m) else ""
        print(f"{name:<{width}}  {m.family:<13}  {m.description}{status}")


def _compare(args, parser):
    from .compare import format_table, run_comparison

    if args.list_methods:
        _list_methods()
        return 0
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"--out {args.out!r} exists and is not a directory")
    command = " ".join([parser.prog] + [shlex.quote(a) for a in args.argv[1:]])
    try:
        result = run_comparison(
            dataset=args.dataset, sensitive=args.sensitive, methods=args.methods,
            metric=args.metric, cv=args.cv, quick=args.quick, seed=args.seed,
            out=args.out, progress=not args.no_progress, n_threads=args.threads,
            command=command,
        )
    except ValueError as exc:  # bad option values found while loading / resolving
        parser.error(str(exc))
    except KeyboardInterrupt:
        print("interrupted before any method finished; nothing written.", file=sys.stderr)
        return 130
    info = result.info
    print(f"skfairbilevel compare: {info['dataset']} ({info['description']})")
    print(f"  sensitive: {', '.join(info['sensitive'])} ({info['groups']} groups); "
          f"split: {info['split']}")
    print(f"  {info['n_train']} training rows, {info['n_test']} test rows; evaluation: "
          f"{info['evaluation']}; seed {info['seed']}"
          + ("; quick settings" if info["quick"] else ""))
    print()
    print(format_table(result.table, info["metric"]))
    print()
    print("acc = accuracy, bal_acc = balanced accuracy, DP/EO diff = demographic parity / "
          "equalized odds difference, suff gap = sufficiency gap (needs probabilities; "
          "'-' without), fit s = fit seconds" + (" (mean per fold, ± std over folds)"
                                                 if info["evaluation"] != "test split"
                                                 else "") + "; * = see the notes.")
    if result.notes:
        print("Notes:")
        for note in result.notes:
            print(f"  * {note}")
    if result.files:
        print("Wrote " + ", ".join(result.files.values()))
    print(f"Done in {info['seconds']:.0f} s.")
    if info["interrupted"]:
        return 130
    return 1 if result.failed else 0


def main(argv=None):
    """Entry point of ``python -m skfairbilevel`` and the ``skfairbilevel`` script."""
    try:
        return _main(argv)
    except BrokenPipeError:  # output piped into e.g. `head`, which exited early
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _main(argv):
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.command is None:
        parser.print_help(sys.stderr)
        print("\nerror: give a command, e.g. 'python -m skfairbilevel compare'",
              file=sys.stderr)
        return 2
    if args.command == "compare":
        return _compare(args, args.subparser)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
