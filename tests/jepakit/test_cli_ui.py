"""``jepakit ui``: the aim server's whole process group is stopped, whatever happens."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jepakit.cli import main
from jepakit.cli.ui import aim_command, aim_repo, serve, stop_group

SPAWNER = """
import subprocess, sys, time, signal
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open(sys.argv[2], "w").write(str(child.pid))
if sys.argv[1] == "exit":
    sys.exit(3)
time.sleep(60)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def spawn(mode: str, tmp_path: Path) -> tuple[subprocess.Popen, int]:
    pid_file = tmp_path / f"{mode}.pid"
    proc = subprocess.Popen([sys.executable, "-c", SPAWNER, mode, str(pid_file)],
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline, "spawner did not start"
        time.sleep(0.02)
    return proc, int(pid_file.read_text())


@pytest.mark.parametrize("mode", ["polite", "stubborn"])
def test_stop_group_ends_the_server_and_its_workers(tmp_path, mode):
    proc, grandchild = spawn(mode, tmp_path)
    stop_group(proc, grace_s=1.0)
    assert proc.poll() is not None
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)


def test_serve_returns_the_exit_code_and_cleans_up(tmp_path):
    pid_file = tmp_path / "exit.pid"
    code = serve([sys.executable, "-c", SPAWNER, "exit", str(pid_file)], grace_s=1.0)
    assert code == 3
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)


def test_ui_needs_an_aim_repository(tmp_path, capsys):
    assert main(["ui", "--repo", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jepakit: error: no aim repository") and len(err.splitlines()) == 1
    (tmp_path / "run").mkdir()
    assert main(["ui", "--run", str(tmp_path / "run")]) == 2
    assert "no aim.json" in capsys.readouterr().err


def test_aim_command_binds_localhost_by_default(tmp_path):
    (tmp_path / ".aim").mkdir()
    argv = aim_command(aim_repo(str(tmp_path)), "127.0.0.1", 43999)
    assert argv[1:] == ["up", "--host", "127.0.0.1", "--port", "43999", "--repo", str(tmp_path)]
