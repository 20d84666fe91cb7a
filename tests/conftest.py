"""Shared fixtures. Tests use one thread: CI has 2 cores and some tests start processes."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("JEPAKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
torch.set_num_threads(1)


@pytest.fixture()
def registry():
    """A fresh registry of the shipped plugins only (third-party autoload off)."""
    from jepakit.registry import Registry

    return Registry()
