"""Running time of ``python -m skfairbilevel compare``: the default run and ``--quick``.

Each run is the user's command, in a subprocess, with the fit cache off (``--no-cache``),
so every fit is timed. Recorded per run: the command, wall-clock and CPU seconds (the
command and its worker processes), the load averages before and after (``uptime``), the
number of cores, the fit counts and each method's fit CPU seconds; and whether it met its
target on this machine (the default run within 10 minutes, ``--quick`` within 90 seconds,
on 2 cores). The machine may be shared: the load is in the record, and CPU seconds / cores
estimate the time on a quiet machine.

The default run's outputs (``report.md``, ``report.html``, ``summary.csv``, ``runs.csv``,
``info.json``, ``pareto.png``) are kept in ``benchmarks/results/compare_default/``.

Usage::

    python benchmarks/bench_compare.py              # both runs, one after the other
    python benchmarks/bench_compare.py --quick      # the --quick run only
    python benchmarks/bench_compare.py --only default
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import RESULTS, Clock, load_note, machine, parse, parser, write_json

TARGETS = {"default": 600.0, "quick": 90.0}  # seconds, on 2 cores
KEPT = ("report.md", "report.html", "summary.csv", "runs.csv", "info.json", "pareto.png")


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return load_note()


def timed_run(name, keep=None):
    """Run the command of ``name`` ("default" or "quick"); its record."""
    with tempfile.TemporaryDirectory(prefix="compare_") as tmp:
        argv = ["compare", "--no-cache", "--no-progress", "--out", tmp]
        if name == "quick":
            argv.insert(1, "--quick")
        before = uptime()
        with Clock() as clock:
            proc = subprocess.run(
                [sys.executable, "-m", "skfairbilevel", *argv], capture_output=True, text=True
            )
        after = uptime()
        info = {}
        if (Path(tmp) / "info.json").exists():
            info = json.loads((Path(tmp) / "info.json").read_text())["info"]
        if keep is not None and proc.returncode in (0, 1):
            keep.mkdir(parents=True, exist_ok=True)
            for f in KEPT:
                if (Path(tmp) / f).exists():
                    shutil.copy(Path(tmp) / f, keep / f)
    shown = " ".join(a for a in argv if a not in ("--out", tmp))
    record = dict(
        run=name,
        command=f"python -m skfairbilevel {shown} --out DIR",
        exit_status=proc.returncode,
        wall_seconds=round(clock.wall, 1),
        cpu_seconds=round(clock.cpu, 1),
        cores=os.cpu_count(),
        cpu_seconds_per_core=round(clock.cpu / (os.cpu_count() or 1), 1),
        uptime_before=before,
        uptime_after=after,
        target_seconds=TARGETS[name],
        met_here=bool(proc.returncode in (0, 1) and clock.wall <= TARGETS[name]),
        fits=info.get("fits_planned"),
        n_jobs=info.get("n_jobs"),
        fit_cpu_seconds_by_method=info.get("fit_cpu_seconds_by_method"),
    )
    if proc.returncode not in (0, 1):
        record["stderr"] = proc.stderr[-2000:]
    return record


def main(argv=None):
    ap = parser(__doc__, out=RESULTS / "compare_timing.json", quick="the --quick run only")
    ap.add_argument("--only", choices=sorted(TARGETS), default=None, help="one of the runs")
    ap.add_argument(
        "--keep",
        default=str(RESULTS / "compare_default"),
        help="where the default run's outputs are kept",
    )
    args = parse(ap, argv)
    names = [args.only] if args.only else (["quick"] if args.quick else ["default", "quick"])
    records = []
    for name in names:
        rec = timed_run(name, keep=Path(args.keep) if name == "default" else None)
        records.append(rec)
        print(
            f"{name}: {rec['wall_seconds']:.0f} s wall, {rec['cpu_seconds']:.0f} s CPU "
            f"on {rec['cores']} cores (target {rec['target_seconds']:.0f} s; "
            f"{'met' if rec['met_here'] else 'NOT met'} here); before: "
            f"{rec['uptime_before']}; after: {rec['uptime_after']}",
            flush=True,
        )
    write_json(args.out, {"machine": machine(args.command), "runs": records})
    print(f"wrote {args.out}")
    return 0 if all(r["exit_status"] in (0, 1) for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
