"""What a run leaves behind and shows: metrics.jsonl, a log file, a progress bar."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

log = logging.getLogger("jepakit")


class AboveProgress(logging.Handler):
    """Writes to stderr through ``tqdm.write``: a warning during training (a collapse
    warning, a skipped step) gets its own line above the progress bar, which is redrawn
    below it, instead of landing in the bar's line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)  # sys.stderr now, not at setup
        except Exception:  # logging must never break the run
            self.handleError(record)


def setup_logging(run_dir: Path | None, verbose: bool = False) -> None:
    """Log to ``run_dir/run.log`` (everything) and stderr (warnings, or info if verbose)."""
    log.setLevel(logging.INFO)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    console = AboveProgress()
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    log.addHandler(console)
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(run_dir / "run.log")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(file_handler)


class MetricsWriter:
    """One JSON object per logged step, flushed at once so a crash loses nothing."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file = open(path, "a", encoding="utf-8") if path is not None else None  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in record.items()}
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Progress:
    """A tqdm bar over steps showing loss, lr and images/s (off when not wanted). While
    it is open, Python warnings (``warnings.warn``, e.g. torch's) print above it too."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True) -> None:
        self.bar = tqdm(total=total, initial=initial, disable=not enabled, unit="step",
                        dynamic_ncols=True, file=sys.stderr)
        self._showwarning = warnings.showwarning
        if enabled:
            warnings.showwarning = self._show_warning

    def _show_warning(self, message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
        if file is not None and file is not sys.stderr:
            self._showwarning(message, category, filename, lineno, file, line)
            return
        text = warnings.formatwarning(message, category, filename, lineno, line)
        tqdm.write(text.rstrip("\n"), file=sys.stderr)

    def update_to(self, step: int, metrics: dict[str, float]) -> None:
        self.bar.set_postfix(
            loss=f"{metrics['loss']:.4f}", lr=f"{metrics['lr']:.2e}",
            img_s=f"{metrics['images_per_s']:.0f}", refresh=False,
        )
        self.bar.update(step - self.bar.n)

    def close(self) -> None:
        if warnings.showwarning == self._show_warning:
            warnings.showwarning = self._showwarning
        self.bar.close()


class Throughput:
    """Images per second over the window since the last call."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def rate(self, images: int) -> float:
        now = time.perf_counter()
        rate = images / max(now - self.last, 1e-9)
        self.last = now
        return rate

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start
