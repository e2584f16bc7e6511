"""MkDocs hooks: the pages that are generated from the code fill themselves in at build time.

Markers in a page (an HTML comment on a line of its own) are replaced before the page is rendered:

- ``<!-- generated: configuration -->``: the key tables of ``dans_kgc/defaults.yaml`` (``gen_config_page.py``);
- ``<!-- generated: cli -->``: ``dans-kgc --help`` of every subcommand;
- ``<!-- include: PATH -->``: a Markdown file of the repository (its first heading dropped);
- ``<!-- include-code: PATH LANG -->``: a file of the repository as a code block.

A marker whose source is missing, or an undocumented key, stops the build with a message naming it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(DOCS))
sys.path.insert(0, str(REPO))  # the checkout's dans_kgc, also when the package is not installed

import gen_config_page  # noqa: E402 - found through the sys.path entry above

_MARKER = re.compile(r"^<!-- (generated|include|include-code): (.+?) -->$", re.MULTILINE)


def configuration_tables() -> str:
    docs = gen_config_page.key_docs(gen_config_page.DEFAULTS.read_text())
    missing = gen_config_page.undocumented(docs)
    if missing:
        raise PluginError(f"dans_kgc/defaults.yaml: keys without a description: {', '.join(missing)}")
    return gen_config_page.render_tables(docs)


def _subcommands(parser: argparse.ArgumentParser, words: list[str]) -> list[tuple[list[str], argparse.ArgumentParser]]:
    """Every command that takes arguments, in the order the help lists them: (words after dans-kgc, parser)."""
    found: list[tuple[list[str], argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                has_children = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
                found += _subcommands(sub, [*words, name]) if has_children else [([*words, name], sub)]
    return found


def cli_reference() -> str:
    os.environ["COLUMNS"] = "110"  # argparse wraps at the terminal width: fix it, so the page does not depend on it
    from dans_kgc.cli import build_parser

    parser = build_parser()
    out = ["## `dans-kgc`", "", "```text", parser.format_help().rstrip(), "```", ""]
    for words, sub in _subcommands(parser, []):
        out += [f"## `dans-kgc {' '.join(words)}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def _repo_file(relative: str, page: str) -> Path:
    path = REPO / relative
    if not path.is_file():
        raise PluginError(f"docs/{page}: the included file {relative} does not exist")
    return path


def include_markdown(relative: str, page: str) -> str:
    text = _repo_file(relative, page).read_text()
    return re.sub(r"\A# [^\n]*\n", "", text.lstrip(), count=1)


def include_code(argument: str, page: str) -> str:
    relative, _, language = argument.partition(" ")
    return f"```{language.strip()}\n{_repo_file(relative, page).read_text().rstrip()}\n```"


GENERATORS = {"configuration": configuration_tables, "cli": cli_reference}


def expand(markdown: str, page: str) -> str:
    """The page with every marker replaced by what it names."""

    def replace(match: re.Match[str]) -> str:
        kind, argument = match.group(1), match.group(2).strip()
        if kind == "generated":
            if argument not in GENERATORS:
                raise PluginError(
                    f"docs/{page}: unknown generated section '{argument}' (known: {', '.join(GENERATORS)})"
                )
            return GENERATORS[argument]()
        if kind == "include":
            return include_markdown(argument, page)
        return include_code(argument, page)

    return _MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    return expand(markdown, page.file.src_uri)
