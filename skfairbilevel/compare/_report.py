"""The outputs of a comparison: CSV files, a Markdown and an HTML report, the plot.

``write_outputs`` writes ``runs.csv``, ``summary.csv``, ``info.json``, ``report.md``,
``report.html`` (self-contained: the plot is inlined) and ``pareto.png``. The plot needs
matplotlib (``pip install 'skfairbilevel[plot]'``); without it the plot is left out and
the reports say so.
"""

import base64
import html
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "write_outputs",
    "format_table",
    "draw_pareto",
    "plot_pareto",
    "report_blocks",
    "best_per_epsilon",
    "to_markdown",
    "to_html",
]

_NAMES = {
    "demographic_parity": "DP difference",
    "equalized_odds": "EO difference",
    "sufficiency": "sufficiency gap",
}
_PLOT_EXTRA = "pip install 'skfairbilevel[plot]'"


def _num(x, digits=3):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _interval(mean, low, high, digits=3):
    if low is None or (isinstance(low, float) and math.isnan(low)):
        return _num(mean, digits)
    return f"{_num(mean, digits)} [{_num(low, digits)}, {_num(high, digits)}]"


def _params_text(params):
    try:
        p = json.loads(params)
    except (TypeError, ValueError):
        return str(params)
    if not p:
        return "-"
    return ", ".join(f"{k.split('__')[-1]}={v}" for k, v in p.items())


def _chosen_text(chosen, method, eps):
    sub = chosen[(chosen["method"] == method) & (chosen["epsilon"] == eps)]
    counts = sub["params"].map(_params_text).value_counts()
    if len(counts) == 1:
        return counts.index[0]
    return "; ".join(f"{k} (x{v})" for k, v in counts.items())


def _label(row):
    """The method's name, marked when it uses the sensitive features at predict time."""
    flag = row.get("sensitive_at_predict", False)
    marked = isinstance(flag, bool | np.bool_) and bool(flag)
    return f"{row['method']} (A at predict)" if marked else row["method"]


def _ranked(summary, eps):
    """Methods at ``eps``: feasible on validation in every seed first, by accuracy."""
    s = summary[summary["epsilon"] == eps].copy()
    s["_ok"] = s["none_feasible"] == 0
    return s.sort_values(["_ok", "accuracy_mean"], ascending=[False, False], kind="stable")


def best_per_epsilon(summary, ours="skfairbilevel"):
    """One sentence per epsilon: the best method, its margin, where ``ours`` stand."""
    lines = []
    for eps in sorted(summary["epsilon"].unique()):
        r = _ranked(summary, eps)
        ok = r[r["_ok"]]
        if ok.empty:
            lines.append(f"epsilon {eps:g}: no method met the bound on validation in every seed.")
            continue
        top = ok.iloc[0]
        text = (
            f"epsilon {eps:g}: best is **{_label(top)}** (test accuracy "
            f"{_interval(top['accuracy_mean'], top['accuracy_low'], top['accuracy_high'])}"
            f", unfairness {_num(top['fairness_mean'])}, bound broken on test in "
            f"{top['violation_rate']:.0%} of seeds)"
        )
        if len(ok) > 1:
            second = ok.iloc[1]
            text += (
                f", ahead of {_label(second)} by "
                f"{top['accuracy_mean'] - second['accuracy_mean']:.3f}"
            )
        mine = ok[ok["family"] == ours]
        if len(mine) and top["family"] != ours:
            m = mine.iloc[0]
            text += (
                f"; our best is {m['method']}, {top['accuracy_mean'] - m['accuracy_mean']:.3f}"
                f" behind (rank {list(ok['method']).index(m['method']) + 1} of {len(ok)})"
            )
        elif not len(mine) and (r["family"] == ours).any():
            text += "; none of our methods met the bound on validation in every seed"
        missed = r[~r["_ok"]]
        if len(missed):
            text += f". Not feasible on validation in every seed: {', '.join(missed['method'])}"
        lines.append(text + ".")
    return lines


# --------------------------------------------------------------------------- tables


