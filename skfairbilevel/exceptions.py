"""Warnings and errors raised by skfairbilevel, defined in one place."""

__all__ = [
    "FairnessWarning",
    "NoSensitiveFeaturesWarning",
    "TrainingInterruptedWarning",
    "NonFiniteLossError",
]


class FairnessWarning(UserWarning):
    """Base class of every warning skfairbilevel emits."""


class NoSensitiveFeaturesWarning(FairnessWarning):
    """``fit`` got no sensitive features; the estimator trains its fairness-unaware form."""


class TrainingInterruptedWarning(FairnessWarning):
    """Training was interrupted (KeyboardInterrupt); the model of the last full epoch is kept."""


class NonFiniteLossError(FloatingPointError, ValueError):
    """The training loss became NaN or infinite.

    Raised with the epoch and a suggestion (usually a smaller learning rate). It derives
    from ``ValueError`` so scikit-learn's error handling treats it as a failed fit.
    """
