"""Feeding images to the engine, and masks keyed on the step."""

from jepakit.data.loader import Batch, Epochs, MaskStream, build_loader, collate, infinite

__all__ = ["Batch", "Epochs", "MaskStream", "build_loader", "collate", "infinite"]
