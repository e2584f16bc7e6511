"""Every relative link in README.md resolves to a file of the repository, and every #anchor to a heading there.

README.md is not part of the documentation site (whose links `mkdocs build --strict` checks), so it is checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose(text: str) -> str:
    """Markdown without code blocks and code spans, where a link is only text."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def markdown_links(text: str) -> list[str]:
    """Targets of the Markdown and HTML links of a page, in order, code left out."""
    prose = _prose(text)
    return _MD_LINK.findall(prose) + _HTML_LINK.findall(prose)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Anchors of a Markdown page's headings (a repeated heading gets -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    found = set()
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", _FENCE.sub("", markdown), re.MULTILINE):
        slug = github_slug(match.group(1))
        count = seen.get(slug, 0)
        found.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return found


def broken_links(page: Path, root: Path) -> list[str]:
    """Relative links of ``page`` that name no file under ``root``, or no heading of the Markdown file they name."""
    broken = []
    for target in markdown_links(page.read_text()):
        if _SCHEME.match(target) or target.startswith("//"):
            continue  # a web address: not a file of the repository
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page.resolve()
        if root.resolve() not in (resolved, *resolved.parents) or not resolved.exists():
            broken.append(f"{target} (no such file in the repository)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            broken.append(f"{target} (no heading with anchor #{anchor})")
    return broken


def test_link_reader_known_answer(tmp_path):
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "a.md").write_text("# Title\n\n## Open questions: Q1 & Q2\n\n## Setup\n\n## Setup\n")
    (repo / "examples").mkdir()
    (repo / "examples" / "x.py").write_text("")
    (tmp_path / "outside.md").write_text("")  # exists, but not in the repository
    readme = repo / "README.md"
    readme.write_text(
        "# Intro\n\n"
        "[ok](docs/a.md) [anchor ok](docs/a.md#open-questions-q1--q2) [second](docs/a.md#setup-1)\n"
        "[bad anchor](docs/a.md#nope) [missing](docs/b.md) ![img](examples/x.py) [web](https://example.org/x)\n"
        '[self](#intro) [self bad](#outro) [outside](../outside.md) <a href="docs/c.md">c</a>\n'
        "`[in code](docs/zzz.md)`\n\n```\n[in a block](docs/yyy.md)\n```\n"
    )
    assert markdown_links(readme.read_text()) == [
        "docs/a.md",
        "docs/a.md#open-questions-q1--q2",
        "docs/a.md#setup-1",
        "docs/a.md#nope",
        "docs/b.md",
        "examples/x.py",
        "https://example.org/x",
        "#intro",
        "#outro",
        "../outside.md",
        "docs/c.md",
    ]
    assert broken_links(readme, repo) == [
        "docs/a.md#nope (no heading with anchor #nope)",
        "docs/b.md (no such file in the repository)",
        "#outro (no heading with anchor #outro)",
        "../outside.md (no such file in the repository)",
        "docs/c.md (no such file in the repository)",
    ]


def test_every_relative_link_of_the_readme_resolves():
    readme = REPO / "README.md"
    assert markdown_links(readme.read_text()), "no link found: the reader is broken"
    assert broken_links(readme, REPO) == []
