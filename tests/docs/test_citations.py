"""Every citation points inside the repository: a user of the package has nothing else."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Directories that are not the project's own text (tools' state, builds, environments).
SKIP_DIRS = {
    ".git",
    ".venv",
    ".bench-venv",  # benchmarks/peers.py installs the peers there (gitignored)
    "site",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".txt", ".cfg", ".ini", ".sh"}
#: A file name ending in .md, as prose and docstrings cite one.
CITED_MD = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w.-]+\.md)\b")
BARE_SECTION = re.compile(r"\b[Ss]ections? \d")
#: Names that are not citations of a missing file: an output file a command writes, and the
#: public probe write-ups docs/protocol.md cites with their repository's URL (section 12).
NOT_CITATIONS = {
    "out.md",
    "docs/profiles/upbit/websocket.md",
    "docs/profiles/upbit/rest.md",
    "docs/profiles/upbit-indonesia/websocket.md",
}


def project_files() -> list[Path]:
    """Return the repository's text files (the egg-info and caches left out)."""
    out = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        out.extend(
            Path(folder) / n
            for n in names
            if Path(n).suffix in TEXT_SUFFIXES or n in ("Makefile", "run")
        )
    return out


def test_no_file_cites_a_markdown_file_outside_the_repository() -> None:
    """Every NAME.md a file mentions exists in the repository (DESIGN.md and the like do not)."""
    files = project_files()
    present = {p.relative_to(ROOT).as_posix() for p in files}
    names = {Path(p).name for p in present}
    missing = []
    this = Path(__file__).resolve()
    for path in files:
        if path.resolve() == this:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for cited in CITED_MD.findall(text):
            local = (path.parent / cited).resolve()
            if cited in NOT_CITATIONS:
                continue
            if local.exists() or cited in present or cited.rsplit("/", 1)[-1] in names:
                continue
            missing.append(f"{path.relative_to(ROOT)}: {cited}")
    assert missing == []


def test_known_outside_documents_are_not_cited() -> None:
    """The internal design notes and the protocol draft are never named."""
    pattern = re.compile(r"upbit-protocol\.md|DESIGN\.md|STYLE\.md|seed-design")
    this = Path(__file__).resolve()
    offenders = [
        str(p.relative_to(ROOT))
        for p in project_files()
        if p.resolve() != this and pattern.search(p.read_text(encoding="utf-8", errors="replace"))
    ]
    assert offenders == []


def test_section_citations_in_src_say_where() -> None:
    """A source file citing "section N" names docs/protocol.md, where the sections are."""
    bare = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "src").rglob("*.py")
        if BARE_SECTION.search(text := p.read_text(encoding="utf-8"))
        and "docs/protocol.md" not in text
    ]
    assert bare == []
