"""Engine overhead: FairMLPClassifier.fit vs a hand-written PyTorch loop.

Both train the same architecture (Linear-ReLU-Linear-ReLU-Linear, one logit), with Adam,
the same epochs and batch size, on the preprocessed Adult training split, in the same
process, alternating runs so that machine load affects both alike. The reported figure
is the ratio of median fit times (whole ``fit``: validation, group encoding, row
canonicalisation, tensor conversion, training). Target: <= 1.15.

Usage::

    python benchmarks/bench_engine.py            # 20 epochs, 5 repetitions each
    python benchmarks/bench_engine.py --quick    # 3 epochs, 3 repetitions

One torch thread unless ``--threads`` says otherwise.
"""

import statistics

import _common as shared
import numpy as np
import torch
from torch import nn

from skfairbilevel import FairMLPClassifier
from skfairbilevel.datasets import load_adult, make_preprocessor


def plain_loop(X, y, *, hidden, epochs, batch_size, lr, seed, index_select=False):
    """What a user would write by hand: tensors once, randperm batches, BCE, Adam.

    ``index_select=True`` gathers batches with ``Tensor.index_select`` (as the engine
    does) instead of fancy indexing ``X[idx]``, the faster of the two on CPU."""
    torch.manual_seed(seed)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y, dtype=np.float32))
    layers, width = [], Xt.shape[1]
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    net = nn.Sequential(*layers, nn.Linear(width, 1))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    n = len(yt)
    for _ in range(epochs):
        perm = torch.randperm(n)
        total = 0.0
        for idx in perm.split(batch_size):
            opt.zero_grad()
            if index_select:
                xb, yb = Xt.index_select(0, idx), yt.index_select(0, idx)
            else:
                xb, yb = Xt[idx], yt[idx]
            loss = loss_fn(net(xb)[:, 0], yb)
            loss.backward()
            opt.step()
            total += loss.detach()
        float(total)  # one sync per epoch, as the engine does
    return net


def main(argv=None):
    parser = shared.parser(__doc__, quick="3 epochs, 3 repetitions")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = shared.parse(parser, argv)
    epochs = args.epochs or (3 if args.quick else 20)
    repeats = args.repeats or (3 if args.quick else 5)

    bunch = load_adult(sensitive="sex", split="train")
    # sex stays an input column (102 features), the protocol of results/engine.md
    pre = make_preprocessor(bunch.data, sensitive="sex", keep_sensitive=True).fit(bunch.data)
    X = pre.transform(bunch.data).to_numpy(np.float32)
    y = bunch.target.to_numpy()
    A = bunch.sensitive_features.to_numpy()
    cfg = dict(hidden=(64, 64), epochs=epochs, batch_size=256, lr=1e-3)

    def ours():
        FairMLPClassifier(
            cfg["hidden"], max_epochs=epochs, batch_size=256, lr=1e-3, random_state=0
        ).fit(X, y, sensitive_features=A)

    def theirs():
        plain_loop(X, y, seed=0, **cfg)

    def theirs_fast():
        plain_loop(X, y, seed=0, index_select=True, **cfg)

    ours(), theirs(), theirs_fast()  # warm-up (allocator, kernels)
    t_ours, t_plain, t_fast = [], [], []
    for _ in range(repeats):
        for fn, store in ((ours, t_ours), (theirs, t_plain), (theirs_fast, t_fast)):
            with shared.Clock() as clock:
                fn()
            store.append(clock.wall)
    m_ours, m_plain = statistics.median(t_ours), statistics.median(t_plain)
    m_fast = statistics.median(t_fast)
    print(
        f"Adult train split: {X.shape[0]} rows x {X.shape[1]} features; "
        f"MLP {cfg['hidden']}, {epochs} epochs, batch 256, Adam; "
        f"torch threads {torch.get_num_threads()}; {repeats} repeats"
    )
    print(f"FairMLPClassifier.fit  median {m_ours:.3f} s  (runs {[round(t, 3) for t in t_ours]})")
    print(f"plain PyTorch loop     median {m_plain:.3f} s  (runs {[round(t, 3) for t in t_plain]})")
    print(f"plain loop, index_select median {m_fast:.3f} s  (runs {[round(t, 3) for t in t_fast]})")
    print(f"ratio ours / plain = {m_ours / m_plain:.3f}   (target <= 1.15)")
    print(f"ratio ours / plain with index_select = {m_ours / m_fast:.3f}")
    return m_ours / m_plain, m_ours / m_fast


if __name__ == "__main__":
    main()
