"""Small settings per estimator so the common tests run fast on 2 CPU cores.

Each estimator module's engineer owns its line; an estimator missing here is tested with
its defaults.
"""

FAST_PARAMS = {
    "FairMLPClassifier": dict(hidden_layer_sizes=(16,), max_epochs=30, lr=1e-2, random_state=0),
    "FairBiNNClassifier": dict(hidden_layer_sizes=(16,), max_epochs=30, lr=1e-2, random_state=0),
    "BADRClassifier": dict(random_state=0),
    "BADRRegressor": dict(random_state=0),
    "FACIMSClassifier": dict(
        hidden_layer_sizes=(16,),
        max_epochs=6,
        n_mc=2,
        inner_steps=2,
        outer_steps=1,
        neumann_terms=2,
        lr_prior=0.1,
        prior_lr_decay=1.0,
        random_state=0,
    ),
    "FairPruningClassifier": dict(
        hidden_layer_sizes=(16,),
        pretrain_epochs=20,
        max_epochs=5,
        finetune_epochs=5,
        lr=1e-2,
        random_state=0,
    ),
    "FairRobustClassifier": dict(batch_size=16, max_epochs=20, lr=5e-2, random_state=0),
}


def fast_instance(name, cls, **extra):
    params = dict(FAST_PARAMS.get(name, {}))
    params.update(extra)
    return cls(**params)