def _summary_table(summary, chosen, eps, metric):
    r = _ranked(summary, eps)
    rows = []
    for i, (_, s) in enumerate(r.iterrows(), start=1):
        rows.append(
            {
                "rank": str(i) if s["_ok"] else "-",
                "method": _label(s),
                "family": s["family"],
                "chosen knob value": _chosen_text(chosen, s["method"], eps),
                "test accuracy [95% CI]": _interval(
                    s["accuracy_mean"], s["accuracy_low"], s["accuracy_high"]
                ),
                f"test {_NAMES[metric]} [95% CI]": _interval(
                    s["fairness_mean"], s["fairness_low"], s["fairness_high"]
                ),
                "balanced acc.": _num(s["balanced_accuracy_mean"]),
                "test > epsilon": f"{s['violation_rate']:.0%}",
                "no feasible point": f"{s['none_feasible']}/{s['n_seeds']}",
            }
        )
    return pd.DataFrame(rows)


def _front_table(fronts, metric):
    rows = []
    for _, f in fronts.iterrows():
        rows.append(
            {
                "method": f["method"],
                "knob value": _params_text(f["params"]),
                "seeds": str(f["n_seeds"]),
                "test accuracy": _interval(
                    f["accuracy_mean"], f["accuracy_low"], f["accuracy_high"]
                ),
                f"test {_NAMES[metric]}": _interval(
                    f["fairness_mean"], f["fairness_low"], f["fairness_high"]
                ),
            }
        )
    return pd.DataFrame(rows)


def _methods_table(info):
    return pd.DataFrame(
        [
            {
                "method": m["name"],
                "family": m["family"],
                "knob": m["knob"],
                "grid": ", ".join(_params_text(g) for g in m["grid"]),
                "sensitive features": m["sensitive"],
                "estimator": m["estimator"],
            }
            for m in info["methods"]
        ]
    )


def format_table(summary, chosen=None, metric="demographic_parity", epsilon=None):
    """The terminal table of one epsilon (the smallest by default), ranked."""
    if summary.empty:
        return "(no results)"
    eps = min(summary["epsilon"]) if epsilon is None else epsilon
    chosen = chosen if chosen is not None else pd.DataFrame(columns=["method", "epsilon", "params"])
    frame = _summary_table(summary, chosen, eps, metric).drop(columns=["family"])
    cells = [list(frame.columns)] + frame.astype(str).values.tolist()
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = []
    for k, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------- plot


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f"the Pareto plot needs matplotlib: {_PLOT_EXTRA}") from None


def _frame_means(ax, fronts):
    """Axis limits around the mean points (few seeds give intervals far beyond them)."""
    x = fronts["fairness_mean"].to_numpy(float)
    y = fronts["accuracy_mean"].to_numpy(float)
    if not np.isfinite(x).any() or not np.isfinite(y).any():
        return
    y_lo, y_hi = np.nanmin(y), np.nanmax(y)
    pad = max(0.01, 0.08 * (y_hi - y_lo))
    ax.set_xlim(0.0, max(np.nanmax(x) * 1.08, 0.01))
    ax.set_ylim(y_lo - pad, y_hi + pad)


