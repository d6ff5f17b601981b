"""doublewin: find and certify double-win lottery tickets in pre-trained models.

The Python API (docs/python.md) is re-exported here and loaded on first use, so that
``import doublewin`` (and the command line, which arms its signal handling first) does not
load torch until something needs it: ``doublewin.find_tickets``, ``doublewin.transfer``,
``doublewin.evaluate``, ``doublewin.judge``.
"""

__version__ = "0.1.0"

API = ("find_tickets", "transfer", "evaluate", "judge", "TransferResult", "JudgeResult")


def __getattr__(name: str):
    if name in API:
        # deferred: the API imports torch; loaded on first use of one of its names
        from doublewin import api

        return getattr(api, name)
    raise AttributeError(f"module 'doublewin' has no attribute {name!r}")
