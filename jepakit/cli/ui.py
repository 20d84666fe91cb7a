"""``jepakit ui [--repo runs] [--port 43800] [--host 127.0.0.1]``: the aim UI over a run folder.

``aim up`` starts a web server that itself starts worker processes, so it runs
in its own process group and is stopped as a group (SIGTERM, then SIGKILL after
a grace period) on Ctrl+C, SIGTERM, or when it exits: nothing is left listening.
Bound to 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jepakit.errors import JepakitError

GRACE_S = 10.0


def register(sub: Any) -> None:
    ui = sub.add_parser("ui", help="serve the aim UI for the runs in a folder (aim up)")
    ui.add_argument("--repo", default="runs",
                    help="folder holding the aim repository (.aim); default runs/, where "
                         "`jepakit run` puts it (monitors.aim_repo)")
    ui.add_argument("--run", help="a run directory: use the aim repository it wrote to")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=43800)
    ui.set_defaults(func=ui_command)


def aim_repo(repo: str, run: str | None = None) -> Path:
    """The folder that holds ``.aim``: ``repo``, or the one a run directory recorded."""
    if run:
        import json

        record = Path(run) / "aim.json"
        if not record.is_file():
            raise JepakitError(f"{run} has no aim.json: it was trained with monitors.aim=false "
                               "or before aim tracking existed")
        try:
            repo = str(json.loads(record.read_text())["repo"])
        except (ValueError, KeyError, TypeError) as exc:  # aim.json is data: any shape
            raise JepakitError(f"{record} is unreadable: {type(exc).__name__}: {exc}") from None
    path = Path(repo)
    if not (path / ".aim").is_dir():
        raise JepakitError(f"no aim repository in {path} (no {path / '.aim'}): train a run with "
                           "monitors.aim=true first, or pass --repo")
    return path


def aim_command(repo: Path, host: str, port: int) -> list[str]:
    exe = Path(sys.executable).parent / "aim"
    aim = str(exe) if exe.is_file() else shutil.which("aim")
    if aim is None:
        raise JepakitError("the aim command is not installed (pip install aim)")
    # absolute: a recorded repo named "-x" must stay a path, not become an option of aim
    return [aim, "up", "--host", host, "--port", str(port), "--repo", str(repo.absolute())]


def serve(argv: Sequence[str], grace_s: float = GRACE_S) -> int:
    """Run ``argv`` in a new process group until it exits or we are interrupted or
    terminated; then stop the whole group. Returns the child's exit status (130 on Ctrl+C)."""
    proc = subprocess.Popen(list(argv), start_new_session=True)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_term) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl+C, SIGTERM or a closed terminal
        stop_group(proc, grace_s)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_group(proc, grace_s)


def stop_group(proc: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """SIGTERM the child's process group, SIGKILL what is left after ``grace_s``; also
    when the leader has already exited but left workers behind."""
    pgid = proc.pid  # start_new_session: the child leads its own group
    if _group_alive(pgid, proc):
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _group_alive(pgid, proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_alive(pgid, proc):
            _signal_group(pgid, signal.SIGKILL)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:  # unkillable (D state): nothing more we can do
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int, proc: subprocess.Popen) -> bool:
    proc.poll()  # reap the leader: a zombie would still count as a member
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def ui_command(args: argparse.Namespace) -> int:
    repo = aim_repo(args.repo, args.run)
    if not 0 < args.port < 65536:
        raise JepakitError(f"--port must be in 1..65535, got {args.port}")
    argv = aim_command(repo, args.host, args.port)
    print(f"jepakit: aim UI for {repo.resolve() / '.aim'} on http://{args.host}:{args.port} "
          "(Ctrl+C stops it)", file=sys.stderr)
    code = serve(argv)
    return 0 if code in (0, 130, -signal.SIGTERM) else code
