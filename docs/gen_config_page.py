"""The configuration reference, generated from ``dans_kgc/defaults.yaml`` (its one source of truth).

A key's description is the comment on its line, continued on the comment-only lines right below it
that are indented further than the key. ``yaml.safe_load`` gives the keys and defaults; the comments
are read line by line (PyYAML drops them). The MkDocs hook (``docs/hooks.py``) puts the tables into
``docs/configuration.md`` at build time; ``python docs/gen_config_page.py`` prints them.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULTS = REPO / "dans_kgc" / "defaults.yaml"

_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w-]*):(?=\s|$)(?P<rest>.*)$")


@dataclass(frozen=True)
class KeyDoc:
    """One key of the defaults: dotted path, default value, description, and whether it holds other keys."""

    key: str
    default: Any
    description: str
    is_section: bool


def split_comment(text: str) -> tuple[str, str]:
    """``value  # comment`` -> (value, comment); a ``#`` inside quotes or not preceded by a space is no comment."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip(), text[i + 1 :].strip()
    return text.rstrip(), ""


def read_key_comments(text: str) -> dict[str, str]:
    """Dotted key path -> its description, for every key line of a block-style YAML mapping."""
    comments: dict[str, list[str]] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the mappings that enclose the current line
    last: tuple[int, str] | None = None  # the key whose description a following comment line continues
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            last = None
            continue
        indent = len(line) - len(line.lstrip(" "))
        if stripped.startswith("#"):
            if last is not None and indent > last[0]:
                comments[last[1]].append(stripped[1:].strip())
            else:
                last = None
            continue
        match = _KEY_LINE.match(line)
        if match is None:  # the continuation of a multi-line value (a flow list): its comment goes to that key
            if last is not None:
                comment = split_comment(stripped)[1]
                if comment:
                    comments[last[1]].append(comment)
            continue
        key_indent = len(match["indent"])
        while stack and stack[-1][0] >= key_indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [match["key"]])
        value, comment = split_comment(match["rest"])
        comments[path] = [comment] if comment else []
        if not value:  # a mapping opens here: its keys follow, indented further
            stack.append((key_indent, match["key"]))
        last = (key_indent, path)
    return {path: " ".join(parts) for path, parts in comments.items()}


def key_docs(text: str) -> list[KeyDoc]:
    """Every key of the YAML text (sections and leaves, in file order) with its default and description."""
    descriptions = read_key_comments(text)
    docs: list[KeyDoc] = []

    def walk(mapping: dict[str, Any], prefix: str) -> None:
        for key, value in mapping.items():
            path = f"{prefix}{key}"
            is_section = isinstance(value, dict) and bool(value)
            docs.append(KeyDoc(path, None if is_section else value, descriptions.get(path, ""), is_section))
            if is_section:
                walk(value, f"{path}.")

    walk(yaml.safe_load(text), "")
    return docs


def undocumented(docs: list[KeyDoc]) -> list[str]:
    """Keys without a description."""
    return [d.key for d in docs if not d.description]


def _markdown_text(text: str) -> str:
    """Plain text for a Markdown table cell: code spans kept, everything Markdown or HTML would eat escaped."""
    parts = re.split(r"(`[^`]*`)", text)
    for i in range(0, len(parts), 2):
        escaped = parts[i].replace("\\", "\\\\").replace("<", "&lt;").replace(">", "&gt;")
        parts[i] = re.sub(r"([*_\[\]])", r"\\\1", escaped)
    return "".join(parts).replace("|", "\\|")


def format_default(value: Any) -> str:
    """A default as YAML flow text in a code span (``null``, ``[0.5, 0.8]``, ``cosine``)."""
    flow = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    flow = flow.removesuffix("\n...")
    flow = flow.removesuffix("...").strip()
    return "`" + flow.replace("|", "\\|") + "`"


def render_tables(docs: list[KeyDoc]) -> str:
    """One section per top-level key: its description, then a table of its keys."""
    out: list[str] = []
    top_leaves = [d for d in docs if "." not in d.key and not d.is_section]
    if top_leaves:
        out += ["## Top-level keys", "", "| key | default | description |", "|---|---|---|"]
        out += [f"| `{d.key}` | {format_default(d.default)} | {_markdown_text(d.description)} |" for d in top_leaves]
        out.append("")
    for section in (d for d in docs if "." not in d.key and d.is_section):
        out += [f"## `{section.key}`", "", _markdown_text(section.description), ""]
        out += ["| key | default | description |", "|---|---|---|"]
        for d in docs:
            if not d.key.startswith(section.key + "."):
                continue
            default = "*(group)*" if d.is_section else format_default(d.default)
            out.append(f"| `{d.key}` | {default} | {_markdown_text(d.description)} |")
        out.append("")
    return "\n".join(out)


def main() -> int:
    docs = key_docs(DEFAULTS.read_text())
    missing = undocumented(docs)
    if missing:
        print(
            f"{DEFAULTS}: keys without a description (a comment on the key's line): {', '.join(missing)}",
            file=sys.stderr,
        )
        return 1
    print(render_tables(docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
