"""Shared test configuration."""

import os

# One BLAS/OpenMP thread per test process (inherited by pytest-xdist workers): small
# float64 matrix products are far slower multithreaded on a busy 2-core machine.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# matplotlib (the plot extra) is optional: not imported here, but if a test imports it,
# it draws without a display. Tests that need it call pytest.importorskip("matplotlib").
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

# One intra-op thread per test process: with pytest-xdist's 2 workers on 2 cores there is
# no oversubscription (which slows these small models down several times over), and the
# results do not depend on the thread count.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` are skipped on a machine without a CUDA GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_metadata_routing_leak():
    """Every test starts and ends with metadata routing off (the scikit-learn default)."""
    import sklearn

    sklearn.set_config(enable_metadata_routing=False)
    yield
    sklearn.set_config(enable_metadata_routing=False)
