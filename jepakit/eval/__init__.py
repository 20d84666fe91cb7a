"""Frozen-feature evaluation: linear probe and k-NN on the target encoder's
average-pooled features, the attentive probe on its tokens, controls, and RankMe.
``jepakit eval linear|knn|attentive`` on the command line; :func:`prepare` +
:func:`run_linear` / :func:`run_knn` / :func:`run_attentive` from Python."""

from jepakit.eval.attentive import attentive_probe
from jepakit.eval.controls import control_sources
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
from jepakit.eval.protocols import prepare, run_attentive, run_knn, run_linear, summary_line
from jepakit.eval.rank import rankme

__all__ = [
    "FeatureSource", "attentive_probe", "control_sources", "encode", "extract", "fit_linear", "from_checkpoint", "from_recipe",
    "from_run", "knn_accuracy", "knn_predict", "linear_probe", "pixels", "prepare",
    "rankme", "run_attentive", "run_knn", "run_linear", "summary_line",
]
