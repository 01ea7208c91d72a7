"""Run every script of examples/ in its quick mode (SKFB_EXAMPLE_QUICK=1).

Each example runs in its own subprocess (so a global setting made by one cannot leak
into another), with the Agg backend, in a temporary directory where it may save its
figure. The quick mode of every example is meant to take seconds; the timeout is there
to turn a hang into a failure.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
TIMEOUT = 300  # seconds per example; generous because the CI machine may be shared


def test_there_are_examples():
    names = {p.name for p in EXAMPLES}
    assert {"plot_fair_mlp.py", "plot_gridsearch_routing.py",
            "plot_compare_fairlearn.py"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_in_quick_mode(path, tmp_path):
    env = dict(os.environ, SKFB_EXAMPLE_QUICK="1", MPLBACKEND="Agg",
               SKFB_EXAMPLE_OUT=str(tmp_path), PYTHONWARNINGS="ignore")
    env.pop("DISPLAY", None)
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, (
        f"{path.name} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n"
        f"{proc.stderr[-4000:]}"
    )
    # the docstring is a sphinx-gallery header: a title underlined with '='
    text = path.read_text()
    assert text.lstrip().startswith('"""'), f"{path.name} must start with a docstring"
    header = [line.rstrip() for line in text.lstrip()[3:].strip("\n").splitlines()]
    overline = header.pop(0) if header and set(header[0].strip()) == {"="} else None
    assert len(header) >= 2 and header[0].strip() and set(header[1].strip()) == {"="}, \
        f"{path.name}: the docstring must begin with a title underlined by '='"
    # docutils (and so the documentation build) rejects adornments shorter than the title
    title = header[0]
    for adornment in filter(None, (overline, header[1])):
        assert len(adornment) >= len(title), (
            f"{path.name}: the '=' line under/over the title is shorter than the title "
            f"({len(adornment)} < {len(title)} characters); the Sphinx build fails on it")
    # it made its figure
    assert list(tmp_path.glob("*.png")), f"{path.name} saved no figure"
