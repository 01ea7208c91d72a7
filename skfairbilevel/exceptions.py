"""Warnings and errors raised by skfairbilevel, defined in one place."""

__all__ = [
    "FairnessWarning",
    "NoSensitiveFeaturesWarning",
    "ContinuousSensitiveFeatureWarning",
    "TrainingInterruptedWarning",
    "NonFiniteLossError",
]


class FairnessWarning(UserWarning):
    """Base class of every warning skfairbilevel emits."""


class NoSensitiveFeaturesWarning(FairnessWarning):
    """``fit`` got no sensitive features; the estimator trains its fairness-unaware form."""


class ContinuousSensitiveFeatureWarning(FairnessWarning):
    """A numeric sensitive feature has so many distinct values that it looks continuous.

    Every distinct value of a sensitive feature is a group, so a continuous feature
    (age, income) makes many tiny groups whose rates are noise. Bin it first, for
    example with :func:`pandas.cut` or :class:`~sklearn.preprocessing.KBinsDiscretizer`.
    Raised when sensitive features are encoded to groups, in the estimators, the metrics
    and the scorers alike.
    """


class TrainingInterruptedWarning(FairnessWarning):
    """Training was interrupted (KeyboardInterrupt); the model of the last full epoch is kept."""


class NonFiniteLossError(FloatingPointError, ValueError):
    """The training loss became NaN or infinite.

    Raised with the epoch and a suggestion (usually a smaller learning rate). It derives
    from ``ValueError`` so scikit-learn's error handling treats it as a failed fit.
    """
