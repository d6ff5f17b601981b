"""The training engine (regimes std | fat | at, schedules, mask enforcement, checkpoint and
resume) and SA/RA evaluation with gradient-masking checks."""

from doublewin.train.callbacks import Callback, TrainState
from doublewin.train.engine import TrainResult, train
from doublewin.train.evaluation import evaluate
from doublewin.train.robustness import Check, RobustnessReport, robustness_report

__all__ = [
    "Callback",
    "Check",
    "RobustnessReport",
    "TrainResult",
    "TrainState",
    "evaluate",
    "robustness_report",
    "train",
]
