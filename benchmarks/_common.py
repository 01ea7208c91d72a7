"""What every benchmark script shares: its options, its threads, its clock, its record.

* :func:`parser` / :func:`parse`: an ``argparse`` parser with ``--quick``, ``--threads``
  (torch and BLAS threads; default ``SKFB_THREADS``, else 1) and ``--out``; ``parse``
  also applies the thread limit;
* :class:`Clock`: wall and CPU seconds of a block (CPU of this process and of its
  finished children);
* :func:`machine` / :func:`load_note`: the date, the load averages, the cores, the thread
  count, the command line and the library versions, to store next to every timing (the
  machine may be shared);
* :func:`write_json` and :data:`RESULTS`, the folder of recorded results.

Experiments that split, fit and score (several methods, seeds, knob values) go through
the package's runner, :func:`skfairbilevel.compare.run_comparison`, instead.
"""

import argparse
import json
import math
import os
import platform
import resource
import shlex
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

_limits = []  # threadpoolctl limiters kept alive for the whole run


def parser(doc, *, out=None, threads=1, quick="small settings"):
    """An ArgumentParser described by ``doc``'s first paragraph, with the shared options.

    ``out`` is the default of ``--out`` (None: no default); the default of ``--threads``
    is ``SKFB_THREADS`` if set, else ``threads``.
    """
    first = doc.strip().split("\n\n")[0].replace("\n", " ")
    ap = argparse.ArgumentParser(
        description=first, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help=quick)
    default = int(os.environ.get("SKFB_THREADS", threads))
    ap.add_argument(
        "--threads", type=int, default=default, help=f"torch and BLAS threads (default: {default})"
    )
    ap.add_argument(
        "--out",
        default=None if out is None else str(out),
        help="where the results go" + (f" (default: {out})" if out else ""),
    )
    return ap


def parse(ap, argv=None):
    """Parse the options and apply ``--threads``; ``args.command`` is the command line."""
    args = ap.parse_args(argv)
    set_threads(args.threads)
    args.command = command_line(argv)
    return args


def set_threads(n):
    """torch's intra-op threads and the BLAS/OpenMP pools limited to ``n``."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    _limits.append(threadpool_limits(limits=n))


def command_line(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "?"
    return " ".join(["python", f"benchmarks/{script}"] + [shlex.quote(a) for a in args])


def _cpu():
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Clock:
    """``with Clock() as c: ...`` then ``c.wall`` and ``c.cpu`` (seconds)."""

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), _cpu()
        self.wall = self.cpu = math.nan
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._wall
        self.cpu = _cpu() - self._cpu
        return False


def now():
    """The local date and time, ``"2026-01-31 14:05:09"``."""
    return time.strftime("%Y-%m-%d %H:%M:%S")


def load_note():
    """``"load average 1.2 / 0.9 / 0.5 on 2 cores"``."""
    try:
        loads = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        loads = "?"
    return f"load average {loads} on {os.cpu_count()} cores"


def machine(command=None):
    """The context of a measurement, to store next to it."""
    import sklearn
    import torch

    try:
        import fairlearn

        fl = fairlearn.__version__
    except ImportError:
        fl = None
    from skfairbilevel import __version__

    return {
        "date": now(),
        "load_average": list(os.getloadavg()),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "command": command or command_line(),
        "versions": {
            "skfairbilevel": __version__,
            "torch": torch.__version__,
            "scikit-learn": sklearn.__version__,
            "fairlearn": fl,
            "python": platform.python_version(),
        },
        "note": "shared machine: absolute seconds depend on the load",
    }


def _plain(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def write_json(path, payload, indent=1):
    """``payload`` as JSON at ``path`` (numpy values made plain); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=indent, default=_plain) + "\n")
    return path


def write_report(folder, name, lines):
    """The Markdown ``lines`` printed and written to ``folder/name``; returns the path."""
    text = "\n".join(lines) + "\n"
    print(text)
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
