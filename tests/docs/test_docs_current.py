"""The docs describe the repository as it is: nothing that exists is called "planned", every
``jepakit`` command a page shows exists, and every file a page links to or names is in the
repository.

Checked pages: README.md, docs/*.md and the example plugin's README. Files named in
jepakit's and the plugins' docstrings and comments (``docs/x.md``, ``design.md``) are
checked too. What counts as a file reference:

- a relative Markdown link ``[text](path)`` (``#anchor`` and ``http(s)://`` links aside),
  resolved from the page's folder; with ``#anchor``, the heading must exist there too;
- a path in backticks or plain text that starts with a top-level folder of the repository
  (``plugins/x/y.py``, ``benchmarks/z.py``, ``recipes/a.yaml``, ``docs/b.md``, ...), and any
  ``name.md``, resolved from the page's folder or the repository root (``...``, ``*``,
  ``<...>`` and ``{...}`` placeholders are not references); in code blocks, only on
  command lines and in quoted strings.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"),
                *(ROOT / "examples").glob("*/README.md")])
SOURCES = sorted([*(ROOT / "jepakit").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")])
TOP = ("jepakit", "plugins", "docs", "recipes", "benchmarks", "examples", "tests")

PLANNED = re.compile(r"\b(planned|not yet (?:implemented|available|supported|built)|"
                     r"coming soon|to be added|future work|TODO)\b", re.I)
STEP_COUNTS = re.compile(r"\b(steps|epochs) planned\b|\bplanned (steps|epochs)\b", re.I)
"""A schedule's planned steps (docs/results.md) name no feature."""
ALLOWED_PLANNED: tuple[str, ...] = ()
"""Phrases that may stand next to "planned": a feature that really is planned, with the
page that says so, once someone checked it is not built."""

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(TOP) + r")/[\w./-]*[\w/]|[\w-]+\.md)(?![\w/-])")
PLACEHOLDER = re.compile(r"\.\.\.|[*<>{}]|\bNAME\b|\bmy_|\bmy-|your")


