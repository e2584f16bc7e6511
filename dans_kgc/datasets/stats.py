"""Dataset statistics (the paper's Table 1): entities, relations, train/valid/test triples."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from dans_kgc.datasets.custom import open_dataset
from dans_kgc.utils import write_text


def dataset_statistics(names: Iterable[str], cfg: Mapping[str, Any]) -> pd.DataFrame:
    rows = []
    for name in names:
        kg = open_dataset(name, cfg)
        rows.append(
            {
                "dataset": kg.name,
                "split": kg.variant,
                "entities": kg.num_entities,
                "relations": kg.num_relations,
                "train": len(kg.train),
                "valid": len(kg.valid),
                "test": len(kg.test),
                "unseen_valid": kg.report["unseen"]["valid"],
                "unseen_test": kg.report["unseen"]["test"],
                "duplicates": sum(kg.report["duplicates"].values()),
            }
        )
    return pd.DataFrame(rows)


def write_table(df: pd.DataFrame, out_prefix: str | Path) -> None:
    out_prefix = Path(out_prefix)
    write_text(out_prefix.with_suffix(".csv"), df.to_csv(index=False))
    header = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in df.itertuples(index=False))
    write_text(out_prefix.with_suffix(".md"), header + body)
