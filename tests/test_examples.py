"""Run every script of examples/ in its quick mode (SKFB_EXAMPLE_QUICK=1).

Each example runs in its own subprocess (so a global setting made by one cannot leak
into another), with the Agg backend, in a temporary directory where it saves its
figure (``SKFB_EXAMPLE_OUT``; not the working directory, which is the source tree
during the documentation build). Most of an example's quick run is the import of torch
and scikit-learn, which is single-threaded, so the subprocesses run two at a time with
one thread each (``OMP_NUM_THREADS=1``): on 2 cores that halves the wall time. The
timeout turns a hang into a failure.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
TIMEOUT = 600  # seconds per example; generous because the CI machine may be shared
WORKERS = max(1, min(2, os.cpu_count() or 1))


def _run(path, workdir):
    (workdir / "cwd").mkdir()
    (workdir / "out").mkdir()
    env = dict(
        os.environ,
        SKFB_EXAMPLE_QUICK="1",
        MPLBACKEND="Agg",
        SKFB_EXAMPLE_OUT=str(workdir / "out"),
        PYTHONWARNINGS="ignore",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
    )
    env.pop("DISPLAY", None)
    try:
        return subprocess.run(
            [sys.executable, str(path)],
            cwd=workdir / "cwd",
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        return exc


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run all examples (two at a time); ``{name: (process or TimeoutExpired, dir)}``."""
    pytest.importorskip("matplotlib")  # every example draws its figure (the plot extra)
    dirs = {p.name: tmp_path_factory.mktemp(p.stem) for p in EXAMPLES}
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {p.name: pool.submit(_run, p, dirs[p.name]) for p in EXAMPLES}
        return {name: (f.result(), dirs[name]) for name, f in futures.items()}


def test_there_are_examples():
    names = {p.name for p in EXAMPLES}
    assert {"plot_fair_mlp.py", "plot_gridsearch_routing.py", "plot_compare_fairlearn.py"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_header(path):
    # the docstring is a sphinx-gallery header: a title underlined (and optionally
    # overlined) by '='
    text = path.read_text()
    assert text.lstrip().startswith('"""'), f"{path.name} must start with a docstring"
    header = [line.rstrip() for line in text.lstrip()[3:].strip("\n").splitlines()]
    overline = header.pop(0) if header and set(header[0].strip()) == {"="} else None
    assert len(header) >= 2 and header[0].strip() and set(header[1].strip()) == {"="}, (
        f"{path.name}: the docstring must begin with a title underlined by '='"
    )
    # docutils (and so the documentation build) rejects adornments shorter than the title
    title = header[0]
    for adornment in filter(None, (overline, header[1])):
        assert len(adornment) >= len(title), (
            f"{path.name}: the '=' line under/over the title is shorter than the title "
            f"({len(adornment)} < {len(title)} characters); the Sphinx build fails on it"
        )
    assert "SKFB_EXAMPLE_QUICK" in text, f"{path.name} has no quick mode"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_in_quick_mode(path, runs):
    proc, workdir = runs[path.name]
    assert not isinstance(proc, subprocess.TimeoutExpired), (
        f"{path.name} did not finish within {TIMEOUT} s in quick mode"
    )
    assert proc.returncode == 0, (
        f"{path.name} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n"
        f"{proc.stderr[-4000:]}"
    )
    # the figure goes to the directory SKFB_EXAMPLE_OUT (the documentation build points
    # it outside the source tree), not to the working directory
    assert list((workdir / "out").glob("*.png")), (
        f"{path.name} saved no figure in SKFB_EXAMPLE_OUT; save it with "
        f"fig.savefig(os.path.join(os.environ.get('SKFB_EXAMPLE_OUT', '.'), '<name>.png'))"
    )
    assert not list((workdir / "cwd").glob("*.png")), (
        f"{path.name} wrote a figure into the working directory instead of SKFB_EXAMPLE_OUT"
    )
