"""A small table model and its Markdown / LaTeX (booktabs) renderers, plus cell formatting.

Tables carry a caption, optional spanning header groups, footnotes (letters a, b, ...) and
bold cells. The tidy numbers behind a table go to CSV separately (see the builders): the CSV is
for machines, the Markdown/LaTeX for people.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dans_kgc.reports.runs import Aggregate, RunRecord

MISSING = "—"


@dataclass
class Cell:
    text: str
    value: float | None = None  # what "best" compares; None = not a candidate
    bold: bool = False
    marks: list[str] = field(default_factory=list)


class Notes:
    """Footnotes, deduplicated by text, lettered in order of first use."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def mark(self, text: str) -> str:
        if text not in self.items:
            self.items.append(text)
        i = self.items.index(text)
        letters = string.ascii_lowercase
        return letters[i] if i < 26 else letters[i // 26 - 1] + letters[i % 26]

    def lettered(self) -> list[tuple[str, str]]:
        return [(self.mark(t), t) for t in self.items]


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[Cell]]
    label: str = "tab:report"
    groups: list[tuple[str, int]] | None = None  # spanning headers over the leaf columns
    notes: Notes = field(default_factory=Notes)
    midrules: set[int] = field(default_factory=set)  # a rule before these row indices
    align: str | None = None
    title: str | None = None


# ----------------------------------------------------------------------------------------
# formatting
# ----------------------------------------------------------------------------------------
def fmt(v: float | None, digits: int = 3) -> str:
    return MISSING if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _seconds_decimals(v: float) -> int:
    return 2 if abs(v) < 10 else (1 if abs(v) < 100 else 0)


def fmt_seconds(v: float | None, decimals: int | None = None) -> str:
    """Seconds with precision by magnitude (0.15, 19.0, 1,234); ``decimals`` forces it."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return MISSING
    d = _seconds_decimals(v) if decimals is None else decimals
    return f"{v:,.{d}f}"


def fmt_agg(agg: Aggregate, digits: int = 3, formatter=None) -> str:
    """``mean ± std``; with ``fmt_seconds`` the std uses the mean's precision."""
    mean = agg.mean
    if mean is None:  # no values
        return MISSING
    if formatter is fmt_seconds:
        d = _seconds_decimals(mean)
        f = lambda x: fmt_seconds(x, d)  # noqa: E731
    else:
        f = formatter or (lambda x: fmt(x, digits))
    if agg.std is None:
        return f(mean)
    return f"{f(mean)} ± {f(agg.std)}"


def _run_ref(r: RunRecord) -> str:
    seed = f"seed {r.seed}" if r.seed is not None else "seed ?"
    return f"{seed} ({r.path}: {r.problem or 'value absent'})"


def agg_cell(agg: Aggregate, notes: Notes, digits: int = 3, formatter=None, what: str = "result") -> Cell:
    """A mean ± std cell; missing seeds and single-seed cells get a footnote."""
    cell = Cell(fmt_agg(agg, digits, formatter), agg.mean)
    if agg.expected == 0:
        cell.marks.append(notes.mark(f"no run given for this cell (missing {what})"))
    elif agg.n == 0:
        cell.marks.append(notes.mark(f"missing {what}: " + "; ".join(_run_ref(r) for r in agg.missing)))
    elif agg.missing:
        cell.marks.append(
            notes.mark(f"{agg.n} of {agg.expected} seeds; missing: " + "; ".join(_run_ref(r) for r in agg.missing))
        )
    elif agg.n == 1:
        cell.marks.append(notes.mark("single seed: no standard deviation"))
    return cell


def bold_best(rows: Sequence[Sequence[Cell]], columns: Sequence[int], digits: int = 3, higher: bool = True) -> None:
    """Bold the best value of each column (ties at the printed precision all get bold)."""
    for c in columns:
        vals = [round(v, digits) for r in rows if (v := r[c].value) is not None]
        if len(vals) < 2:
            continue
        best = max(vals) if higher else min(vals)
        for r in rows:
            if (v := r[c].value) is not None and round(v, digits) == best:
                r[c].bold = True


# ----------------------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------------------
def _md_cell(c: Cell) -> str:
    text = c.text.replace("|", "\\|")
    if c.bold and text and text != MISSING:
        text = f"**{text}**"
    if c.marks:
        text += " " + "".join(f"[{m}]" for m in c.marks)
    return text


