"""Large data on a GPU, and the CPU cost of ``fit``'s preparation.

Parts (``--part``; by default every part the machine can run):

* ``prepare`` (CPU): ``fit``'s preparation of 1,000,000 x 100 float32 rows, i.e.
  everything before the first forward pass of the first optimiser step (validation,
  target encoding, canonical rows, the network, X on the device, the first batch), for
  ``FairMLPClassifier((64, 64), batch_size=4096)``. Compared, in the same process and
  alternating runs, with the preparation before the large-data work, reproduced in this
  file (``old_preparation``: a hash per column, the rows gathered in canonical order on
  the host, then converted). Target: at most 0.3 s on 2 cores (about 2.3 s before).
* ``small`` (GPU): Adult, batch 256, 5 epochs: ``FairMLPClassifier(device="cuda").fit``
  against a hand-written GPU loop.
* ``large`` (GPU): 1,000,000 x 100 float32 rows, (64, 64), batch 4096, 2 epochs: the same
  comparison, also against the hand-written loop with fused Adam. Target: <= 1.15.
* ``fairbinn`` (GPU): FairBiNN bilevel / lagrangian epoch time at batch 100 and 1024 on
  Adult. Target: <= 1.10 at batch 100.
* ``rows`` (GPU): rows per second of every estimator at 1M and 4M rows, and the peak
  GPU memory of ``fit`` against the size of the float32 data. Target: <= 1.5x.
* ``agreement`` (GPU and CPU): predicted labels of the default fit of every estimator
  on Adult with the same ``random_state`` on the CPU and on the GPU. Target: >= 99.5 %.
* ``compile`` (GPU): whether ``torch.compile`` (and its CUDA graphs, mode
  "reduce-overhead") pays for FairMLP's training step, measured on a hand-written copy
  of the step (the package trains eagerly).

``--device cpu`` runs the GPU parts on the CPU with small sizes: a check that the
script works, not a measurement.

Usage::

    python benchmarks/bench_gpu.py --part prepare            # the CPU target
    python benchmarks/bench_gpu.py                           # everything (needs a GPU)
    python benchmarks/bench_gpu.py --part large --part rows --out benchmarks/results/gpu.json
    python benchmarks/bench_gpu.py --device cpu --quick      # dry run of the GPU parts

Every run writes a Markdown record (``--md``): the date, the load before and after, the
machine (CPU, GPU model, torch and CUDA versions), the command and each part's summary
lines and targets. By default ``benchmarks/results/gpu.md`` when a GPU part ran,
``benchmarks/results/gpu_prepare.md`` for the CPU part alone, and a ``_quick`` name with
``--quick``. On a GPU machine the whole benchmark is the one command
``python benchmarks/bench_gpu.py --out benchmarks/results/gpu.json`` (about 15-30
minutes: the agreement part fits every estimator at its defaults on Adult twice).
"""

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import subprocess
import time
import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn

from skfairbilevel import FairBiNNClassifier, FairMLPClassifier, all_estimators
from skfairbilevel.exceptions import FairnessWarning

PARTS = ("prepare", "small", "large", "fairbinn", "rows", "agreement", "compile")


# ----------------------------------------------------------------------------- helpers
def machine():
    info = {
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "cpu": _cpu_model(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()}"


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device="cpu"):
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def large_data(n, d=100, seed=0):
    """``n`` rows of ``d`` float32 features, a binary target and two groups."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    A = rng.integers(0, 2, n)
    X[:, 0] += 0.5 * A
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.standard_normal(n, dtype=np.float32) > 0.3).astype(np.int64)
    return X, y, A


def adult(split="train"):
    from skfairbilevel.datasets import load_adult, make_preprocessor

    train = load_adult(sensitive="sex", split="train")
    pre = make_preprocessor(train.data, sensitive="sex").fit(train.data)
    bunch = train if split == "train" else load_adult(sensitive="sex", split=split)
    X = pre.transform(bunch.data)
    X = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, dtype=np.float32)
    return X, bunch.target.to_numpy(), bunch.sensitive_features.to_numpy()


# ----------------------------------------------------------------------------- prepare
class _FirstForward(Exception):
    """Raised by the first forward pass: the preparation is over."""


def _stop(module, inputs):
    raise _FirstForward


class _Probe(FairMLPClassifier):
    """FairMLPClassifier whose first forward pass ends ``fit``."""

    def _fit_torch(self, train, val):
        self.module_.register_forward_pre_hook(_stop)
        return super()._fit_torch(train, val)


def new_preparation(X, y, A=None):
    est = _Probe((64, 64), batch_size=4096, max_epochs=2, random_state=0)
    try:
        est.fit(X, y, sensitive_features=A)
    except _FirstForward:
        return est
    raise RuntimeError("the probe did not stop at the first forward pass")


def _old_canonical_index(X, y, g, w):
    """The canonical rows as computed before this benchmark's work: a hash per column."""
    mix = np.uint64(0x100000001B3)
    idx = np.arange(X.shape[0]) if w is None else np.flatnonzero(w > 0)
    h = pd.util.hash_array(np.asarray(y)[idx]) * mix
    h ^= pd.util.hash_array(np.asarray(g)[idx])
    for j in range(X.shape[1]):
        column = np.ascontiguousarray(X[idx, j], dtype=np.float32)
        h = (h * mix) ^ pd.util.hash_array(column)
    order = np.argsort(h, kind="stable")
    hs = h[order]
    first = np.ones(len(idx), dtype=bool)
    first[1:] = hs[1:] != hs[:-1]
    starts = np.flatnonzero(first)
    weights = np.ones(len(idx)) if w is None else w[idx]
    merged = np.add.reduceat(weights[order], starts) if len(idx) else weights
    rows = idx[order[starts]]
    if w is None and np.all(merged == 1.0):
        return rows, None
    return rows, merged


