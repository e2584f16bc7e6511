"""Report builders on hand-made run folders with hand-chosen numbers (no training: seconds)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dans_kgc.cli import main as cli_main
from dans_kgc.reports import REPORTS, build_report
from dans_kgc.reports.figures import sweep_points, swept_parameters
from dans_kgc.reports.paper import load_targets
from dans_kgc.reports.runs import infer_from_path, load_run, load_runs

TIE = "realistic (mean of optimistic and pessimistic rank)"


def make_run(
    root: Path,
    dataset: str,
    experiment: str,
    variant: str,
    seed: int,
    *,
    mrr: float | None = None,
    h1: float | None = None,
    h10: float | None = None,
    trace: list[dict] | None = None,
    config: dict | None = None,
    protocol: str = "redgnn",
    train_seconds: float | None = None,
    best_valid: float | None = None,
    backbone: dict | None = None,
    anchor: dict | None = None,
    model: str = "transe",
    folder: str | None = None,
    tags: dict | None = None,
) -> Path:
    """A run folder as train + evaluate write it; ``mrr=None`` = evaluation never ran.
    ``backbone``: the run's backbone record (absent = a run written before it existed);
    ``anchor``: metrics_test.json's anchor_diagnostic; ``folder``: the variant folder's name
    (default ``variant``); ``tags``: more tags (``backbone``: the workflow's recipe name)."""
    run = root / dataset / experiment / (folder or variant) / f"seed{seed}"
    run.mkdir(parents=True)
    sampler = "dans" if variant in ("dans", "full", "wo_dam", "wo_ccd", "wo_dtm") else variant
    cfg = {
        "dataset": dataset,
        "seed": seed,
        "protocol": None,
        "train": {"sampler": sampler, "epochs": 10, "eval_every": 1},
        "diffusion": {"mu": 1.0, "steps": 50, "band_steps": [0.75, 0.5, 0.25, 0.0]},
        "dans": {"eta": 0.5},
    }
    for key, value in (config or {}).items():
        section, name = key.split(".")
        cfg[section][name] = value
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    tags = {"experiment": experiment, "variant": variant, **(tags or {})}
    summary = {
        "epochs_run": 10,
        "best_epoch": 10,
        "best_valid_mrr": best_valid if best_valid is not None else mrr,
        "train_seconds": train_seconds if train_seconds is not None else 10.0,
    }
    extra = {"backbone": backbone} if backbone is not None else {}
    (run / "run.json").write_text(
        json.dumps(
            {
                "stage": "train",
                "dataset": dataset,
                "protocol": protocol,
                "model": model,
                "sampler": sampler,
                "seed": seed,
                "tags": tags,
                "summary": summary,
                "provenance": {"git_commit": "abc123", "seed": seed},
                **extra,
            }
        )
    )
    if trace is not None:
        pd.DataFrame(trace).to_csv(run / "trace.csv", index=False)
    if mrr is not None:
        if anchor is not None:
            extra["anchor_diagnostic"] = anchor
        (run / "metrics_test.json").write_text(
            json.dumps(
                {
                    **extra,
                    "dataset": dataset,
                    "model": model,
                    "sampler": sampler,
                    "seed": seed,
                    "split": "test",
                    "mrr": mrr,
                    "hits@1": h1 if h1 is not None else mrr - 0.1,
                    "hits@3": mrr,
                    "hits@10": h10 if h10 is not None else min(1.0, mrr + 0.1),
                    "num_ranked": 100,
                    "tie_policy": TIE,
                    "protocol": protocol,
                    "best_epoch": 10,
                    "best_valid_mrr": mrr,
                    "tags": tags,
                    "train_summary": summary,
                    "metrics": {"filtered_with": ["train", "valid", "test"]},
                    "provenance": {"git_commit": "abc123", "seed": seed},
                }
            )
        )
    return run


def read(prefix: Path, suffix: str) -> str:
    return Path(str(prefix) + suffix).read_text()


# ----------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------
def test_builtin_reports_registered():
    assert {"main", "ablation", "efficiency", "paper", "sensitivity", "curves", "bands"} <= set(REPORTS)


def test_placement_from_path_when_nothing_was_written(tmp_path):
    assert infer_from_path(Path("res/umls/main/dans/seed3")) == {
        "seed": 3,
        "variant": "dans",
        "experiment": "main",
        "dataset": "umls",
    }
    assert infer_from_path(Path("x/experiment~ablation/variant~wo_ccd/seed=2"))["variant"] == "wo_ccd"
    rec = load_run(tmp_path / "family" / "ablation" / "wo_dtm" / "seed1")  # never created
    assert not rec.has_metrics and "does not exist" in rec.problem
    assert (rec.dataset, rec.experiment, rec.variant, rec.seed) == ("family", "ablation", "wo_dtm", 1)


def test_parent_folder_is_searched_for_runs(tmp_path):
    for seed in (0, 1):
        make_run(tmp_path, "umls", "main", "uniform", seed, mrr=0.5)
    runs = load_runs([tmp_path])
    assert sorted(r.seed for r in runs) == [0, 1]


# ----------------------------------------------------------------------------------------
# main table: mean ± std, bold, missing
# ----------------------------------------------------------------------------------------
@pytest.fixture()
def main_runs(tmp_path) -> list[Path]:
    root = tmp_path / "runs"
    runs = []
    # uniform: MRR 0.5, 0.6, 0.7 -> mean 0.600, sample std 0.100; Hits@1 fixed at 0.30 (worse than bernoulli)
    for seed, m in zip((0, 1, 2), (0.5, 0.6, 0.7), strict=True):
        runs.append(make_run(root, "umls", "main", "uniform", seed, mrr=m, h1=0.30, h10=0.90))
    # bernoulli: MRR 0.40, 0.50 -> mean 0.450, std 0.0707...; Hits@1 0.35, 0.45 -> mean 0.400 (best)
    for seed, m, h in zip((0, 1), (0.40, 0.50), (0.35, 0.45), strict=True):
        runs.append(make_run(root, "umls", "main", "bernoulli", seed, mrr=m, h1=h, h10=0.95))
    # dans: training finished, evaluation failed (no metrics_test.json); and one run that never started
    runs.append(make_run(root, "umls", "main", "dans", 0))
    runs.append(root / "umls" / "main" / "dans" / "seed1")
    # another experiment: must be ignored by the main table
    runs.append(make_run(root, "umls", "ablation", "full", 0, mrr=0.99))
    return runs


def test_main_table_mean_std_bold_and_missing(main_runs, tmp_path):
    out = tmp_path / "rep" / "main"
    written = build_report("main", main_runs, out)
    assert {p.suffix for p in written} >= {".csv", ".md", ".tex", ".json"}
    md, tex = read(out, ".md"), read(out, ".tex")
    # hand-computed: mean(0.5, 0.6, 0.7) = 0.6, sample std = 0.1; mean(0.4, 0.5) = 0.45, std = 0.0707
    assert "**0.600 ± 0.100**" in md  # best MRR in bold
    assert "0.450 ± 0.071" in md and "**0.450 ± 0.071**" not in md
    assert "**0.400 ± 0.071**" in md  # bernoulli has the best Hits@1
    assert "0.300 ± 0.000" in md and "**0.300 ± 0.000**" not in md
    # missing runs: a dash with a footnote that names the run and why
    dans_row = next(line for line in md.splitlines() if line.startswith("| TransE (NS) | DANS-KGC"))
    assert dans_row.count("—") == 3 and "[a]" in dans_row
    assert "no metrics_test.json" in md and "does not exist" in md
    assert "Self-adversarial" not in md and "full" not in md  # ablation runs are not in the main table
    # caption: protocol, tie policy, seeds
    assert "Protocol: redgnn" in md and TIE in md and "n = 2 to 3" in md
    # LaTeX: booktabs, bold, escaped
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"\textbf{0.600 $\pm$ 0.100}" in tex
    assert r"\multicolumn{3}{c}{UMLS}" in tex
    assert tex.isascii()  # pdflatex-safe: ±, —, Δ ... are written as LaTeX
    # tidy CSV
    csv = pd.read_csv(str(out) + ".csv")
    row = csv[(csv.variant == "uniform") & (csv.metric == "mrr")].iloc[0]
    assert math.isclose(row["mean"], 0.6) and math.isclose(row["std"], 0.1) and row["n"] == 3 and row["best"]
    row = csv[(csv.variant == "bernoulli") & (csv.metric == "mrr")].iloc[0]
    assert math.isclose(row["std"], math.sqrt(0.005))
    assert csv[(csv.variant == "dans")]["n"].eq(0).all()
    # provenance sidecar
    prov = json.loads(read(out, ".provenance.json"))
    assert prov["report"] == "main" and "abc123" in prov["input_git_commits"]
    assert len(prov["missing_inputs"]) == 2 and prov["packages"]["matplotlib"]
    assert any(i["experiment"] == "ablation" for i in prov["ignored_inputs"])
    assert prov["peak_rss_mib"] > 10  # an interpreter with pandas loaded: tens of MiB at least


def test_partial_seeds_and_single_seed_are_footnoted(tmp_path):
    root = tmp_path / "runs"
    runs = [make_run(root, "family", "ablation", "full", s, mrr=0.99) for s in (0, 1)]
    runs.append(make_run(root, "family", "ablation", "full", 2))  # evaluation failed
    runs.append(make_run(root, "family", "ablation", "wo_ccd", 0, mrr=0.98))
    out = tmp_path / "abl"
    build_report("ablation", runs, out)
    md = read(out, ".md")
    assert "2 of 3 seeds; missing: seed 2" in md
    assert "single seed: no standard deviation" in md
    for name in ("DANS-KGC (full)", "w/o DAM", "w/o CCD", "w/o DTM"):
        assert f"| {name} |" in md
    assert "no run given for this cell" in md  # w/o DAM / w/o DTM have no run at all


def test_all_runs_failed_still_writes_a_table(tmp_path):
    runs = [tmp_path / "umls" / "main" / "dans" / "seed0", make_run(tmp_path, "umls", "main", "dans", 1)]
    out = tmp_path / "t"
    build_report("main", runs, out)
    assert "no evaluated run" in read(out, ".md")


# ----------------------------------------------------------------------------------------
# backbones: rows keyed by (backbone, variant)
# ----------------------------------------------------------------------------------------
ROTATE = {"name": "rotate", "mode": "negative_sampling", "label": "RotatE", "calibration_source": None}
CONVE = {"name": "conve", "mode": "one_to_n", "label": "ConvE", "calibration_source": "AdaProp KDD 2023"}


def _md_row(md: str, start: str) -> list[str]:
    line = next(line for line in md.splitlines() if line.startswith(start))
    return [c.strip() for c in line.strip("|").split("|")]


def test_backbone_column_separates_two_backbones_running_the_same_sampler(tmp_path):
    root = tmp_path / "runs"
    # uniform on TransE (old runs: no backbone record, model from run.json): 0.40, 0.50 -> 0.450
    runs = [make_run(root / "t", "umls", "main", "uniform", s, mrr=m) for s, m in ((0, 0.40), (1, 0.50))]
    # uniform on RotatE: 0.80, 0.90 -> 0.850; dans on RotatE: 0.70 (worse than RotatE's uniform)
    runs += [
        make_run(root / "r", "umls", "main", "uniform", s, mrr=m, backbone=ROTATE) for s, m in ((0, 0.80), (1, 0.90))
    ]
    runs += [make_run(root / "r", "umls", "main", "dans", 0, mrr=0.70, backbone=ROTATE)]
    # dans on TransE: 0.60 (better than TransE's uniform)
    runs += [make_run(root / "t", "umls", "main", "dans", 0, mrr=0.60)]
    out = tmp_path / "main"
    build_report("main", runs, out)
    md = read(out, ".md")
    assert _md_row(md, "| TransE (NS) | Uniform |")[2] == "0.450 ± 0.071"
    assert _md_row(md, "| RotatE (NS) | Uniform |")[2] == "**0.850 ± 0.071**"  # best on RotatE
    assert _md_row(md, "| TransE (NS) | DANS-KGC |")[2].startswith("**0.600**")  # best on TransE: bold per backbone
    assert _md_row(md, "| RotatE (NS) | DANS-KGC |")[2].startswith("0.700")
    assert "Backbones: TransE (NS), RotatE (NS)" in md and "within each backbone" in md
    csv = pd.read_csv(str(out) + ".csv")
    mrr = csv[csv.metric == "mrr"].set_index(["backbone", "variant"])
    assert math.isclose(mrr.loc[("transe", "uniform"), "mean"], 0.45)
    assert math.isclose(mrr.loc[("rotate", "uniform"), "mean"], 0.85) and mrr.loc[("rotate", "uniform"), "n"] == 2
    assert set(csv["mode"]) == {"negative_sampling"}
    # the same split in efficiency, paper and ablation
    build_report("efficiency", runs, tmp_path / "eff")
    eff = pd.read_csv(str(tmp_path / "eff") + ".csv")
    assert len(eff) == 4 and set(zip(eff.backbone, eff.variant, strict=True)) == {
        ("transe", "uniform"),
        ("transe", "dans"),
        ("rotate", "uniform"),
        ("rotate", "dans"),
    }
    build_report("paper", runs, tmp_path / "paper")
    pmd = read(tmp_path / "paper", ".md")
    assert (
        "| main | UMLS | TransE (NS) | DANS-KGC | 0.972" in pmd
        and "| main | UMLS | RotatE (NS) | DANS-KGC | 0.972" in pmd
    )
    assert _md_row(pmd, "| main | UMLS | RotatE (NS) | DANS-KGC |")[6] == "−0.272"


def test_one_backbone_table_reads_cleanly_and_a_missing_seed_stays_in_its_row(tmp_path):
    root = tmp_path / "runs"
    runs = [make_run(root, "umls", "main", "uniform", s, mrr=0.5, backbone=CONVE) for s in (0, 1)]
    runs.append(root / "umls" / "main" / "uniform" / "seed2")  # never started: no backbone written
    out = tmp_path / "main"
    build_report("main", runs, out)
    md = read(out, ".md")
    body = [line for line in md.splitlines() if line.startswith("| ConvE")]
    assert len(body) == 1 and "unknown" not in md  # one row, the missing seed in it
    assert "2 of 3 seeds; missing: seed 2" in md
    assert "Backbone: ConvE (1-N) for every row (1-N = 1-N scoring)" in md
    assert "Diag." not in md  # no run has the anchor diagnostic: no column
    rec = next(r for r in load_runs(runs) if r.seed == 2)
    assert rec.backbone_key == ("conve", "one_to_n", None) and rec.backbone_inferred


def test_crossed_workflow_layout_recipe_rows_and_a_never_started_seed(tmp_path):
    """The workflow crosses a variant with backbone recipes: folders <variant>@<recipe>, tags.backbone = recipe."""
    root = tmp_path / "runs"
    runs = []
    for recipe, bb, mrrs in (
        ("rotate_nssa", ROTATE, (0.80, 0.90)),
        ("rotate_long", ROTATE, (0.60, 0.70)),
        ("conve_1n", CONVE, (0.50, 0.50)),
    ):
        for seed, m in enumerate(mrrs):
            runs.append(
                make_run(
                    root,
                    "umls",
                    "main",
                    "uniform",
                    seed,
                    mrr=m,
                    backbone=bb,
                    folder=f"uniform@{recipe}",
                    tags={"backbone": recipe},
                )
            )
    runs.append(root / "umls" / "main" / "uniform@rotate_long" / "seed2")  # never started
    assert infer_from_path(runs[-1])["recipe"] == "rotate_long" and infer_from_path(runs[-1])["variant"] == "uniform"
    out = tmp_path / "main"
    build_report("main", runs, out)
    md = read(out, ".md")
    # two recipes of one model and mode are two rows, told apart by the recipe; ConvE needs no tag
    assert _md_row(md, "| RotatE (NS) [rotate_nssa] | Uniform |")[2] == "0.850 ± 0.071"
    long_row = _md_row(md, "| RotatE (NS) [rotate_long] | Uniform |")
    assert long_row[2].startswith("0.650 ± 0.071 [")  # the never-started seed is in its recipe's row
    assert "2 of 3 seeds; missing: seed 2" in md
    assert _md_row(md, "| ConvE (1-N) | Uniform |")[2] == "0.500 ± 0.000"
    assert len([line for line in md.splitlines() if line.startswith("| ")]) == 1 + 3  # header and 3 rows
    csv = pd.read_csv(str(out) + ".csv")
    assert set(csv.backbone_recipe) == {"rotate_nssa", "rotate_long", "conve_1n"}


def test_old_runs_take_the_backbone_from_the_config(tmp_path):
    run = make_run(tmp_path, "umls", "main", "uniform", 0, mrr=0.5, model="ignored")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["model"] = {"name": "complex"}
    cfg["train"]["mode"] = "one_to_n"
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    for f in ("run.json", "metrics_test.json"):  # no top-level model field either
        d = json.loads((run / f).read_text())
        d.pop("model")
        (run / f).write_text(json.dumps(d))
    assert load_run(run).backbone_key == ("complex", "one_to_n", None)
    other = make_run(tmp_path / "b", "umls", "main", "uniform", 0, mrr=0.5, model="distmult")
    assert load_run(other).backbone_key == ("distmult", "negative_sampling", None)  # train.mode default
    assert load_run(other).backbone_text == "DistMult (NS)"


def test_efficiency_compares_samplers_within_a_backbone(tmp_path):
    root = tmp_path / "runs"
    # TransE: uniform 1 s/epoch, dans 2 s/epoch -> 2.00x; RotatE: uniform 4 s/epoch, dans 6 s/epoch -> 1.50x
    # targets: 0.9 x each backbone's own uniform best valid MRR: 0.45 (TransE), 0.54 (RotatE)
    for bb, sub, secs, base in ((None, "t", (1.0, 2.0), 0.5), (ROTATE, "r", (4.0, 6.0), 0.6)):
        for v, s, top in (("uniform", secs[0], base), ("dans", secs[1], 0.8)):
            make_run(
                root / sub,
                "umls",
                "main",
                v,
                0,
                mrr=top,
                best_valid=top,
                backbone=bb,
                trace=_trace([s] * 4, [top * f for f in (0.25, 0.5, 0.75, 1.0)]),
            )
    out = tmp_path / "eff"
    build_report("efficiency", [root], out)
    lines = [re.sub(r" \[[a-z]\]", "", line) for line in read(out, ".md").splitlines()]
    assert "| UMLS | TransE (NS) | Uniform | 1.00 | 1.00× |" in lines[4]
    assert "|  |  | DANS-KGC | 2.00 | 2.00× |" in lines[5]
    assert "|  | RotatE (NS) | Uniform | 4.00 | 1.00× |" in lines[6]
    assert "|  |  | DANS-KGC | 6.00 | 1.50× |" in lines[7]
    targets = json.loads(read(out, ".provenance.json"))["targets"]["umls"]
    assert targets["valid_mrr"] is None and targets["source"] == "per backbone"
    assert math.isclose(targets["backbones"]["TransE (NS)"]["valid_mrr"], 0.45)
    assert math.isclose(targets["backbones"]["RotatE (NS)"]["valid_mrr"], 0.54)


def test_main_table_anchor_diagnostic_column(tmp_path):
    root = tmp_path / "runs"
    runs = [
        make_run(
            root,
            "family",
            "main",
            "uniform",
            s,
            mrr=0.5,
            anchor={"anchor_outscores_answer": a, "mrr_anchor_removed": 0.6, "note": "diagnostic"},
        )
        for s, a in ((0, 0.70), (1, 0.78))
    ]
    runs.append(
        make_run(
            root,
            "family",
            "main",
            "bernoulli",
            0,
            mrr=0.45,
            anchor={"anchor_outscores_answer": 0.9, "mrr_anchor_removed": 0.6, "note": "diagnostic"},
        )
    )
    runs.append(make_run(root, "family", "main", "dans", 0, mrr=0.4))  # an older run without the diagnostic
    out = tmp_path / "main"
    build_report("main", runs, out)
    md = read(out, ".md")
    assert "| Backbone | Sampler | Family MRR | Family Hits@1 | Family Hits@10 | Family Diag.: anchor > answer |" in md
    row = _md_row(md, "| TransE (NS) | Uniform |")
    assert row[5] == "0.740 ± 0.057" and row[2] == "**0.500 ± 0.000**"
    assert _md_row(md, "| TransE (NS) | Bernoulli |")[5].startswith("0.900")  # a diagnostic is never bold
    assert _md_row(md, "| TransE (NS) | DANS-KGC |")[5].startswith("—")
    assert "is a diagnostic, not a result" in md
    csv = pd.read_csv(str(out) + ".csv")
    diag = csv[csv.metric == "anchor_outscores_answer"]
    assert diag["diagnostic"].all() and not diag["best"].any()
    assert math.isclose(diag[diag.variant == "uniform"]["mean"].iloc[0], 0.74)
    assert r"\multicolumn{4}{c}{Family}" in read(out, ".tex")


def test_relations_table_averages_each_relation_over_seeds_and_names_runs_without_it(tmp_path):
    root = tmp_path / "runs"

    def anchor(sister_mrr, sister_share):
        return {
            "anchor_outscores_answer": 0.1,
            "mrr_anchor_removed": 0.9,
            "note": "diagnostic",
            "by_relation": {
                "sister": {
                    "rankings": 10,
                    "anchor_outscores_answer": sister_share,
                    "mrr": sister_mrr,
                    "mrr_anchor_removed": 0.98,
                },
                "aunt": {"rankings": 20, "anchor_outscores_answer": 0.0, "mrr": 0.9, "mrr_anchor_removed": 0.9},
            },
        }

    with_partial = anchor(0.7, 0.5)
    with_partial["by_relation"]["uncle"] = {"rankings": 4, "mrr": 0.5}  # no anchor share: the MRR alone, no crash
    make_run(root, "family", "main", "uniform", 0, mrr=0.8, anchor=with_partial)
    make_run(root, "family", "main", "uniform", 1, mrr=0.8, anchor=anchor(0.8, 0.6))
    old = make_run(
        root,
        "family",
        "main",
        "uniform",
        2,
        mrr=0.8,
        anchor={"anchor_outscores_answer": 0.1, "mrr_anchor_removed": 0.9, "note": "d"},
    )
    out = tmp_path / "rel"
    build_report("relations", [root], out)
    md = read(out, ".md")
    assert _md_row(md, "| Family | aunt |")[2] == "0.900 (0%)"
    assert _md_row(md, "|  | sister |")[2] == "0.750 (55%)"  # (0.7 + 0.8) / 2, (50% + 60%) / 2
    assert _md_row(md, "|  | uncle |")[2] == "0.500"
    assert str(old) in md and "Left out" in md  # the run evaluated before the breakdown is named, not averaged in
    frame = pd.read_csv(str(out) + ".csv")
    sister = frame[frame.relation == "sister"].iloc[0]
    assert sister["n"] == 2 and math.isclose(sister["mrr_anchor_removed"], 0.98)


# ----------------------------------------------------------------------------------------
# paper vs ours
# ----------------------------------------------------------------------------------------
def test_paper_targets_file_holds_only_known_numbers_with_sources():
    data = load_targets()
    got = {(t["table"], t["dataset"], t["variant"], t["metric"]): t["value"] for t in data["targets"]}
    assert got == {
        ("main", "umls", "dans", "mrr"): 0.972,
        ("main", "yago3-10", "dans", "mrr"): 0.572,
        ("ablation", "family", "full", "mrr"): 0.994,
        ("ablation", "family", "wo_ccd", "mrr"): 0.989,
    }
    assert all(t["source"] for t in data["targets"])
    refs = {r["method"]: r for r in data["references"]}
    assert refs["RED-GNN"]["results"]["umls"]["mrr"] == 0.964 and "yago3-10" not in refs["RED-GNN"]["results"]
    assert refs["AdaProp"]["results"]["yago3-10"]["mrr"] == 0.5738
    assert all("README" in r["source"] for r in refs.values())


def test_paper_table_difference_and_not_reported(tmp_path):
    root = tmp_path / "runs"
    # ours on UMLS: 0.96, 0.97, 0.98 -> mean 0.970; paper 0.972 -> difference -0.002
    runs = [
        make_run(root, "umls", "main", "dans", s, mrr=m) for s, m in zip((0, 1, 2), (0.96, 0.97, 0.98), strict=True)
    ]
    runs += [make_run(root, "umls", "main", "uniform", 0, mrr=0.9)]
    out = tmp_path / "paper"
    build_report("paper", runs, out)
    md = read(out, ".md")
    umls = next(line for line in md.splitlines() if "| UMLS | TransE (NS) | DANS-KGC |" in line)
    cells = [c.strip() for c in umls.strip("|").split("|")]
    assert cells[4].startswith("0.972") and cells[5] == "0.970 ± 0.010 (n=3)" and cells[6] == "−0.002"
    assert cells[7] == "not reported" and cells[9] == "—"  # Hits@1: the paper's number is unknown
    uniform = next(line for line in md.splitlines() if "| UMLS | TransE (NS) | Uniform |" in line)
    assert uniform.count("not reported") == 3
    # YAGO3-10 and the Family ablation are known paper cells without runs: shown, ours missing
    assert "| YAGO3-10 |  | DANS-KGC | 0.572" in md and "| Family |  | w/o CCD | 0.989" in md
    # reference rows with sources
    assert "| RED-GNN | UMLS | 0.964 | 0.946 | 0.990 |" in md and "| AdaProp | YAGO3-10 | 0.5738 |" in md
    assert "LARS-research/RED-GNN README.md @ 5e2ccad" in md
    assert "| RED-GNN | YAGO3-10 | not reported |" in md
    csv = pd.read_csv(str(out) + ".csv")
    row = csv[
        (csv.kind == "paper_target") & (csv.dataset == "umls") & (csv.variant == "dans") & (csv.metric == "mrr")
    ].iloc[0]
    assert math.isclose(row["diff"], -0.002, abs_tol=1e-12) and row["status"] == "compared"
    assert r"\toprule" in read(out, ".tex") and read(out, ".tex").isascii()


def test_paper_flags_protocol_mismatch(tmp_path):
    runs = [make_run(tmp_path, "umls", "main", "dans", 0, mrr=0.9, protocol="kge")]
    out = tmp_path / "p"
    build_report("paper", runs, out)
    assert "not directly comparable" in read(out, ".md")


# ----------------------------------------------------------------------------------------
# efficiency
# ----------------------------------------------------------------------------------------
def _trace(seconds: list[float], valid: list[float]) -> list[dict]:
    rows, total = [], 0.0
    for e, (s, v) in enumerate(zip(seconds, valid, strict=True), 1):
        total += s
        rows.append({"epoch": e, "seconds": s, "train_seconds": total, "loss": 1.0 / e, "valid_mrr": v})
    return rows


def test_efficiency_table(tmp_path):
    root = tmp_path / "runs"
    # uniform: median s/epoch 1.0; best valid 0.5 -> target 0.45, reached at epoch 3 (3 s)
    runs = [
        make_run(
            root,
            "umls",
            "main",
            "uniform",
            0,
            mrr=0.5,
            train_seconds=4.0,
            best_valid=0.5,
            trace=_trace([1.0, 1.0, 1.0, 1.0], [0.2, 0.4, 0.46, 0.5]),
        )
    ]
    # dans: median s/epoch 2.0 (ratio 2.00x), reaches 0.45 at epoch 2 (4 s)
    runs.append(
        make_run(
            root,
            "umls",
            "main",
            "dans",
            0,
            mrr=0.6,
            train_seconds=8.0,
            best_valid=0.6,
            trace=_trace([2.0, 2.0, 2.0, 2.0], [0.3, 0.5, 0.55, 0.6]),
        )
    )
    # bernoulli: never reaches the target
    runs.append(
        make_run(
            root,
            "umls",
            "main",
            "bernoulli",
            0,
            mrr=0.3,
            train_seconds=2.0,
            best_valid=0.3,
            trace=_trace([0.5, 0.5, 0.5, 0.5], [0.1, 0.2, 0.3, 0.3]),
        )
    )
    out = tmp_path / "eff"
    build_report("efficiency", runs, out)
    md = read(out, ".md")
    assert "single seed: no standard deviation" in md
    lines = [re.sub(r" \[[a-z]\]", "", line) for line in md.splitlines()]  # drop footnote marks
    uni = next(line for line in lines if "| Uniform |" in line)
    dans = next(line for line in lines if "| DANS-KGC |" in line)
    bern = next(line for line in lines if "| Bernoulli |" in line)
    assert "| 1.00 | 1.00× | 4.00 | 0.450 | 3.00 | 3 |" in uni
    assert "| 2.00 | 2.00× | 8.00 |  | 4.00 | 2 |" in dans
    assert "not reached" in bern and "0.50×" in bern
    assert "0.9 × uniform's best valid MRR" in md
    assert read(out, ".tex").isascii() and r"\toprule" in read(out, ".tex")
    # an absolute target overrides
    build_report("efficiency", runs, out, target_mrr=0.55)
    md = read(out, ".md")
    assert next(line for line in md.splitlines() if "| Uniform |" in line).count("not reached") == 2
    assert json.loads(read(out, ".provenance.json"))["targets"]["umls"]["valid_mrr"] == 0.55


# ----------------------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------------------
def _is_png(p: Path) -> bool:
    from PIL import Image

    with Image.open(p) as img:
        dpi = img.info.get("dpi", (0, 0))[0]
    return p.stat().st_size > 1000 and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and round(dpi) >= 200


def _is_pdf(p: Path) -> bool:
    return p.stat().st_size > 1000 and p.read_bytes()[:5] == b"%PDF-"


def test_sensitivity_detects_the_swept_parameter_and_plots(tmp_path):
    root = tmp_path / "runs"
    runs = []
    for mu in (0.0, 1.0, 2.0):
        for seed in (0, 1):
            runs.append(
                make_run(
                    root / f"mu{mu}",
                    "family",
                    "sens_mu",
                    "dans",
                    seed,
                    mrr=0.9 + 0.01 * mu + 0.002 * seed,
                    config={"diffusion.mu": mu},
                )
            )
    for eta in (0.1, 0.5):
        runs.append(
            make_run(root / f"eta{eta}", "family", "sens_eta", "dans", 0, mrr=0.9 + eta / 10, config={"dans.eta": eta})
        )
    runs.append(root / "missing" / "family" / "sens_mu" / "dans" / "seed5")
    sweeps = swept_parameters(load_runs(runs))
    assert list(sweeps) == ["diffusion.mu", "dans.eta"]
    out = tmp_path / "fig" / "sens"
    written = build_report("sensitivity", runs, out)
    assert _is_png(Path(str(out) + ".png")) and _is_pdf(Path(str(out) + ".pdf"))
    prov = json.loads(read(out, ".provenance.json"))
    assert prov["swept_parameters"]["diffusion.mu"] == [0.0, 1.0, 2.0]
    assert len(written) == 3


def test_sensitivity_splits_one_experiment_holding_two_sweeps(tmp_path):
    """The DAG's layout: one experiment `sensitivity`, variants mu<v> (eta at 0.5) and eta<v> (mu at 1.0).
    Each panel gets its own sweep only, and the shared base point counts once per seed."""
    root = tmp_path / "runs"
    runs = []
    for seed in (0, 1):
        for mu in (0.0, 1.0, 2.0):
            runs.append(
                make_run(
                    root,
                    "umls",
                    "sensitivity",
                    f"mu{mu}",
                    seed,
                    mrr=0.50 + 0.1 * mu + 0.01 * seed,
                    config={"diffusion.mu": mu, "dans.eta": 0.5},
                )
            )
        for eta in (0.1, 0.5, 0.9):
            runs.append(
                make_run(
                    root,
                    "umls",
                    "sensitivity",
                    f"eta{eta}",
                    seed,
                    mrr=(0.60 if eta == 0.5 else 0.2 + eta / 10) + 0.01 * seed,
                    config={"diffusion.mu": 1.0, "dans.eta": eta},
                )
            )
    sweeps = swept_parameters(load_runs(runs))
    assert list(sweeps) == ["diffusion.mu", "dans.eta"]
    assert {r.variant for r in sweeps["diffusion.mu"]} == {"mu0.0", "mu1.0", "mu2.0", "eta0.5"}
    assert {r.variant for r in sweeps["dans.eta"]} == {"eta0.1", "eta0.5", "eta0.9", "mu1.0"}
    mu_pts = sweep_points(sweeps["diffusion.mu"], "diffusion.mu")
    assert mu_pts == {0.0: [0.50, 0.51], 1.0: [0.60, 0.61], 2.0: [pytest.approx(0.70), pytest.approx(0.71)]}
    eta_pts = sweep_points(sweeps["dans.eta"], "dans.eta")
    assert sorted(eta_pts) == [0.1, 0.5, 0.9] and all(len(v) == 2 for v in eta_pts.values())
    out = tmp_path / "fig" / "sens"
    build_report("sensitivity", runs, out)
    prov = json.loads(read(out, ".provenance.json"))
    assert prov["swept_parameters"] == {"diffusion.mu": [0.0, 1.0, 2.0], "dans.eta": [0.1, 0.5, 0.9]}


def test_curves_and_bands_figures(tmp_path):
    root = tmp_path / "runs"
    runs = []
    for v, slow in (("uniform", 1.0), ("dans", 2.0)):
        for seed in (0, 1):
            trace = _trace([slow] * 6, [0.1 * e + 0.01 * seed for e in range(1, 7)])
            if v == "dans":
                for e, row in enumerate(trace):
                    w4 = e / 10
                    row.update(band_w1=0.4 - w4 / 2, band_w2=0.3, band_w3=0.3 - w4 / 2, band_w4=w4)
            runs.append(make_run(root, "umls", "main", v, seed, mrr=0.5, trace=trace))
    runs.append(make_run(root, "umls", "main", "dans", 2))  # no trace (failed early)
    for kind in ("curves", "bands"):
        out = tmp_path / "fig" / kind
        build_report(kind, runs, out)
        assert _is_png(Path(str(out) + ".png")) and _is_pdf(Path(str(out) + ".pdf"))


def test_figures_split_backbones(tmp_path):
    """A crossed preset: the same sampler / sweep on two backbones whose configs differ in model.* keys."""
    root = tmp_path / "runs"
    runs = []
    for bb, gamma, sub in ((None, 9.0, "t"), (ROTATE, 6.0, "r")):
        for mu in (0.0, 1.0):
            for seed in (0, 1):
                cfg = {"diffusion.mu": mu}
                r = make_run(
                    root / sub / f"mu{mu}",
                    "umls",
                    "sensitivity",
                    "dans",
                    seed,
                    mrr=0.5 + 0.1 * mu + (0.2 if bb else 0),
                    backbone=bb,
                    config=cfg,
                )
                c = yaml.safe_load((r / "config.yaml").read_text())
                c["model"] = {"gamma": gamma, "dim": 64}
                (r / "config.yaml").write_text(yaml.safe_dump(c))
                runs.append(r)
        for v in ("uniform", "dans"):
            for seed in (0, 1):
                trace = _trace([1.0] * 5, [0.1 * e + (0.2 if bb else 0.0) for e in range(1, 6)])
                if v == "dans":
                    for row in trace:
                        row.update(band_w1=0.5, band_w2=0.5)
                runs.append(make_run(root / sub, "umls", "main", v, seed, mrr=0.5, trace=trace, backbone=bb))
    sweeps = swept_parameters(load_runs(runs))
    assert list(sweeps) == ["diffusion.mu"]  # model.gamma differs between backbones, not within one
    assert len(sweeps["diffusion.mu"]) == 8
    # each backbone is its own line: no (value, seed) point of one backbone hides the other's
    by_bb = {
        bk: sweep_points([r for r in sweeps["diffusion.mu"] if r.backbone_key == bk], "diffusion.mu")
        for bk in {r.backbone_key for r in sweeps["diffusion.mu"]}
    }
    assert by_bb[("rotate", "negative_sampling", None)] == {0.0: [0.7, 0.7], 1.0: [pytest.approx(0.8)] * 2}
    for kind in ("sensitivity", "curves", "bands"):
        out = tmp_path / "fig" / kind
        build_report(kind, runs, out)
        assert _is_png(Path(str(out) + ".png")), kind
        prov = json.loads(read(out, ".provenance.json"))
        assert not prov["warnings"], kind
        if kind == "sensitivity":  # one line per backbone, each with both seeds at each value
            assert prov["lines"]["diffusion.mu"]["umls"] == [
                {"line": "all samplers on TransE (NS)", "points": {"0": 2, "1": 2}},
                {"line": "all samplers on RotatE (NS)", "points": {"0": 2, "1": 2}},
            ]
        if kind == "curves":
            assert prov["lines"]["umls"] == [
                "Uniform on TransE (NS)",
                "DANS-KGC on TransE (NS)",
                "Uniform on RotatE (NS)",
                "DANS-KGC on RotatE (NS)",
            ]


def test_figure_without_data_says_so_instead_of_crashing(tmp_path):
    runs = [make_run(tmp_path, "umls", "main", "uniform", 0, mrr=0.5)]  # no trace, no bands, nothing swept
    for kind in ("bands", "sensitivity", "curves"):
        out = tmp_path / kind
        build_report(kind, runs, out)
        assert _is_png(Path(str(out) + ".png"))
        assert json.loads(read(out, ".provenance.json"))["warnings"]


# ----------------------------------------------------------------------------------------
# CLI and plugins
# ----------------------------------------------------------------------------------------
def test_cli_report_and_plugin_file(tmp_path, capsys):
    run = make_run(tmp_path / "runs", "umls", "main", "uniform", 0, mrr=0.5)
    out = tmp_path / "cli" / "main"
    assert (
        cli_main(
            ["report", "main", "--runs", str(run), str(tmp_path / "gone"), "--out", str(out), "--title", "My table"]
        )
        == 0
    )
    assert "My table" in read(out, ".md")
    plugin = tmp_path / "my_report.py"
    plugin.write_text(
        "from dans_kgc.reports import register\n"
        "@register('count', kind='table', experiments=('main',), help='number of runs')\n"
        "def build(ctx):\n"
        "    p = ctx.path('.txt')\n"
        "    p.write_text(str(len(ctx.runs)))\n"
        "    return [p]\n"
    )
    out2 = tmp_path / "cli" / "count"
    assert cli_main(["report", "count", "--plugin", str(plugin), "--runs", str(run), "--out", str(out2)]) == 0
    assert read(out2, ".txt") == "1" and Path(str(out2) + ".provenance.json").exists()
    assert cli_main(["report", "nope", "--runs", str(run), "--out", str(out2)]) == 2
    REPORTS.pop("count", None)


def test_discovery_skips_pretraining_folders(tmp_path):
    from dans_kgc.reports.runs import discover

    for name, stage in (("pretrain", "pretrain"), ("main/uniform/seed0", "train")):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "run.json").write_text(json.dumps({"stage": stage}))
    assert discover([tmp_path]) == [tmp_path / "main/uniform/seed0"]


