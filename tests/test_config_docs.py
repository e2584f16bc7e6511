"""The configuration reference is generated from dans_kgc/defaults.yaml: every key needs a description there,
and the comment reader gets hand-made YAML right."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("gen_config_page", REPO / "docs" / "gen_config_page.py")
gen = importlib.util.module_from_spec(_spec)
sys.modules["gen_config_page"] = gen  # dataclasses look their module up there
_spec.loader.exec_module(gen)

SAMPLE = """\
# file header: describes no key
seed: 0            # the seed
model:             # the backbone
  name: transe     # which one: a | b
                   # (continued on a second line)
  dims: [16, 32,
         64]       # widths; the list spans two lines
  url: "http://x#frag"   # a '#' inside quotes is no comment
  bare: 3
# a free comment at column 0 describes nothing
train:
  nested:
    deep: 1.5      # three levels down
  after: x#y       # a '#' without a space before it is part of the value
"""


def _flatten(mapping: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in mapping.items():
        keys.add(prefix + key)
        if isinstance(value, dict) and value:
            keys |= _flatten(value, f"{prefix}{key}.")
    return keys


def test_comment_reader_known_answer():
    assert gen.read_key_comments(SAMPLE) == {
        "seed": "the seed",
        "model": "the backbone",
        "model.name": "which one: a | b (continued on a second line)",
        "model.dims": "widths; the list spans two lines",
        "model.url": "a '#' inside quotes is no comment",
        "model.bare": "",
        "train": "",
        "train.nested": "",
        "train.nested.deep": "three levels down",
        "train.after": "a '#' without a space before it is part of the value",
    }


def test_key_docs_carry_the_yaml_defaults():
    docs = {d.key: d for d in gen.key_docs(SAMPLE)}
    assert docs["model.dims"].default == [16, 32, 64]
    assert docs["model.url"].default == "http://x#frag"
    assert docs["train.after"].default == "x#y"
    assert docs["train.nested"].is_section and not docs["train.nested.deep"].is_section
    assert gen.undocumented(list(docs.values())) == ["model.bare", "train", "train.nested"]


def test_every_key_of_the_defaults_has_a_description():
    text = (REPO / "dans_kgc" / "defaults.yaml").read_text()
    docs = gen.key_docs(text)
    # the line reader must see exactly the keys the YAML parser sees, or a description could sit on the wrong key
    assert set(gen.read_key_comments(text)) == _flatten(yaml.safe_load(text))
    missing = gen.undocumented(docs)
    assert not missing, (
        f"dans_kgc/defaults.yaml: keys without a description (write it as a comment on the "
        f"key's line): {', '.join(missing)}"
    )


def test_rendered_page_lists_every_key_with_its_default():
    text = (REPO / "dans_kgc" / "defaults.yaml").read_text()
    page = gen.render_tables(gen.key_docs(text))
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    listed = {row.split("`")[1] for row in rows}
    defaults = yaml.safe_load(text)
    sections = {key for key, value in defaults.items() if isinstance(value, dict) and value}
    assert listed == _flatten(defaults) - sections  # a top-level group is a heading, not a row
    assert {line[len("## `") : -1] for line in page.splitlines() if line.startswith("## `")} == sections
    assert "| `diffusion.band_quantiles` | `[0.5, 0.8, 0.93, 0.98]` |" in page
    assert "| `protocol` | `null` |" in page
    # '<' would start an HTML tag and '|' a new cell in Markdown: both are escaped in descriptions
    assert "&lt;root&gt;/&lt;name&gt;/&lt;variant&gt;/" in page
    assert "| `device` | `auto` | auto \\| cpu \\| cuda |" in page
