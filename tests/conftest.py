"""Shared fixtures. Tests use one thread: CI has 2 cores and some tests start processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("JEPAKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]

# tests/jepakit/ mirrors the package, and pytest puts tests/ on sys.path: without the
# repository root there too (plain `pytest`, or a run from another directory), the
# editable install's finder comes too late and `import jepakit` finds tests/jepakit as
# an empty namespace package. With the root on sys.path the real package wins.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture()
def registry():
    """A fresh registry of the shipped plugins only (third-party autoload off)."""
    from jepakit.registry import Registry

    return Registry()


@pytest.fixture()
def repo_root() -> Path:
    """The repository root (recipes/ lives there), independent of the working directory."""
    return REPO_ROOT


@pytest.fixture()
def tiny_recipe() -> Path:
    return REPO_ROOT / "recipes" / "ijepa_tiny.yaml"



@pytest.fixture(autouse=True)
def _kill_leftover_processes():
    """Kill any command a test started in its own session (``start_new_session=True``)
    and left running, with its process group (torchrun's workers), so a failed or hung
    test leaves nothing behind. Loader workers share pytest's group and are left alone."""
    yield
    import signal

    import psutil

    for child in psutil.Process().children():
        try:
            if os.getpgid(child.pid) == child.pid:
                os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            pass