def draw_pareto(
    fronts, summary=None, metric="demographic_parity", ax=None, title="", legend=True, methods=None
):
    """Draw each method's test front, mean over seeds with intervals; mark chosen points.

    Parameters
    ----------
    fronts : pandas.DataFrame
        ``ComparisonResult.fronts``: one row per method and knob value.
    summary : pandas.DataFrame, default=None
        ``ComparisonResult.summary``: its points (mean test unfairness and accuracy of
        the chosen points) are marked, and its epsilons drawn as dotted lines.
    metric : str, default="demographic_parity"
    ax : matplotlib Axes, default=None
        None creates a figure.
    title : str, default=""
    legend : bool, default=True
    methods : list of str, default=None
        Only these methods.

    Returns
    -------
    ax : matplotlib Axes
    """
    _require_matplotlib()
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8.0, 5.5))
    f = fronts if methods is None else fronts[fronts["method"].isin(methods)]
    names = list(dict.fromkeys(f["method"]))
    cmap = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    markers = "osD^v<>pPXh*"
    for i, name in enumerate(names):
        g = f[f["method"] == name].sort_values("point")
        color, marker = cmap(i % cmap.N), markers[i % len(markers)]
        x, y = g["fairness_mean"].to_numpy(float), g["accuracy_mean"].to_numpy(float)
        xerr = np.abs(
            np.vstack(
                [x - g["fairness_low"].to_numpy(float), g["fairness_high"].to_numpy(float) - x]
            )
        )
        yerr = np.abs(
            np.vstack(
                [y - g["accuracy_low"].to_numpy(float), g["accuracy_high"].to_numpy(float) - y]
            )
        )
        xerr, yerr = np.nan_to_num(xerr), np.nan_to_num(yerr)
        ax.errorbar(
            x,
            y,
            xerr=xerr,
            yerr=yerr,
            color=color,
            marker=marker,
            ms=4,
            lw=1,
            elinewidth=0.6,
            capsize=0,
            alpha=0.85,
            label=name,
        )
        if summary is not None:
            s = summary[summary["method"] == name]
            ax.scatter(
                s["fairness_mean"],
                s["accuracy_mean"],
                s=80,
                marker=marker,
                facecolor=color,
                edgecolor="k",
                linewidth=1.2,
                zorder=4,
            )
    if summary is not None and len(summary):
        for eps in sorted(summary["epsilon"].unique()):
            ax.axvline(eps, color="0.5", ls=":", lw=0.8)
        ax.scatter(
            [],
            [],
            s=80,
            marker="o",
            facecolor="0.8",
            edgecolor="k",
            label="chosen on validation (large)",
        )
    _frame_means(ax, f)
    ax.set_xlabel(f"test {_NAMES[metric]} (lower is fairer)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return ax


def _draw_own_metric(ax, runs, method, score, column):
    """One method's test front on the metrics its knob targets (``Method.plot_on``):
    mean over seeds with intervals, each point labelled with its knob value."""
    from ._protocol import front_table

    f = front_table(runs[runs["method"] == method], score=score, column=column)
    f = f.sort_values("point")
    x, y = f["fairness_mean"].to_numpy(float), f["accuracy_mean"].to_numpy(float)
    xerr = np.nan_to_num(np.abs(np.vstack([x - f["fairness_low"], f["fairness_high"] - x])))
    yerr = np.nan_to_num(np.abs(np.vstack([y - f["accuracy_low"], f["accuracy_high"] - y])))
    ax.errorbar(x, y, xerr=xerr, yerr=yerr, marker="o", ms=4, lw=1, elinewidth=0.6)
    for xi, yi, params in zip(x, y, f["params"], strict=True):
        value = ", ".join(f"{v}" for v in json.loads(params).values()) or "-"
        ax.annotate(value, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"test {column}")
    ax.set_ylabel(f"test {score}")
    ax.set_title(f"{method} on the metrics its knob targets", fontsize=10)
    ax.grid(alpha=0.3)
    return ax


def plot_pareto(result, path=None, title=None):
    """The report's figure: our methods and the baselines in two panels, as PNG bytes.

    Methods declared with ``plot_on`` get a second row: each one's front on those
    metrics, every point labelled with its knob value.

    Parameters
    ----------
    result : ComparisonResult
    path : str or path, default=None
        Also save the PNG there.
    title : str, default=None

    Returns
    -------
    png : bytes
    """
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metric = result.info["metric"]
    fronts = result.fronts
    family = fronts.groupby("method", sort=False)["family"].first()
    refs = [m for m, f in family.items() if f == "scikit-learn"]
    ours = [m for m, f in family.items() if f == "skfairbilevel"]
    others = [m for m in family.index if m not in ours and m not in refs]
    panels = [
        (p + refs, t)
        for p, t in (
            (ours, "skfairbilevel (and the unconstrained models)"),
            (others, "baselines (and the unconstrained models)"),
        )
        if p
    ] or [(refs, "unconstrained models")]
    own = [
        (m["name"], score, column)
        for m in result.info.get("methods", [])
        for score, column in m.get("plot_on", [])
        if m["name"] in set(fronts["method"]) and {score, column} <= set(result.runs.columns)
    ]
    n_cols = max(len(panels), len(own))
    fig = Figure(figsize=(7.5 * n_cols, 5.5 * (2 if own else 1)))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2 if own else 1, n_cols)
    axes = [fig.add_subplot(grid[0, k]) for k in range(len(panels))]
    for ax, (names, label) in zip(axes, panels, strict=True):
        draw_pareto(fronts, result.summary, metric, ax=ax, title=label, methods=names)
    for ax in axes:
        _frame_means(ax, fronts)
        ax.set_ylim(*axes[0].get_ylim())
    for k, (name, score, column) in enumerate(own):
        _draw_own_metric(fig.add_subplot(grid[1, k]), result.runs, name, score, column)
    if title is None:
        i = result.info
        eps = ", ".join(f"{e:g}" for e in i["epsilons"])
        title = (
            f"{i['dataset']} ({', '.join(i['sensitive'])}): test fronts, mean over "
            f"{len(i['seeds'])} seed(s) with 95% intervals; large markers: the "
            f"points chosen on validation for epsilon = {eps}"
        )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    png = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(png)
    return png