def test_hardness_table_reads_each_bands_last_measured_value_and_averages_seeds(tmp_path):
    # Two seeds of a DANS run with the probe's trace columns; the last epoch has no validation (NaN),
    # so the table takes epoch 2's values. Band 2 quantile: (0.8 + 0.9) / 2 = 0.85, std 0.0707.
    root = tmp_path / "runs"
    # The yardsticks (answer and hardest non-answer quantile) likewise: (0.96 + 0.98) / 2, (0.90 + 0.94) / 2.
    for seed, q2, ans, non in ((0, 0.8, 0.96, 0.90), (1, 0.9, 0.98, 0.94)):
        trace = [
            {
                "epoch": 1,
                "seconds": 1.0,
                "valid_mrr": 0.5,
                "band1_quantile": 0.1,
                "band1_active": 0.9,
                "band1_outscore": 0.0,
                "band2_quantile": 0.2,
                "band2_active": 0.9,
                "band2_outscore": 0.0,
                "answer_quantile": 0.5,
                "hardest_non_answer_quantile": 0.5,
            },
            {
                "epoch": 2,
                "seconds": 1.0,
                "valid_mrr": 0.6,
                "band1_quantile": 0.5,
                "band1_active": 0.25,
                "band1_outscore": 0.01,
                "band2_quantile": q2,
                "band2_active": 0.5,
                "band2_outscore": 0.3,
                "answer_quantile": ans,
                "hardest_non_answer_quantile": non,
            },
            {"epoch": 3, "seconds": 1.0},
        ]
        make_run(root, "umls", "main", "dans", seed, mrr=0.7, trace=trace)
    make_run(root, "umls", "main", "uniform", 0, mrr=0.6, trace=[{"epoch": 1, "seconds": 1.0, "valid_mrr": 0.5}])
    out = tmp_path / "hard"
    build_report("hardness", [root], out)
    frame = pd.read_csv(str(out) + ".csv")
    assert list(frame["variant"]) == ["dans"]  # runs without band columns are not rows
    row = frame.iloc[0]
    assert math.isclose(row["band1_quantile_mean"], 0.5) and math.isclose(row["band1_active_mean"], 0.25)
    assert math.isclose(row["band2_quantile_mean"], 0.85)
    assert math.isclose(row["band2_quantile_std"], math.sqrt(0.005), rel_tol=1e-9)
    assert math.isclose(row["band2_outscore_mean"], 0.3)
    assert "| 0.500 ± 0.000 | 0.850 ± 0.071 |" in read(out, ".md")
    assert math.isclose(row["answer_quantile_mean"], 0.97) and math.isclose(
        row["hardest_non_answer_quantile_mean"], 0.92
    )
    assert "| 0.970 ± 0.014 | 0.920 ± 0.028 |" in read(out, ".md")
    assert list(frame.columns).count("band3_quantile_mean") == 0  # the yardstick columns are no band
    # traces from before the yardsticks: the table has no such columns (rather than a column of gaps)
    old = tmp_path / "old"
    make_run(
        old,
        "umls",
        "main",
        "dans",
        0,
        mrr=0.7,
        trace=[{k: v for k, v in row.items() if "answer" not in k} for row in trace],
    )
    build_report("hardness", [old], tmp_path / "hard_old")
    assert "hardest non-answer" not in read(tmp_path / "hard_old", ".md")
    assert "answer_quantile_mean" not in pd.read_csv(str(tmp_path / "hard_old") + ".csv").columns
