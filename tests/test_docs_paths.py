"""Repository paths the README and the docs name in code (`benchmarks/results/gnn/`, `bash .../collect.sh`) exist.

Links are checked by `mkdocs build --strict` and tests/test_readme_links.py; a path written as code is not a link,
so a moved folder would leave the pages pointing at nothing without this check.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_TOP = r"(?:benchmarks|dans_kgc|docs|examples|profiles|reference|tests|workflow)"
# a whole code span that is a path of the repository (no placeholders: <x>, {a,b}, *, RUNS, ...)
_SPAN_PATH = re.compile(rf"`({_TOP}/[\w@./-]*)`")
# a file named in a command: a path with an extension, anywhere in a code block
_BLOCK_FILE = re.compile(rf"(?<![\w/.-])({_TOP}/[\w@./-]*\.(?:py|sh|yaml|md|json|csv))\b")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


def named_paths(markdown: str) -> list[str]:
    """Paths of the repository a page names in code spans and in the commands of its code blocks."""
    blocks = _FENCE.findall(markdown)
    prose = _FENCE.sub("", markdown)
    paths = [p for p in _SPAN_PATH.findall(prose) if not re.search(r"[A-Z]{3,}", p)]
    paths += [p for block in blocks for p in _BLOCK_FILE.findall(block)]
    return paths


def missing_paths(page: Path, root: Path) -> list[str]:
    return [p for p in named_paths(page.read_text()) if not (root / p.rstrip("/")).exists()]


def test_path_reader_known_answer(tmp_path):
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "run.sh").write_text("")
    page = tmp_path / "p.md"
    page.write_text(
        "Folder: `benchmarks/results/`, gone: `benchmarks/old/`, a key `train.lr`, a pattern\n"
        "`benchmarks/results/<name>.md`, a placeholder `benchmarks/RESULTS_DIR/x`.\n\n"
        "```bash\nbash benchmarks/run.sh && python benchmarks/nope.py --out benchmarks/results/x\n```\n"
    )
    assert named_paths(page.read_text()) == [
        "benchmarks/results/",
        "benchmarks/old/",
        "benchmarks/run.sh",
        "benchmarks/nope.py",
    ]
    assert missing_paths(page, tmp_path) == ["benchmarks/old/", "benchmarks/nope.py"]


def test_paths_named_in_readme_and_docs_exist():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    missing = [f"{page.relative_to(REPO)}: {path}" for page in pages for path in missing_paths(page, REPO)]
    assert not missing, "paths named in the docs that the repository does not hold:\n" + "\n".join(missing)
