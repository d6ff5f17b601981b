"""Measurements of trained models, apart from training them: the robustness report with its
gradient-masking checks, the loss on a plane through the weights, sharpness, and the training
trajectory a landscape draws."""

from doublewin.measure.robustness import Check, RobustnessReport, robustness_report

__all__ = ["Check", "RobustnessReport", "robustness_report"]
