"""Feeding images and masks to the engine."""

from jepakit.data.loader import Batch, MaskCollator, build_loader, infinite

__all__ = ["Batch", "MaskCollator", "build_loader", "infinite"]
