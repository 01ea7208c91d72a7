"""The experiment runner behind ``python -m skfairbilevel compare``.

It answers "on my data, at a fairness level I can accept, which method gives the best
accuracy, and how sure is that?":

* **data**: a bundled dataset (:data:`DATASETS`) or your own table, split per seed into
  train / validation / test rows, stratified by label and group (Adult keeps its official
  test file);
* **methods**: a registry (:data:`METHODS`) where each method declares its estimator, its
  trade-off knob and the knob's grid; add your own with :class:`Method`;
* **fits**: every method on the training rows for every knob value and seed, scored on
  the validation and test rows, in parallel (joblib processes or a Dask cluster), each
  result cached on disk;
* **choice**: for each fairness bound epsilon, the operating point of each method is
  chosen on validation only (:func:`select_operating_points`), and its test figures are
  reported as mean and 95% t-interval over seeds (:func:`summarize`), with how often it
  breaks epsilon on test.

:func:`run_comparison` does all of it and writes ``runs.csv``, ``summary.csv``,
``report.md``, ``report.html`` and ``pareto.png``. See the user guide's page on the runner.
"""

from ._data import DATASETS, MAX_SENSITIVE_VALUES, Table, load_table, make_splits, prepare
from ._methods import METHODS, Method, Settings, grid_product, resolve_methods
from ._protocol import (
    METRIC_ALIASES,
    METRICS,
    front_table,
    resolve_metric,
    select_operating_points,
    summarize,
    t_interval,
)
from ._report import draw_pareto, format_table, plot_pareto, write_outputs
from ._runner import (
    DEFAULT_EPSILONS,
    RUN_COLUMNS,
    ComparisonResult,
    evaluate_predictions,
    load_result,
    parity_gaps,
    run_comparison,
    signed_tpr_gap,
)

__all__ = [
    "DATASETS",
    "DEFAULT_EPSILONS",
    "MAX_SENSITIVE_VALUES",
    "METHODS",
    "METRICS",
    "METRIC_ALIASES",
    "RUN_COLUMNS",
    "ComparisonResult",
    "Method",
    "Settings",
    "Table",
    "draw_pareto",
    "evaluate_predictions",
    "format_table",
    "front_table",
    "grid_product",
    "load_data",
    "load_result",
    "load_table",
    "make_splits",
    "parity_gaps",
    "plot_pareto",
    "prepare",
    "resolve_methods",
    "resolve_metric",
    "run_comparison",
    "select_operating_points",
    "signed_tpr_gap",
    "summarize",
    "t_interval",
    "write_outputs",
]


def load_data(
    dataset="adult", sensitive=None, *, seed=0, quick=False, data=None, target=None, positive=None
):
    """The training, validation and test parts of one seed, as DataFrames.

    A convenience view of :func:`load_table` and :func:`make_splits` (hold-out): returns
    a dict with ``X_train``, ``y_train``, ``A_train`` and the same for ``validation`` and
    ``test`` (features with the sensitive columns, 0/1 target, group labels), plus
    ``sensitive``, the sensitive column names.
    """
    import pandas as pd

    table = load_table(dataset, data=data, target=target, sensitive=sensitive, positive=positive)
    (part,) = make_splits(table, seed, quick=quick)
    labels = pd.Series(table.group_labels)
    out = {"sensitive": list(table.sensitive)}
    for name, rows in (
        ("train", part.train),
        ("validation", part.evaluate["validation"]),
        ("test", part.evaluate["test"]),
    ):
        out[f"X_{name}"] = table.X.iloc[rows].reset_index(drop=True)
        out[f"y_{name}"] = pd.Series(table.y[rows], name=table.target)
        out[f"A_{name}"] = labels.iloc[table.groups[rows]].reset_index(drop=True)
    return out
