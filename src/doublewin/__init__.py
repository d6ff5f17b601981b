"""doublewin: find and certify double-win lottery tickets in pre-trained models."""

__version__ = "0.1.0"