def old_preparation(X, y, A=None):
    """The reference: the same steps as before the large-data work, in the same order
    (validation, targets, groups, canonical rows by a hash per column, the network, the
    rows gathered in canonical order and converted on the host, the first batch)."""
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import validate_data

    from skfairbilevel._groups import encode_groups
    from skfairbilevel.nn.engine import make_generators
    from skfairbilevel.nn.modules import make_mlp

    est = FairMLPClassifier((64, 64), batch_size=4096, max_epochs=2, random_state=0)
    X, y = validate_data(est, X, y, reset=True, dtype=[np.float64, np.float32])
    check_classification_targets(y)
    type_of_target(y, input_name="y")
    _, y_enc = np.unique(y, return_inverse=True)
    n = X.shape[0]
    g = np.zeros(n, dtype=np.int64) if A is None else encode_groups(A, n)[0]
    X = np.asarray(X)
    index, w = _old_canonical_index(X, y_enc.astype(np.int64), g, None)
    rng, gen = make_generators(0)
    init = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
    module = make_mlp(X.shape[1], (64, 64), 1, generator=init)
    Xt = torch.as_tensor(np.ascontiguousarray(X[index].astype(np.float32, copy=False)))
    yt = torch.as_tensor(y_enc[index], dtype=torch.long)
    gt = torch.as_tensor(g[index], dtype=torch.long)
    perm = torch.randperm(len(index), generator=gen)
    idx = perm[:4096]
    return module, Xt.index_select(0, idx), yt.index_select(0, idx), gt.index_select(0, idx)