def to_markdown(t: Table) -> str:
    cols = list(t.columns)
    if t.groups:
        leaf, i = [], 0
        for name, span in t.groups:
            for k in range(span):
                leaf.append(f"{name} {cols[i + k]}".strip())
            i += span
        cols = leaf
    align = t.align or ("l" + "r" * (len(cols) - 1))
    lines = []
    if t.title:
        lines += [f"### {t.title}", ""]
    lines += [f"**{t.caption}**", ""]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join(":--" if a == "l" else ("--:" if a == "r" else ":-:") for a in align) + "|")
    for row in t.rows:
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    if t.notes.items:
        lines.append("")
        for letter, text in t.notes.lettered():
            lines.append(f"[{letter}] {text}  ")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------
# LaTeX (booktabs)
# ----------------------------------------------------------------------------------------
_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_TEX_UNICODE = {
    "±": r"$\pm$",
    "—": "---",
    "–": "--",
    "Δ": r"$\Delta$",
    "μ": r"$\mu$",
    "η": r"$\eta$",
    "×": r"$\times$",
    "−": r"$-$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "τ": r"$\tau$",
    "σ": r"$\sigma$",
    "λ": r"$\lambda$",
}


def tex_escape(text: str) -> str:
    out = "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))
    for k, v in _TEX_UNICODE.items():
        out = out.replace(k, v)
    return out


def _tex_cell(c: Cell) -> str:
    text = tex_escape(c.text)
    if c.bold and c.text and c.text != MISSING:
        text = rf"\textbf{{{text}}}"
    if c.marks:
        text += r"\textsuperscript{" + ",".join(c.marks) + "}"
    return text


def to_latex(t: Table, provenance: str | None = None) -> str:
    ncol = len(t.columns)
    align = t.align or ("l" + "r" * (ncol - 1))
    env = "table*" if ncol > 7 else "table"
    scale = ncol > 9  # very wide: scale the tabular to the text width
    lines = [
        r"% generated by 'dans-kgc report'; needs \usepackage{booktabs}"
        + (r" and \usepackage{graphicx}" if scale else "")
    ]
    if provenance:
        lines.append(f"% provenance: {provenance}")
    lines += [
        rf"\begin{{{env}}}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{tex_escape(t.caption)}}}",
        rf"\label{{{t.label}}}",
    ]
    if scale:
        lines.append(r"\resizebox{\textwidth}{!}{%")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule"]
    if t.groups:
        heads, rules, i = [], [], 1
        for name, span in t.groups:
            if span == 1:
                heads.append(tex_escape(name))
            else:
                heads.append(rf"\multicolumn{{{span}}}{{c}}{{{tex_escape(name)}}}")
                if name:
                    rules.append(rf"\cmidrule(lr){{{i}-{i + span - 1}}}")
            i += span
        lines.append(" & ".join(heads) + r" \\")
        if rules:
            lines.append(" ".join(rules))
    lines.append(" & ".join(tex_escape(c) for c in t.columns) + r" \\")
    lines.append(r"\midrule")
    for k, row in enumerate(t.rows):
        if k in t.midrules and k > 0:
            lines.append(r"\midrule")
        lines.append(" & ".join(_tex_cell(c) for c in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}" + ("}" if scale else "")]
    if t.notes.items:
        notes = [rf"\textsuperscript{{{letter}}}{tex_escape(text)}" for letter, text in t.notes.lettered()]
        lines += [r"\par\smallskip", r"\parbox{\linewidth}{\footnotesize\raggedright", " \\\\\n".join(notes) + "}"]
    lines.append(rf"\end{{{env}}}")
    return "\n".join(lines) + "\n"


def write_table(t: Table, prefix_path, csv_frame=None) -> list[Path]:
    """Write ``<prefix>.md`` and ``<prefix>.tex`` (and ``<prefix>.csv`` from ``csv_frame``)."""
    from dans_kgc.utils import write_text

    prefix = str(prefix_path)
    written = []
    if csv_frame is not None:
        p = Path(prefix + ".csv")
        write_text(p, csv_frame.to_csv(index=False))
        written.append(p)
    p = Path(prefix + ".md")
    write_text(p, to_markdown(t))
    written.append(p)
    p = Path(prefix + ".tex")
    write_text(p, to_latex(t, provenance=Path(prefix + ".provenance.json").name))
    written.append(p)
    return written
