"""A stop signal that lands while a module is being imported waits for the import to finish,
then stops the process the usual way (KeyboardInterrupt / Terminated)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    sys.path.insert(0, sys.argv[1])
    from doublewin.core.processes import Terminated, raise_on_sigterm
    raise_on_sigterm()
    try:
        import slow_module  # sends the signal to itself halfway through its body
        time.sleep(5)
        print("no stop")
    except KeyboardInterrupt as stop:
        whole = getattr(sys.modules.get("slow_module"), "finished", False)
        print(type(stop).__name__, "module whole" if whole else "module broken")
    """
)
MODULE = textwrap.dedent(
    """
    import os, signal, time
    os.kill(os.getpid(), signal.{name})
    time.sleep(0.3)  # the signal is pending here, mid-import
    finished = True
    """
)


@pytest.mark.parametrize(
    ("name", "raised"), [("SIGTERM", "Terminated"), ("SIGINT", "KeyboardInterrupt")]
)
def test_a_signal_during_an_import_stops_after_the_import(tmp_path, name: str, raised: str):
    (tmp_path / "slow_module.py").write_text(MODULE.format(name=name))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == f"{raised} module whole", out.stderr[-2000:]