# --------------------------------------------------------------------------- report


def report_blocks(result, png_note=None):
    """The report as blocks ``(kind, content)``: heading, text, list, table, image."""
    i, metric = result.info, result.info["metric"]
    name = _NAMES[metric]
    groups = ", ".join(f"{k} ({v})" for k, v in i["groups"].items())
    sizes = ", ".join(f"{k} {v}" for k, v in i["split_sizes"].items())
    setup = [
        f"Data: {i['description']} ({i['n_rows']} rows); sensitive: "
        f"{', '.join(i['sensitive'])}; groups: {groups}.",
        f"Split per seed: {i['split']}"
        + (
            f", then {i['cv']}-fold cross-validation of the training and validation rows"
            if i["cv"]
            else ""
        )
        + f" (stratified by label and group); rows: {sizes}"
        + ("; --quick subsample" if i["quick"] else "")
        + ".",
        f"Seeds: {', '.join(map(str, i['seeds']))}. Bounds on the {name}: epsilon = "
        f"{', '.join(f'{e:g}' for e in i['epsilons'])}.",
        f"Fits: {i['fits_planned']} planned, {i['fits_cached']} from the cache, "
        f"{i['fits_run']} run, {i['fits_failed']} failed; {i['seconds']:.0f} s in all "
        f"({i['n_jobs']} jobs x {i['n_threads']} thread(s), {i['cores']} cores, load "
        f"average {i['load_start']} at the start)"
        + ("; INTERRUPTED, the tables cover the finished fits" if i["interrupted"] else "")
        + ".",
        f"Command: `{i['command'] or 'run_comparison(...)'}`; {i['date']}; "
        + ", ".join(f"{k} {v}" for k, v in i["versions"].items())
        + ".",
    ]
    protocol = (
        "Every method is fitted on the training rows of each seed for every value of its "
        "knob, and scored on the validation and test rows. For each epsilon, a method's "
        "operating point in a seed is chosen on validation only: the best validation "
        f"accuracy among the knob values whose validation {name} is at most epsilon; if "
        "there is none, the least unfair one (counted under 'no feasible point'). The "
        "tables give the chosen points' test figures: mean over seeds and a 95% Student-t "
        "interval (none with one seed), and how often the chosen point breaks epsilon on "
        "the test rows. Methods are ranked by test accuracy among those with a feasible "
        "point in every seed; a '-' rank marks the others."
    )
    blocks = [
        ("h1", f"skfairbilevel compare: {i['dataset']}"),
        ("list", setup),
        ("h2", "Best method per bound"),
        ("list", best_per_epsilon(result.summary)),
        ("p", protocol),
    ]
    for eps in i["epsilons"]:
        if (result.summary["epsilon"] == eps).any():
            blocks += [
                ("h2", f"epsilon = {eps:g}"),
                ("table", _summary_table(result.summary, result.chosen, eps, metric)),
            ]
    blocks.append(("h2", "Trade-off fronts"))
    blocks.append(("image", png_note) if png_note else ("image", "pareto.png"))
    blocks += [
        ("h2", "Test fronts (every knob value, mean over seeds)"),
        ("table", _front_table(result.fronts, metric)),
        ("h2", "Methods"),
        ("table", _methods_table(i)),
    ]
    if result.notes:
        blocks += [("h2", "Notes"), ("list", list(result.notes))]
    return blocks


