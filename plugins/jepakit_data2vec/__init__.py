"""data2vec-style targets as jepakit plugins (Baevski et al. 2022, arXiv 2202.03555).

A second JEPA method made of plugins only, to show the engine is generic:

    target_updater: data2vec   EMA teacher whose output is the average of its
                               top-K block outputs, each normalised
    loss: data2vec             smooth L1 (or L2) to those targets, with a final
                               target normalisation

The engine's step is unchanged: the target network runs on the full image under
no_grad, the loss prepares and gathers its output, the context encoder and the
predictor regress it. See docs/data2vec.md for how this differs from I-JEPA and
from data2vec itself.
"""

from __future__ import annotations

import jepakit

from .losses import Data2VecLoss, Data2VecLossConfig
from .targets import TopKTargetsConfig, TopKTargetUpdater

__all__ = ["Data2VecLoss", "Data2VecLossConfig", "TopKTargetUpdater", "TopKTargetsConfig"]


@jepakit.hookimpl
def jepakit_target_updaters() -> list[jepakit.Component]:
    return [jepakit.Component("data2vec", TopKTargetUpdater, TopKTargetsConfig,
                              example={"top_k": 2, "start": 0.9, "end": 0.99})]


@jepakit.hookimpl
def jepakit_losses() -> list[jepakit.Component]:
    return [jepakit.Component("data2vec", Data2VecLoss, Data2VecLossConfig)]
