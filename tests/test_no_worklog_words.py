"""User-facing text speaks of the project only: no issue numbers, no work sessions, no files outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

WORKLOG = re.compile(
    r"\bissues?[\s_-]*\d+"  # "issue 12", "issue-3", "Issue_10"
    r"|(?<![a-z])sessions?\d*(?![a-z])"  # "this session", "collect_session23"
    r"|\.\./shared"  # a path out of the repository
    r"|\bshared/(?:datasets|notes|paper)\b"  # the reference folder beside the repository
    r"|(?-i:\bMETHOD\.md\b)",  # a file of that folder (upper case: docs/method.md is ours)
    re.IGNORECASE,
)


def user_facing(path: str) -> bool:
    """README, the docs, the workflow's config, the package's code and data, the workflow."""
    return (
        path in ("README.md", "config.yaml")
        or path.startswith(("docs/", "workflow/"))
        or (path.startswith("dans_kgc/") and path.endswith((".py", ".yaml")))
    )


def tracked_files(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def worklog_hits(text: str) -> list[tuple[int, str]]:
    """(line number, matched words) of every work-log phrase in a text."""
    return [
        (number, match.group(0)) for number, line in enumerate(text.splitlines(), 1) for match in WORKLOG.finditer(line)
    ]


def test_worklog_reader_known_answer():
    text = (
        "as issue 12 asks\nIssue-10 targets\nthis session's runs, collect_session23.sh\n"
        "see ../shared/notes/x.md or shared/datasets\nMETHOD.md's reading\n"
        "tissue 3, an issue of scale, sessionless, /shared/studies/umls on a cluster, docs/method.md\n"
    )
    assert worklog_hits(text) == [
        (1, "issue 12"),
        (2, "Issue-10"),
        (3, "session"),
        (3, "session23"),
        (4, "../shared"),
        (4, "shared/datasets"),
        (5, "METHOD.md"),
    ]


def test_user_facing_text_has_no_worklog_words():
    files = [path for path in tracked_files(REPO) if user_facing(path)]
    assert "README.md" in files and "config.yaml" in files and any(p.startswith("docs/") for p in files)
    hits = []
    for path in files:
        try:
            text = (REPO / path).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):  # a binary file, or one deleted but not yet committed
            continue
        hits += [f"{path}:{number}: {words}" for number, words in worklog_hits(text)]
    assert not hits, "work-log words in user-facing text (say what the project does instead):\n" + "\n".join(hits)