def commands() -> set[str]:
    """The ``jepakit`` subcommands, from the CLI's own parser."""
    from jepakit.cli import parser

    sub = next(a for a in parser()._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def sentences(text: str) -> list[tuple[int, str]]:
    """(line, sentence) pairs; code blocks are skipped, wrapped lines joined."""
    text = re.sub(r"^```.*?^```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)
    out, line = [], 1
    for piece in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
        out.append((line, " ".join(piece.split())))
        line += piece.count("\n") + 1
    return out


def stale_claims(text: str) -> list[str]:
    """Sentences that call something planned / not yet built, with the commands they name."""
    known = commands()
    found = []
    for line, sentence in sentences(text):
        if not PLANNED.search(STEP_COUNTS.sub("", sentence)) or \
                any(a in sentence for a in ALLOWED_PLANNED):
            continue
        named = sorted({c for c in re.findall(r"jepakit (\w[\w-]*)", sentence) if c in known})
        what = f" (`jepakit {'`, `jepakit '.join(named)}` exists)" if named else ""
        found.append(f"line {line}: {sentence!r}{what}")
    return found


def unknown_commands(text: str, known: set[str]) -> list[str]:
    """``jepakit WORD`` in inline code or a code block where WORD is no command."""
    code, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced:
            code.append(line)
        else:
            code += re.findall(r"`([^`]+)`", line)
    found = []
    for snippet in code:
        for part in re.split(r"&&|\|\||[;|]|\$\(", snippet.split("#")[0]):
            # a command: optional "$ ", VAR=value assignments, then jepakit WORD
            match = re.match(r"\s*(?:\$\s+)?(?:\w+=\S*\s+)*jepakit ([a-z][\w-]*)", part)
            if match and match.group(1) not in known:
                found.append(f"`jepakit {match.group(1)}` in {snippet.strip()!r}")
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.*)$", page.read_text(), re.M)}


def tracked() -> set[str]:
    """Files in the repository (git's view; the working tree when git is unavailable)."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        return set(out.split())
    except (OSError, subprocess.CalledProcessError):
        return {str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()}


def exists(relative: str, files: set[str]) -> bool:
    relative = relative.rstrip("/")
    return relative in files or any(f.startswith(relative + "/") for f in files)


COMMAND = re.compile(r"^\s*(\$ )?(jepakit|python|\.venv/|OMP_NUM_THREADS=|torchrun|make|bash|"
                     r"pytest|pip)\b|[\"']")
"""In a code block only command lines and quoted strings cite files: a file tree or a
``# tests/test_x.py`` heading names the reader's own files."""


def missing_files(page: Path, text: str, files: set[str]) -> list[str]:
    """File references in ``text`` (of ``page``) that are not in the repository."""
    found = []
    folder = str(page.parent.relative_to(ROOT))
    fenced = False
    for line_no, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced and not COMMAND.search(line):
            continue
        for match in LINK.finditer(line):
            target = match.group(1) or match.group(2)
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve()
            try:
                relative = str(resolved.relative_to(ROOT))
            except ValueError:
                found.append(f"line {line_no}: link {target} leaves the repository")
                continue
            if not exists(relative, files):
                found.append(f"line {line_no}: link {target}: no file {relative}")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                found.append(f"line {line_no}: link {target}: no heading #{anchor} in {relative}")
        for match in PATH.finditer(LINK.sub(" ", line)):
            ref = match.group(1).rstrip(".")
            if PLACEHOLDER.search(line[max(0, match.start() - 1):match.end() + 1]):
                continue
            if "/" in ref:  # from the page's folder (an example's own README) or the root
                ok = exists(ref, files) or exists(f"{folder}/{ref}", files)
            else:  # a bare name.md: a page anywhere in the repository
                ok = any(f == ref or f.endswith("/" + ref) for f in files)
            if not ok:
                found.append(f"line {line_no}: {ref} is not in the repository")
    return found


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_nothing_that_exists_is_called_planned(page):
    stale = stale_claims(page.read_text())
    assert not stale, f"{_id(page)} calls something planned or not yet built; if it exists, " \
                      "say so (else add the phrase to ALLOWED_PLANNED):\n" + "\n".join(stale)


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_every_command_a_page_shows_exists(page):
    unknown = unknown_commands(page.read_text(), commands())
    assert not unknown, f"{_id(page)} shows commands jepakit does not have " \
                        f"(it has {', '.join(sorted(commands()))}):\n" + "\n".join(unknown)


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_every_file_a_page_names_exists(page):
    missing = missing_files(page, page.read_text(), tracked())
    assert not missing, f"{_id(page)}:\n" + "\n".join(missing)


def test_every_file_the_code_cites_exists():
    files = tracked()
    missing = []
    for source in SOURCES:
        text = source.read_text()
        refs = set(re.findall(r"(?<![\w./-])((?:docs/)?[\w-]+\.md)\b", text))
        missing += [f"{_id(source)}: {ref}" for ref in sorted(refs)
                    if not any(f == ref or f.endswith("/" + ref) for f in files)]
    assert not missing, "files cited in docstrings or comments that do not exist:\n" + \
        "\n".join(missing)


def test_the_checks_catch_what_they_should(tmp_path):
    """A reintroduced stale claim and a missing file are found (the tests above can fail)."""
    stale = stale_claims("Linear-probe and k-NN evaluation commands are planned.\n\n"
                         "Run `jepakit eval knn` (planned) on a run.\n\n"
                         "An `official` mode that reproduces the upstream masks is planned.\n\n"
                         "The schedule had 5,791 steps planned (740 of 1,378 planned steps).\n")
    assert len(stale) == 3
    assert "`jepakit eval` exists" in stale[1]
    assert unknown_commands("Run `jepakit train r.yaml`, then\n```\njepakit eval knn --run r\n"
                            "jepakit evaluate --run r\n```\njepakit is a framework.\n",
                            commands()) == ["`jepakit train` in 'jepakit train r.yaml'",
                                            "`jepakit evaluate` in 'jepakit evaluate --run r'"]
    files = tracked()
    page = ROOT / "docs" / "page.md"
    text = ("See [plugins](plugins.md#contracts), [gone](gone.md), [bad](plugins.md#nope),\n"
            "[video](data.md#synthetic_video),\n"
            "`plugins/jepakit_masks/nothing.py`, benchmarks/not_here.py and design.md;\n"
            "`recipes/ijepa_tiny.yaml`, `recipes/ablations/...yaml` and `runs/x/metrics.jsonl`.\n")
    missing = missing_files(page, text, files)
    assert [m.split(":")[1].strip() for m in missing] == [
        "link gone.md", "link plugins.md#nope", "plugins/jepakit_masks/nothing.py is not in "
        "the repository", "benchmarks/not_here.py is not in the repository",
        "design.md is not in the repository"], missing
