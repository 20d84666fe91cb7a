"""An aim run beside metrics.jsonl (aim: https://aimstack.readthedocs.io).

Aim is a convenience, metrics.jsonl is the record: any failure of aim (import,
repository lock, disk) is logged once as a warning and tracking stops, the run
goes on. Opening the run happens in a daemon thread with a timeout, so a stuck
repository lock cannot hang training. Everything is local (no server, no
network): ``jepakit ui`` serves the repository afterwards.
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import threading
import warnings
from pathlib import Path
from typing import Any

from jepakit.tracking import log

OPEN_TIMEOUT_S = 60.0
SYSTEM_TRACKING_INTERVAL_S = 30
RUN_FILE = "aim.json"
"""In the run directory: where its aim run is ({"repo": ..., "hash": ...})."""


def plain(value: Any) -> Any:
    """Recipe data as the types aim stores (tuples -> lists, other objects -> str)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    for kind in (bool, int, float, str):  # exact types: aim refuses subclasses (TorchVersion)
        if isinstance(value, kind):
            return kind(value)
    return None if value is None else str(value)


def system_info(trainer: Any) -> dict[str, Any]:
    import torch

    from jepakit import __version__

    info: dict[str, Any] = {
        "hostname": socket.gethostname(), "platform": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__,
        "jepakit": __version__, "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "device": str(trainer.device),
        "world_size": trainer.env.world_size,
    }
    if trainer.device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(trainer.device)
    return info


def import_aim() -> Any:
    """``import aim`` without the SQLAlchemy 2.0 deprecation chatter of its models."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import aim
    return aim


def _call_with_timeout(fn: Any, timeout: float) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # reported to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name="jepakit-aim-open", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"aim did not open the repository within {timeout:.0f} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


class AimTracker:
    """One aim run; every method is a no-op once aim has failed."""

    def __init__(self, repo: Path, experiment: str, name: str, run_dir: Path | None = None,
                 resume_hash: str | None = None, system_tracking: bool = True,
                 timeout: float = OPEN_TIMEOUT_S) -> None:
        self.run: Any = None
        self.repo = repo
        self.run_dir = run_dir
        try:
            repo.mkdir(parents=True, exist_ok=True)
            self.run = _call_with_timeout(
                lambda: self._open(repo, experiment, resume_hash, system_tracking), timeout)
            if resume_hash is None:
                self.run.name = name
        except Exception as exc:
            self._fail("could not open an aim run", exc)
            return
        if run_dir is not None:
            try:
                (run_dir / RUN_FILE).write_text(json.dumps({"repo": str(repo),
                                                            "hash": self.hash}) + "\n")
            except OSError as exc:
                log.warning("could not write %s: %s", run_dir / RUN_FILE, exc)

    @staticmethod
    def _open(repo: Path, experiment: str, resume_hash: str | None, system: bool) -> Any:
        aim = import_aim()

        kwargs: dict[str, Any] = dict(
            repo=str(repo), system_tracking_interval=SYSTEM_TRACKING_INTERVAL_S if system else None,
            log_system_params=False,  # it would store every environment variable
            capture_terminal_logs=False)
        if resume_hash:
            try:
                return aim.Run(run_hash=resume_hash, **kwargs)
            except Exception as exc:  # gone or unreadable: start a new one
                log.warning("could not reopen aim run %s (%s); starting a new one",
                            resume_hash, exc)
        return aim.Run(experiment=experiment, **kwargs)

    @property
    def active(self) -> bool:
        return self.run is not None

    @property
    def hash(self) -> str | None:
        return None if self.run is None else str(self.run.hash)

    def _fail(self, what: str, exc: BaseException) -> None:
        log.warning("%s: %s: %s; aim tracking is off for this run (metrics.jsonl is "
                    "unaffected; set monitors.aim=false to silence this)", what,
                    type(exc).__name__, exc)
        run, self.run = self.run, None
        if run is not None:
            try:
                run.close()
            except Exception:  # already failing: nothing more to do
                pass

    def set(self, key: str, value: Any) -> None:
        if self.run is None:
            return
        try:
            self.run[key] = plain(value)
        except Exception as exc:
            self._fail(f"aim could not store '{key}'", exc)

    def track(self, metrics: dict[str, Any], step: int, context: dict[str, str] | None = None
              ) -> None:
        if self.run is None:
            return
        try:
            for name, value in metrics.items():
                if name == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                if math.isfinite(value):
                    self.run.track(value, name=name, step=step, context=context or {})
        except Exception as exc:
            self._fail("aim could not track metrics", exc)

    def image(self, picture: Any, name: str, step: int, caption: str = "") -> None:
        if self.run is None:
            return
        try:
            aim = import_aim()
            self.run.track(aim.Image(picture, caption=caption), name=name, step=step)
        except Exception as exc:
            self._fail("aim could not store an image", exc)

    def close(self) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        try:
            run.close()
        except Exception as exc:
            log.warning("closing the aim run failed: %s", exc)


def read_run(repo: str | Path, run_hash: str) -> dict[str, Any]:
    """Parameters and metric series of a finished run: ``{"params": {...}, "metrics":
    {name: [(step, value), ...]}}``. Indexes the run first (what ``aim up`` does in
    the background) so it is readable at once."""
    aim = import_aim()
    from aim.sdk.index_manager import RepoIndexManager

    r = aim.Repo(str(repo))
    RepoIndexManager.get_index_manager(r).index(run_hash)
    run = aim.Repo(str(repo)).get_run(run_hash)
    if run is None:
        raise KeyError(f"no aim run {run_hash} in {repo}")
    metrics: dict[str, list[tuple[int, float]]] = {}
    for m in run.metrics():
        steps, columns = m.data.items_list()  # columns: values, epochs, timestamps
        metrics[m.name] = sorted(zip((int(s) for s in steps), (float(v) for v in columns[0])))
    return {"params": {k: run[k] for k in ("hparams", "system") if _has(run, k)},
            "metrics": metrics, "name": run.name}


def _has(run: Any, key: str) -> bool:
    try:
        run[key]
        return True
    except Exception:
        return False