def new_breakdown(X, y):
    """Seconds of each step of the new preparation (informative)."""
    from sklearn.utils.validation import validate_data

    from skfairbilevel._rows import canonical_index, model_features
    from skfairbilevel.base import Rows

    est = FairMLPClassifier((64, 64), batch_size=4096, random_state=0)
    out = {}
    t0 = time.perf_counter()
    Xv, yv = validate_data(est, X, y, reset=True, dtype=[np.float64, np.float32])
    out["validate_data"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    y_enc = est._encode_targets(yv)
    out["encode_targets"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    Xm = model_features(Xv)
    out["model_features"] = time.perf_counter() - t0
    g = np.zeros(len(y_enc), dtype=np.int64)
    t0 = time.perf_counter()
    index, w = canonical_index(Xm, y_enc, g, None)
    out["canonical_index"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = Rows(Xm, y_enc, g, index, w).tensors(
        n_groups=1, device=torch.device("cpu"), y_dtype=torch.long
    )
    out["tensors"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    data.batch(perm[:4096])
    out["first_permutation_and_batch"] = time.perf_counter() - t0
    return out


def part_prepare(args):
    n = 20_000 if args.quick else 1_000_000
    repeats = 2 if args.quick else args.repeats
    X, y, A = large_data(n)
    load_before = uptime()
    new_preparation(X, y)  # warm-up of both (allocator, imports)
    old_preparation(X, y)
    t_new, t_old, t_new_groups, t_old_groups = [], [], [], []
    for _ in range(repeats):
        t_old.append(timed(lambda: old_preparation(X, y))[0])
        t_new.append(timed(lambda: new_preparation(X, y))[0])
        t_old_groups.append(timed(lambda: old_preparation(X, y, A))[0])
        t_new_groups.append(timed(lambda: new_preparation(X, y, A))[0])
    breakdown = [new_breakdown(X, y) for _ in range(3)]
    med = statistics.median
    result = {
        "rows": n,
        "features": X.shape[1],
        "repeats": repeats,
        "uptime_before": load_before,
        "uptime_after": uptime(),
        "new_seconds": t_new,
        "old_seconds": t_old,
        "new_median_s": med(t_new),
        "old_median_s": med(t_old),
        "ratio_old_over_new": med(t_old) / med(t_new),
        "with_groups": {
            "new_seconds": t_new_groups,
            "old_seconds": t_old_groups,
            "ratio_old_over_new": med(t_old_groups) / med(t_new_groups),
        },
        "new_breakdown_median_s": {k: med([b[k] for b in breakdown]) for k in breakdown[0]},
        "target_s": 0.3,
    }
    print(
        f"prepare {n} x {X.shape[1]}: new median {med(t_new):.3f} s {_r(t_new)}, old median "
        f"{med(t_old):.3f} s {_r(t_old)}, old / new = {result['ratio_old_over_new']:.1f}x "
        f"(target 0.3 s on a quiet 2-core machine)"
    )
    print(
        f"  with two groups: new {_r(t_new_groups)}, old {_r(t_old_groups)}, old / new = "
        f"{result['with_groups']['ratio_old_over_new']:.1f}x"
    )
    print(f"  breakdown (median s): {_rd(result['new_breakdown_median_s'])}")
    print(f"  {load_before}\n  {result['uptime_after']}")
    return result


def _r(values):
    return [round(v, 3) for v in values]


def _rd(values):
    return {k: round(v, 4) for k, v in values.items()}


# ----------------------------------------------------------------------------- GPU loops
def hand_loop(X, y, *, device, hidden, epochs, batch_size, lr, fused=False, seed=0):
    """A hand-written training loop: X moved once, randperm batches indexed on the
    device, BCE, Adam, one host synchronisation per epoch."""
    gen = torch.Generator(device=device).manual_seed(seed)
    Xt = torch.as_tensor(X).to(device)
    yt = torch.as_tensor(np.asarray(y, dtype=np.float32)).to(device)
    layers, width = [], Xt.shape[1]
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    net = nn.Sequential(*layers, nn.Linear(width, 1)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr, fused=True if fused else None)
    loss_fn = nn.BCEWithLogitsLoss()
    n = len(yt)
    for _ in range(epochs):
        perm = torch.randperm(n, device=device, generator=gen)
        total = torch.zeros((), device=device)
        for idx in perm.split(batch_size):
            loss = loss_fn(net(Xt.index_select(0, idx))[:, 0], yt.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        float(total)
    return net


def _compare_loops(X, y, A, *, device, hidden, epochs, batch_size, repeats, label):
    cfg = dict(hidden=hidden, epochs=epochs, batch_size=batch_size, lr=1e-3)

    def ours():
        FairMLPClassifier(
            hidden, max_epochs=epochs, batch_size=batch_size, device=device, random_state=0
        ).fit(X, y, sensitive_features=A)

    runs = {
        "ours": ours,
        "hand": lambda: hand_loop(X, y, device=device, **cfg),
        "hand_fused_adam": lambda: hand_loop(X, y, device=device, fused=True, **cfg),
    }
    for fn in runs.values():  # warm-up
        fn()
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            times[k].append(timed(fn, device)[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {
        "rows": len(y),
        "features": X.shape[1],
        "epochs": epochs,
        "batch_size": batch_size,
        "seconds": times,
        "median_s": med,
        "ratio_ours_over_hand": med["ours"] / med["hand"],
        "ratio_ours_over_hand_fused": med["ours"] / med["hand_fused_adam"],
    }
    print(
        f"{label}: ours {med['ours']:.3f} s, hand {med['hand']:.3f} s, hand fused "
        f"{med['hand_fused_adam']:.3f} s; ours / hand = {out['ratio_ours_over_hand']:.2f}, "
        f"ours / hand fused = {out['ratio_ours_over_hand_fused']:.2f}"
    )
    return out


def part_small(args):
    X, y, A = adult()
    if args.quick:
        X, y, A = X[:3000], y[:3000], A[:3000]
    return _compare_loops(
        X, y, A, device=args.device, hidden=(64, 64), epochs=5, batch_size=256,
        repeats=args.repeats, label="small (Adult, batch 256, 5 epochs)",
    )  # fmt: skip


def part_large(args):
    n = 20_000 if args.quick else 1_000_000
    X, y, _ = large_data(n)
    out = _compare_loops(
        X, y, None, device=args.device, hidden=(64, 64), epochs=2, batch_size=4096,
        repeats=args.repeats, label=f"large ({n} x 100, batch 4096, 2 epochs)",
    )  # fmt: skip
    out["target_ratio"] = 1.15
    return out


def part_fairbinn(args):
    X, y, A = adult()
    if args.quick:
        X, y, A = X[:3000], y[:3000], A[:3000]
    out = {}
    for batch in (100, 1024):
        epoch_s = {}
        for mode in ("bilevel", "lagrangian"):
            est = FairBiNNClassifier(
                mode=mode, batch_size=batch, max_epochs=2 if args.quick else 6,
                update_order="leader_first", leader_includes_fairness_grad=False,
                eta=100.0, device=args.device, random_state=0,
            )  # fmt: skip
            est.fit(X, y, sensitive_features=A)
            epoch_s[mode] = statistics.median(r["seconds"] for r in est.history_[1:])
        ratio = epoch_s["bilevel"] / epoch_s["lagrangian"]
        out[f"batch_{batch}"] = {"epoch_s": epoch_s, "ratio_bilevel_over_lagrangian": ratio}
        print(f"FairBiNN batch {batch}: epoch {epoch_s}, bilevel / lagrangian = {ratio:.2f}")
    out["target_ratio_batch_100"] = 1.10
    return out


#: per-estimator settings of the throughput runs, and how many passes over the rows
#: (epochs) one fit makes
ROWS_PARAMS = {
    "FairMLPClassifier": (dict(hidden_layer_sizes=(64, 64), max_epochs=2, batch_size=4096), 2),
    "FairBiNNClassifier": (dict(hidden_layer_sizes=(64, 64), max_epochs=2, batch_size=4096), 2),
    "FairPruningClassifier": (
        dict(
            hidden_layer_sizes=(64, 64),
            pretrain_epochs=1,
            max_epochs=1,
            finetune_epochs=0,
            batch_size=4096,
        ),
        3,  # a bilevel epoch reads every row twice
    ),
    "FairRobustClassifier": (dict(max_epochs=2, batch_size=4096), 2),
    "BADRClassifier": (dict(max_iter=2), 1),
    "BADRRegressor": (dict(max_iter=2), 1),
    "FACIMSClassifier": (dict(hidden_layer_sizes=(64, 32), max_epochs=2), 1),
}


def part_rows(args):
    sizes = (20_000, 40_000) if args.quick else (1_000_000, 4_000_000)
    names = args.estimators or [name for name, _ in all_estimators()]
    classes = dict(all_estimators())
    out = {}
    for n in sizes:
        X, y, A = large_data(n)
        yr = X[:, 0] + X[:, 1] + 0.5 * A
        for name in names:
            params, passes = ROWS_PARAMS.get(name, ({}, 1))
            est = classes[name](device=args.device, random_state=0, **params)
            target = yr if "Regressor" in name else y
            if torch.device(args.device).type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()

            def fit(est=est, X=X, target=target, A=A):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FairnessWarning)
                    return est.fit(X, target, sensitive_features=A)

            seconds, _ = timed(fit, args.device)
            row = {
                "rows": n,
                "fit_s": seconds,
                "passes": passes,
                "rows_per_s": n * passes / seconds,
            }
            if torch.device(args.device).type == "cuda":
                peak = torch.cuda.max_memory_allocated() - base
                row["peak_gpu_bytes"] = peak
                row["peak_over_data"] = peak / X.nbytes
            out.setdefault(name, []).append(row)
            print(f"rows {name} n={n}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in row.items()))
            del est
    out["target_peak_over_data"] = 1.5
    return out


def _fmt(v):
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def part_agreement(args):
    X, y, A = adult()
    Xt, _, _ = adult("test")
    if args.quick:
        X, y, A, Xt = X[:2000], y[:2000], A[:2000], Xt[:2000]
    names = args.estimators or [name for name, _ in all_estimators()]
    classes = dict(all_estimators())
    out = {}
    for name in names:
        labels, seconds = {}, {}
        for device in ("cpu", args.device):
            kw = (
                {"max_epochs": 2}
                if args.quick and "max_epochs" in classes[name]().get_params()
                else {}
            )
            est = classes[name](device=device, random_state=0, **kw)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FairnessWarning)
                seconds[device], _ = timed(
                    lambda est=est: est.fit(X, y, sensitive_features=A), device
                )
            labels[device] = est.predict(Xt)
        agree = float(np.mean(labels["cpu"] == labels[args.device]))
        out[name] = {"agreement": agree, "fit_s": seconds}
        print(f"agreement {name}: {100 * agree:.2f} % of test labels (fit s {_rd(seconds)})")
    out["target_agreement"] = 0.995
    return out


def part_compile(args):
    """FairMLP's step by hand: eager, torch.compile, torch.compile with CUDA graphs."""
    device = torch.device(args.device)
    out = {}
    for label, (n, batch) in {"adult_like": (30_000, 256), "large": (200_000, 4096)}.items():
        X, y, _ = large_data(n, d=100)
        Xt, yt = torch.as_tensor(X).to(device), torch.as_tensor(y, dtype=torch.float32).to(device)
        times = {}
        for mode in ("eager", "default", "reduce-overhead"):
            net = nn.Sequential(
                nn.Linear(100, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1)
            ).to(device)
            opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=device.type == "cuda")

            def step(xb, yb, net=net, opt=opt):
                loss = nn.functional.binary_cross_entropy_with_logits(net(xb)[:, 0], yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                return loss.detach()

            fn = step if mode == "eager" else torch.compile(step, mode=mode)
            idx = torch.arange(batch, device=device)

            def epoch(fn=fn, Xt=Xt, yt=yt, idx=idx, n=n, batch=batch):
                total = torch.zeros((), device=device)
                for start in range(0, n - batch + 1, batch):  # fixed shapes
                    total += fn(Xt.index_select(0, idx + start), yt.index_select(0, idx + start))
                return float(total)

            try:
                epoch()  # compilation / capture
                times[mode] = statistics.median(timed(epoch, device)[0] for _ in range(3))
            except Exception as exc:  # a backend that is not available here
                times[mode] = f"failed: {type(exc).__name__}: {exc}"[:200]
        out[label] = {"rows": n, "batch_size": batch, "epoch_s": times}
        print(f"compile {label}: {times}")
    return out


# ----------------------------------------------------------------------------- main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append", choices=PARTS)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (a dry run)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--estimators", nargs="*", help="for the rows/agreement parts")
    parser.add_argument("--out", help="write the results to this JSON file")
    parser.add_argument("--md", help="write the Markdown record here (default: see Usage)")
    args = parser.parse_args(argv)
    parts = args.part or [p for p in PARTS if p == "prepare" or args.device is not None]
    if args.device is None and set(parts) - {"prepare"}:
        parser.error("the GPU parts need a GPU (or --device cpu for a dry run)")
    command = "python " + " ".join(os.sys.argv if argv is None else ["bench_gpu.py", *argv])
    results = {"machine": machine(), "command": command, "parts": {}}
    load_before, summaries = uptime(), {}
    for part in parts:
        lines = io.StringIO()
        with contextlib.redirect_stdout(_Tee(lines)):
            results["parts"][part] = globals()[f"part_{part}"](args)
        summaries[part] = lines.getvalue().strip()
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2, default=str)
        print(f"wrote {args.out}")
    md = args.md or os.path.join(RESULTS, _md_name(parts, args))
    with open(md, "w") as fh:
        fh.write(markdown(results, summaries, load_before, uptime()))
    print(f"wrote {md}")
    return results


RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def _md_name(parts, args):
    gpu = args.device is not None and torch.device(args.device).type == "cuda"
    name = "gpu" if gpu and set(parts) - {"prepare"} else "gpu_prepare"
    if args.device is not None and not gpu:
        name = "gpu_dry_run"  # the GPU parts on the CPU: not a measurement
    return name + ("_quick" if args.quick else "") + ".md"


class _Tee(io.TextIOBase):
    """Writes to the real stdout and keeps a copy."""

    def __init__(self, copy):
        self.copy, self.out = copy, os.sys.stdout

    def write(self, text):
        self.copy.write(text)
        return self.out.write(text)

    def flush(self):
        self.out.flush()


def markdown(results, summaries, load_before, load_after):
    """The record of a run: machine, load, command, and each part's summary and targets."""
    m = results["machine"]
    gpu = m.get("gpu", "none (CPU only)")
    lines = [
        "# Large data on a GPU, and the CPU cost of fit's preparation",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M:%S')}; command `{results['command']}`.",
        "",
        f"- GPU: {gpu}" + (f" (CUDA {m['cuda']})" if "cuda" in m else ""),
        f"- CPU: {m['cpu']}, {os.cpu_count()} cores, {m['cpu_threads']} torch threads",
        f"- torch {m['torch']}, {m['platform']}",
        f"- load before: `{load_before}`",
        f"- load after: `{load_after}`",
    ]
    for part, text in summaries.items():
        targets = {k: v for k, v in results["parts"][part].items() if k.startswith("target")}
        lines += ["", f"## {part}", "", "```", text, "```"]
        if targets:
            lines += ["", "Targets: " + ", ".join(f"{k} = {v}" for k, v in targets.items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
