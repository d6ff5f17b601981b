"""The training engine (regimes std | fat | at, schedules, mask enforcement, checkpoint and
resume, its standard callbacks) and SA/RA evaluation."""

from doublewin.train.callbacks import Callback, TrainState
from doublewin.train.engine import TrainResult, train
from doublewin.train.evaluation import evaluate

__all__ = [
    "Callback",
    "TrainResult",
    "TrainState",
    "evaluate",
    "train",
]
