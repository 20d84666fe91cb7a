"""Every ```python block of docs/python-api.md runs as written.

Each block runs in a fresh namespace, in a scratch directory that sees the
repository's ``recipes/`` and ``examples/`` (so relative paths in the doc work and
``runs/`` lands in the scratch directory).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, str]]:
    """(id, code) per python block; the id names the section and the block's line."""
    text = DOC.read_text()
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        heading = re.findall(r"^##+ (.*)$", text[:match.start()], re.M)
        slug = re.sub(r"[^a-z0-9]+", "-", (heading[-1] if heading else "top").lower()).strip("-")
        # pad so tracebacks point at the doc's own line numbers
        found.append((f"{slug}-line{line}", "\n" * line + match.group(1)))
    return found


BLOCKS = blocks()


def test_the_doc_has_code():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("code", [c for _, c in BLOCKS], ids=[i for i, _ in BLOCKS])
def test_block_runs(code, tmp_path, repo_root, monkeypatch, capsys):
    torch.set_num_threads(1)
    for name in ("recipes", "examples"):
        (tmp_path / name).symlink_to(repo_root / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    exec(compile(code, str(DOC), "exec"), {"__name__": "__doc_block__"})
    assert os.getcwd() == str(tmp_path)


def test_one_block_builds_every_kind_by_hand():
    """The "Every kind by hand" example keeps up with kinds.py: a new kind needs a line there."""
    from jepakit.kinds import RECIPE_KINDS

    missing = [[k.name for k in RECIPE_KINDS if f'jepakit.create("{k.name}"' not in code]
               for _, code in BLOCKS]
    assert min(missing, key=len) == [], f"no block creates every kind; closest lacks {min(missing, key=len)}"
