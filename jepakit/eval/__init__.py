"""Frozen-feature evaluation: linear probe and k-NN on the target encoder's
average-pooled features, and RankMe. ``jepakit eval linear|knn`` on the command
line; :func:`prepare` + :func:`run_linear` / :func:`run_knn` from Python."""

from jepakit.eval.features import (
    FeatureSource,
    encode,
    extract,
    from_checkpoint,
    from_recipe,
    from_run,
    pixels,
)
from jepakit.eval.knn import knn_accuracy, knn_predict
from jepakit.eval.probe import fit_linear, linear_probe
from jepakit.eval.protocols import prepare, run_knn, run_linear, summary_line
from jepakit.eval.rank import rankme

__all__ = [
    "FeatureSource", "encode", "extract", "fit_linear", "from_checkpoint", "from_recipe",
    "from_run", "knn_accuracy", "knn_predict", "linear_probe", "pixels", "prepare",
    "rankme", "run_knn", "run_linear", "summary_line",
]
