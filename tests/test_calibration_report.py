"""Published baselines (``dans_kgc.baselines``) and the ``calibration`` reports, on hand-made
run folders with hand-chosen numbers (no training: seconds)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dans_kgc import baselines
from dans_kgc.reports import REPORTS, build_report
from dans_kgc.reports.calibration import NO_ROW, curve_state
from dans_kgc.reports.runs import load_run

TIE = "realistic (mean of optimistic and pessimistic rank)"
BACKBONES = {
    "rotate": ("negative_sampling", "RotatE"),
    "transe": ("negative_sampling", "TransE"),
    "distmult": ("negative_sampling", "DistMult"),
    "complex": ("one_to_n", "ComplEx"),
    "quate": ("negative_sampling", "QuatE"),
    "conve": ("one_to_n", "ConvE"),
}


def valid_trace(valid: list[float | None], seconds: float = 2.0) -> list[dict]:
    """One row per epoch; ``None`` = no validation that epoch."""
    rows, total = [], 0.0
    for e, v in enumerate(valid, 1):
        total += seconds
        rows.append(
            {
                "epoch": e,
                "seconds": seconds,
                "train_seconds": total,
                "loss": 1.0 / e,
                "valid_mrr": float("nan") if v is None else v,
            }
        )
    return rows


def cal_run(
    root: Path,
    dataset: str,
    variant: str,
    backbone: str,
    seed: int,
    *,
    mrr: float | None = None,
    h1: float | None = None,
    h10: float | None = None,
    trace: list[dict] | None = None,
    epochs_run: int = 4,
    train_seconds: float = 8.0,
    anchor: float | None = None,
    protocol: str = "redgnn",
    record: bool = True,
) -> Path:
    """A calibration run folder as train + evaluate write it (``mrr=None``: evaluation never ran;
    ``record=False``: a run written before the backbone record existed)."""
    run = root / dataset / "calibration" / variant / f"seed{seed}"
    run.mkdir(parents=True)
    mode, label = BACKBONES[backbone]
    cfg = {
        "dataset": dataset,
        "seed": seed,
        "model": {"name": backbone, "dim": 64},
        "train": {"sampler": "uniform", "mode": mode, "epochs": epochs_run, "eval_every": 1},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    tags = {"experiment": "calibration", "variant": variant}
    short = "1-N" if mode == "one_to_n" else "NS"
    bb = (
        {
            "backbone": {
                "name": backbone,
                "dim": 64,
                "mode": mode,
                "label": f"{label} ({short})",  # as the CLI writes it
                "calibration_source": baselines.calibration_source(backbone),
            }
        }
        if record
        else {}
    )
    summary = {"epochs_run": epochs_run, "train_seconds": train_seconds}
    (run / "run.json").write_text(
        json.dumps(
            {
                "stage": "train",
                "dataset": dataset,
                "protocol": protocol,
                "model": backbone,
                "seed": seed,
                "tags": tags,
                "summary": summary,
                "provenance": {"git_commit": "abc123"},
                **bb,
            }
        )
    )
    if trace is not None:
        pd.DataFrame(trace).to_csv(run / "trace.csv", index=False)
    if mrr is not None:
        diag = (
            {"anchor_diagnostic": {"anchor_outscores_answer": anchor, "mrr_anchor_removed": mrr, "note": "diagnostic"}}
            if anchor is not None
            else {}
        )
        (run / "metrics_test.json").write_text(
            json.dumps(
                {
                    "dataset": dataset,
                    "model": backbone,
                    "seed": seed,
                    "split": "test",
                    "mrr": mrr,
                    "hits@1": h1 if h1 is not None else mrr - 0.1,
                    "hits@10": h10 if h10 is not None else min(1.0, mrr + 0.05),
                    "num_ranked": 100,
                    "tie_policy": TIE,
                    "protocol": protocol,
                    "tags": tags,
                    "train_summary": summary,
                    "metrics": {"filtered_with": ["train", "valid", "test"]},
                    "provenance": {"git_commit": "abc123"},
                    **bb,
                    **diag,
                }
            )
        )
    return run


def read(prefix: Path, suffix: str) -> str:
    return Path(str(prefix) + suffix).read_text()


def md_row(md: str, start: str) -> list[str]:
    line = next(line for line in md.splitlines() if line.startswith(start))
    return [c.strip() for c in line.strip("|").split("|")]


# ----------------------------------------------------------------------------------------
# the published-baselines file and its loader
# ----------------------------------------------------------------------------------------
def test_published_rows_known_values():
    row = baselines.published_row("redgnn", "umls")
    assert (row["mrr"], row["hits@1"], row["hits@10"]) == (0.964, 0.946, 0.990) and "AdaProp" in row["source"]
    assert baselines.published_row("quate", "family")["mrr"] == 0.941
    assert baselines.published_row("conve", "yago3-10") == {
        "mrr": 0.520,
        "hits@1": 0.450,
        "hits@10": 0.660,
        "source": baselines.calibration_source("conve"),
        "table": "adaprop_kdd2023",
        "protocol": "redgnn",
    }
    assert baselines.published_row("RED-GNN", "UMLS")["mrr"] == 0.964  # display names work too
    assert baselines.published_row("redgnn", "yago3-10")["mrr"] == 0.559  # in the KDD table, not in RED-GNN's README
    assert baselines.published_row("adaprop", "umls", table="readme")["mrr"] == 0.9698
    assert baselines.published_row("redgnn", "yago3-10", table="readme") is None
    assert baselines.published_row("rotate", "kinship") is None


def test_backbones_without_a_published_row_say_so():
    for name in ("transe", "distmult"):
        assert baselines.published_row(name, "umls") is None and baselines.calibration_source(name) is None
        assert "not in the AdaProp / RED-GNN tables" in baselines.no_row_reason(name)
    assert baselines.published_row("complex", "umls") is None and "not in the AdaProp" in baselines.no_row_reason(
        "complex"
    )
    assert baselines.published_row("complex", "wn18rr") == {
        "mrr": 0.48,
        "hits@1": None,
        "hits@10": 0.57,
        "source": baselines.calibration_source("complex"),
        "table": "lacroix_icml2018",
        "protocol": "kge",
    }
    assert "Lacroix" in baselines.calibration_source("complex")
    assert baselines.calibration_source("rotate").startswith("RotatE, as reported in AdaProp")
    assert baselines.calibration_source("nope") is None


def test_baselines_file_is_complete_and_sourced():
    data = baselines.load()
    assert data["protocol"] == "redgnn" and "inverse-relation" in baselines.description()
    kdd = data["tables"]["adaprop_kdd2023"]["rows"]
    assert set(kdd) == {"conve", "quate", "rotate", "drum", "rnnlogic", "compgcn", "nbfnet", "redgnn", "adaprop"}
    for row in kdd.values():
        assert row["source"] and set(row["results"]) == {
            "family",
            "umls",
            "wn18rr",
            "fb15k-237",
            "nell-995",
            "yago3-10",
        }
        for vals in row["results"].values():
            assert set(vals) == {"mrr", "hits@1", "hits@10"} and all(0 < v <= 1 for v in vals.values())
    assert set(data["tables"]["readme"]["rows"]) == {"redgnn", "adaprop"}
    assert not any(k in t["rows"] for t in data["tables"].values() for k in ("transe", "distmult"))
    # ComplEx-N3's own rows (kge splits, no Hits@1 published), only where its paper measured
    lacroix = data["tables"]["lacroix_icml2018"]["rows"]
    assert set(lacroix) == {"complex"} and set(lacroix["complex"]["results"]) == {"wn18rr", "fb15k-237", "yago3-10"}


def test_baselines_import_does_not_pull_torch():
    code = "import sys, dans_kgc.baselines as b; b.published_row('rotate', 'umls'); print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------------------
# the calibration table
# ----------------------------------------------------------------------------------------
def test_calibration_mean_std_and_delta_against_the_published_row(tmp_path):
    root = tmp_path / "runs"
    # RotatE + NSSA on UMLS: MRR 0.90, 0.92 -> mean 0.910, sample std 0.01414; published 0.925 -> Δ −0.015
    runs = [
        cal_run(
            root,
            "umls",
            "rotate_nssa",
            "rotate",
            s,
            mrr=m,
            h1=h,
            trace=valid_trace([0.5, 0.7, 0.8, 0.85]),
            train_seconds=t,
            epochs_run=4,
        )
        for s, m, h, t in ((0, 0.90, 0.80, 8.0), (1, 0.92, 0.84, 12.0))
    ]
    runs.append(cal_run(root, "umls", "transe", "transe", 0, mrr=0.70, trace=valid_trace([0.5, 0.6])))
    out = tmp_path / "cal"
    written = build_report("calibration", runs, out)
    assert {p.suffix for p in written} == {".csv", ".md", ".tex", ".json"}
    csv = pd.read_csv(str(out) + ".csv").set_index("variant")
    r = csv.loc["rotate_nssa"]
    assert math.isclose(r["ours_mrr_mean"], 0.91) and math.isclose(r["ours_mrr_std"], math.sqrt(0.0002))
    assert r["published_mrr"] == 0.925 and math.isclose(r["delta_mrr"], 0.91 - 0.925)
    assert math.isclose(r["delta_hits@1"], 0.82 - 0.863) and r["n"] == 2 and r["status"] == "compared"
    assert (r["backbone"], r["mode"], r["backbone_label"]) == ("rotate", "negative_sampling", "RotatE")
    assert math.isclose(r["train_seconds_mean"], 10.0) and r["epochs_run_mean"] == 4
    assert r["published_source"].startswith("RotatE, as reported in AdaProp")
    md = read(out, ".md")
    row = md_row(md, "| UMLS | RotatE + NSSA |")
    assert row[2:4] == ["RotatE", "NS"]
    assert row[4].startswith("0.925 [") and row[5].startswith("0.863") and row[6].startswith("0.993")
    assert row[7] == "0.910 ± 0.014" and row[8] == "0.820 ± 0.028" and row[10] == "2"
    assert row[11] == "−0.015" and row[12] == "4" and row[13] == "10.0" and row[14] == "rising"
    assert "Δ MRR = ours − published" in md and "Protocol: redgnn" in md and TIE in md and "n = 1 to 2" in md
    tex = read(out, ".tex")
    assert tex.isascii() and r"\toprule" in tex and r"\multicolumn{3}{c}{Published}" in tex
    prov = json.loads(read(out, ".provenance.json"))
    assert prov["report"] == "calibration" and prov["published_baselines"]["protocol"] == "redgnn"


def test_backbone_without_published_row_shows_a_dash_and_the_note(tmp_path):
    runs = [cal_run(tmp_path / "runs", "family", "transe", "transe", s, mrr=0.6 + s / 100) for s in (0, 1)]
    out = tmp_path / "cal"
    build_report("calibration", runs, out)
    md = read(out, ".md")
    row = md_row(md, "| Family | TransE |")
    letter = row[4].split("[")[1].rstrip("]")
    assert all(c == f"— [{letter}]" for c in row[4:7])
    assert f"[{letter}] {NO_ROW} (TransE is not in the AdaProp / RED-GNN tables for these splits)" in md
    assert row[7] == "0.605 ± 0.007" and row[11] == "—"  # ours is shown, no Δ
    csv = pd.read_csv(str(out) + ".csv")
    assert csv["published_mrr"].isna().all() and csv["delta_mrr"].isna().all()
    assert csv["status"].iloc[0] == "no published row"


def test_missing_seed_and_fewer_seeds_than_expected_are_marked(tmp_path):
    root = tmp_path / "runs"
    runs = [cal_run(root, "umls", "conve_1n", "conve", s, mrr=0.93) for s in (0, 1)]
    runs.append(cal_run(root, "umls", "conve_1n", "conve", 2))  # trained, evaluation failed
    runs.append(root / "umls" / "calibration" / "conve_1n" / "seed3")  # never started
    out = tmp_path / "cal"
    build_report("calibration", runs, out)
    md = read(out, ".md")
    row = md_row(md, "| UMLS | ConvE (1-N) |")
    assert row[2:4] == ["ConvE", "1-N"] and row[10] == "2 of 4"
    assert "2 of 4 seeds; missing: seed 2" in md and "seed 3" in md and "does not exist" in md
    assert md.count("| UMLS | ConvE (1-N) |") == 1  # the never-started seed is in the ConvE row, not a row of its own
    # a recipe none of whose runs started: the backbone comes from the recipe's name, the published row still shows
    runs.append(root / "umls" / "calibration" / "quate_n3" / "seed0")
    build_report("calibration", runs, out)
    row = md_row(read(out, ".md"), "| UMLS | QuatE-N3 |")
    assert row[2:4] == ["QuatE", "—"] and row[4].startswith("0.944") and row[7].startswith("— [")
    # a short list of run folders against the expected seed count
    build_report("calibration", runs[:2], out, expected_seeds=3)
    md = read(out, ".md")
    assert md_row(md, "| UMLS | ConvE (1-N) |")[10].startswith("2 of 3 [")
    assert "fewer seeds than expected (3 per row); run folders given for 2" in md
    assert pd.read_csv(str(out) + ".csv")["n_expected"].iloc[0] == 3


def test_rising_and_flat_from_known_traces(tmp_path):
    root = tmp_path / "runs"
    rising = cal_run(root, "umls", "rotate_nssa", "rotate", 0, mrr=0.9, trace=valid_trace([0.3, None, 0.5, None, 0.6]))
    flat = cal_run(root, "umls", "rotate_nssa", "rotate", 1, mrr=0.9, trace=valid_trace([0.3, None, 0.7, None, 0.6]))
    tie = cal_run(root, "umls", "quate_n3", "quate", 0, mrr=0.9, trace=valid_trace([0.3, 0.6, 0.6]))
    up = cal_run(root, "family", "quate_n3", "quate", 0, mrr=0.9, trace=valid_trace([0.3, 0.6, 0.61]))
    one = cal_run(root, "family", "transe", "transe", 0, mrr=0.5, trace=valid_trace([None, None, 0.4]))
    assert curve_state(load_run(rising)) == {
        "state": "rising",
        "best_epoch": 5,
        "last_epoch": 5,
        "best": 0.6,
        "last": 0.6,
    }
    assert curve_state(load_run(flat))["state"] == "flat" and curve_state(load_run(flat))["best_epoch"] == 3
    assert curve_state(load_run(tie))["state"] == "flat"  # the best was reached before the last validation
    assert curve_state(load_run(up))["state"] == "rising"
    assert curve_state(load_run(one)) is None  # one validation: nothing to tell
    out = tmp_path / "cal"
    build_report("calibration", [rising, flat, tie, up, one], out)
    md = read(out, ".md")
    assert md_row(md, "| UMLS | RotatE + NSSA |")[14] == "rising (1 of 2)"
    assert md_row(md, "| UMLS | QuatE-N3 |")[14] == "flat"
    assert md_row(md, "| Family | TransE |")[14].startswith("— [")
    assert "no validation curve" in md
    csv = pd.read_csv(str(out) + ".csv").set_index(["dataset", "variant"])
    assert csv.loc[("family", "quate_n3"), "curve"] == "rising"
    assert csv.loc[("umls", "rotate_nssa"), "curve_runs"] == "seed0:rising@5/5 seed1:flat@3/5"


def test_old_calibration_runs_without_backbone_record_and_the_anchor_diagnostic(tmp_path):
    root = tmp_path / "runs"
    runs = [
        cal_run(root, "umls", "complex_n3_1n", "complex", s, mrr=0.88, record=False, anchor=a)
        for s, a in ((0, 0.10), (1, 0.20))
    ]
    out = tmp_path / "cal"
    build_report("calibration", runs, out)
    row = md_row(read(out, ".md"), "| UMLS | ComplEx-N3 (1-N) |")
    assert row[2:4] == ["ComplEx", "1-N"] and row[4].startswith("—")
    csv = pd.read_csv(str(out) + ".csv")
    assert math.isclose(csv["anchor_outscores_answer_mean"].iloc[0], 0.15)


def test_calibration_with_no_runs_writes_an_empty_table(tmp_path):
    run = cal_run(tmp_path, "umls", "rotate_nssa", "rotate", 0, mrr=0.9)
    out = tmp_path / "cal"
    build_report("calibration", [run], out, experiments=["main"])
    assert "Backbone calibration" in read(out, ".md")
    assert json.loads(read(out, ".provenance.json"))["warnings"]


# ----------------------------------------------------------------------------------------
# the calibration figure
# ----------------------------------------------------------------------------------------
def _is_png(p: Path) -> bool:
    from PIL import Image

    with Image.open(p) as img:
        dpi = img.info.get("dpi", (0, 0))[0]
    return p.stat().st_size > 1000 and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and round(dpi) >= 200


@pytest.fixture()
def curve_runs(tmp_path) -> list[Path]:
    root = tmp_path / "runs"
    runs = []
    for ds, scale in (("umls", 1.0), ("family", 0.95)):
        for seed in (0, 1):
            d = 0.05 * seed
            runs.append(
                cal_run(
                    root,
                    ds,
                    "rotate_nssa",
                    "rotate",
                    seed,
                    mrr=0.9,
                    trace=valid_trace([scale * (0.5 + 0.08 * e) + d for e in range(6)]),
                )
            )
            runs.append(
                cal_run(
                    root,
                    ds,
                    "conve_1n",
                    "conve",
                    seed,
                    mrr=0.9,
                    trace=valid_trace([scale * (0.6 + 0.1 * min(e, 3)) - d for e in range(6)]),
                )
            )
            runs.append(
                cal_run(
                    root,
                    ds,
                    "transe",
                    "transe",
                    seed,
                    mrr=0.6,
                    trace=valid_trace([scale * (0.3 + 0.05 * e) + d for e in range(6)]),
                )
            )
    runs.append(cal_run(root, "umls", "transe", "transe", 2, mrr=0.6))  # no trace: counted as missing in the title
    return runs


def test_calibration_curves_figure(curve_runs, tmp_path):
    assert {"calibration", "calibration_curves"} <= set(REPORTS)
    out = tmp_path / "fig" / "calcurves"
    written = build_report("calibration_curves", curve_runs, out)
    assert _is_png(Path(str(out) + ".png")) and Path(str(out) + ".pdf").read_bytes()[:5] == b"%PDF-"
    assert len(written) == 3
    prov = json.loads(read(out, ".provenance.json"))
    # dashed published lines: RotatE and ConvE have rows, TransE has none
    assert prov["published_lines"] == {
        "family": {"rotate": 0.921, "conve": 0.912},
        "umls": {"rotate": 0.925, "conve": 0.937},
    }


def test_calibration_curves_without_traces_says_so(tmp_path):
    out = tmp_path / "fig"
    build_report("calibration_curves", [cal_run(tmp_path, "umls", "transe", "transe", 0, mrr=0.5)], out)
    assert _is_png(Path(str(out) + ".png")) and json.loads(read(out, ".provenance.json"))["warnings"]


def test_a_published_table_on_the_kge_splits_is_compared_with_kge_runs_without_a_protocol_mark(tmp_path):
    root = tmp_path / "runs"
    # ComplEx-N3 on WN18RR: Lacroix et al.'s row is on the kge splits (0.48); a kge run of 0.45 is comparable
    # (Δ −0.030), a redgnn-protocol run of the same number is marked as not directly comparable
    kge = cal_run(root / "a", "wn18rr", "complex_n3_1n", "complex", 0, mrr=0.45, protocol="kge")
    redgnn = cal_run(root / "b", "wn18rr", "complex_n3_1n", "complex", 0, mrr=0.45, protocol="redgnn")
    assert baselines.protocol(table="lacroix_icml2018") == "kge" and baselines.protocol() == "redgnn"
    for run, marked in ((kge, False), (redgnn, True)):
        out = tmp_path / run.parents[3].name
        build_report("calibration", [run], out)
        row = md_row(read(out, ".md"), "| WN18RR |")
        assert row[4].startswith("0.480") and row[11].startswith("−0.030")
        assert (row[11] != "−0.030") is marked
        assert ("not directly comparable" in read(out, ".md")) is marked