def _md_table(frame):
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.astype(str).values.tolist():
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def to_markdown(blocks, image_ok):
    out = []
    for kind, content in blocks:
        if kind == "h1":
            out.append(f"# {content}")
        elif kind == "h2":
            out.append(f"## {content}")
        elif kind == "p":
            out.append(content)
        elif kind == "list":
            out.append("\n".join(f"- {x}" for x in content))
        elif kind == "table":
            out.append(_md_table(content) if len(content) else "(none)")
        elif kind == "image":
            out.append(f"![trade-off fronts]({content})" if image_ok else content)
    return "\n\n".join(out) + "\n"


def _inline_md(text):
    """HTML of a line with the report's inline Markdown (**bold**, `code`)."""
    parts = html.escape(text).split("`")
    for k in range(1, len(parts), 2):
        parts[k] = f"<code>{parts[k]}</code>"
    text = "".join(parts)
    bits = text.split("**")
    for k in range(1, len(bits), 2):
        bits[k] = f"<b>{bits[k]}</b>"
    return "".join(bits)


_CSS = (
    "body{font-family:sans-serif;max-width:80em;margin:2em auto;padding:0 1em;"
    "line-height:1.4}table{border-collapse:collapse;font-size:0.85em;margin:1em 0}"
    "th,td{border:1px solid #ccc;padding:0.2em 0.5em;text-align:left}"
    "th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3}"
)


def to_html(blocks, png):
    out = [
        "<!DOCTYPE html>",
        "<html><head><meta charset='utf-8'>",
        f"<title>{html.escape(str(blocks[0][1]))}</title><style>{_CSS}</style>",
        "</head><body>",
    ]
    for kind, content in blocks:
        if kind in ("h1", "h2"):
            out.append(f"<{kind}>{html.escape(content)}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{_inline_md(content)}</p>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{_inline_md(x)}</li>" for x in content) + "</ul>")
        elif kind == "table":
            out.append(
                content.to_html(index=False, escape=True, border=0)
                if len(content)
                else "<p>(none)</p>"
            )
        elif kind == "image":
            if png is None:
                out.append(f"<p>{html.escape(content)}</p>")
            else:
                data = base64.b64encode(png).decode()
                out.append(f"<img alt='trade-off fronts' src='data:image/png;base64,{data}'>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return None if not math.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_outputs(result, out):
    """Write every output into directory ``out``; returns ``{kind: path}``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "runs": out / "runs.csv",
        "summary": out / "summary.csv",
        "info": out / "info.json",
        "report_md": out / "report.md",
        "report_html": out / "report.html",
    }
    result.runs.to_csv(files["runs"], index=False)
    result.summary.to_csv(files["summary"], index=False)
    files["info"].write_text(
        json.dumps(
            _json_safe({"info": result.info, "notes": result.notes, "failed": result.failed}),
            indent=2,
            default=str,
        )
        + "\n"
    )
    png, note = None, None
    if result.fronts.empty:
        note = "(no finished fits to plot)"
    else:
        try:
            png = plot_pareto(result, out / "pareto.png")
            files["png"] = out / "pareto.png"
        except ImportError:
            note = f"pareto.png not drawn: matplotlib is not installed ({_PLOT_EXTRA})."
            result.notes.append(note)
    blocks = report_blocks(result, png_note=note)
    files["report_md"].write_text(to_markdown(blocks, png is not None))
    files["report_html"].write_text(to_html(blocks, png))
    return {k: str(v) for k, v in files.items()}
