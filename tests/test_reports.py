"""Report builders on hand-made run folders with hand-chosen numbers (no training: seconds)."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Optional

import pandas as pd
import pytest
import yaml

from dans_kgc.cli import main as cli_main
from dans_kgc.reports import REPORTS, build_report
from dans_kgc.reports.figures import sweep_points, swept_parameters
from dans_kgc.reports.paper import load_targets
from dans_kgc.reports.runs import infer_from_path, load_run, load_runs

TIE = "realistic (mean of optimistic and pessimistic rank)"


def make_run(root: Path, dataset: str, experiment: str, variant: str, seed: int, *,
             mrr: Optional[float] = None, h1: Optional[float] = None, h10: Optional[float] = None,
             trace: Optional[list[dict]] = None, config: Optional[dict] = None, protocol: str = "redgnn",
             train_seconds: Optional[float] = None, best_valid: Optional[float] = None) -> Path:
    """A run folder as train + evaluate write it; ``mrr=None`` = evaluation never ran."""
    run = root / dataset / experiment / variant / f"seed{seed}"
    run.mkdir(parents=True)
    sampler = "dans" if variant in ("dans", "full", "wo_dam", "wo_ccd", "wo_dtm") else variant
    cfg = {"dataset": dataset, "seed": seed, "protocol": None,
           "train": {"sampler": sampler, "epochs": 10, "eval_every": 1},
           "diffusion": {"mu": 1.0, "steps": 50, "band_steps": [0.75, 0.5, 0.25, 0.0]},
           "dans": {"eta": 0.5}}
    for key, value in (config or {}).items():
        section, name = key.split(".")
        cfg[section][name] = value
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    tags = {"experiment": experiment, "variant": variant}
    summary = {"epochs_run": 10, "best_epoch": 10, "best_valid_mrr": best_valid if best_valid is not None else mrr,
               "train_seconds": train_seconds if train_seconds is not None else 10.0}
    (run / "run.json").write_text(json.dumps({
        "stage": "train", "dataset": dataset, "protocol": protocol, "model": "transe", "sampler": sampler, "seed": seed,
        "tags": tags, "summary": summary, "provenance": {"git_commit": "abc123", "seed": seed}}))
    if trace is not None:
        pd.DataFrame(trace).to_csv(run / "trace.csv", index=False)
    if mrr is not None:
        (run / "metrics_test.json").write_text(json.dumps({
            "dataset": dataset, "model": "transe", "sampler": sampler, "seed": seed, "split": "test",
            "mrr": mrr, "hits@1": h1 if h1 is not None else mrr - 0.1, "hits@3": mrr,
            "hits@10": h10 if h10 is not None else min(1.0, mrr + 0.1), "num_ranked": 100, "tie_policy": TIE,
            "protocol": protocol, "best_epoch": 10, "best_valid_mrr": mrr, "tags": tags, "train_summary": summary,
            "metrics": {"filtered_with": ["train", "valid", "test"]},
            "provenance": {"git_commit": "abc123", "seed": seed}}))
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
        "seed": 3, "variant": "dans", "experiment": "main", "dataset": "umls"}
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
    for seed, m in zip((0, 1, 2), (0.5, 0.6, 0.7)):
        runs.append(make_run(root, "umls", "main", "uniform", seed, mrr=m, h1=0.30, h10=0.90))
    # bernoulli: MRR 0.40, 0.50 -> mean 0.450, std 0.0707...; Hits@1 0.35, 0.45 -> mean 0.400 (best)
    for seed, m, h in zip((0, 1), (0.40, 0.50), (0.35, 0.45)):
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
    dans_row = next(line for line in md.splitlines() if line.startswith("| DANS-KGC"))
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
# paper vs ours
# ----------------------------------------------------------------------------------------
def test_paper_targets_file_holds_only_known_numbers_with_sources():
    data = load_targets()
    got = {(t["table"], t["dataset"], t["variant"], t["metric"]): t["value"] for t in data["targets"]}
    assert got == {("main", "umls", "dans", "mrr"): 0.972, ("main", "yago3-10", "dans", "mrr"): 0.572,
                   ("ablation", "family", "full", "mrr"): 0.994, ("ablation", "family", "wo_ccd", "mrr"): 0.989}
    assert all(t["source"] for t in data["targets"])
    refs = {r["method"]: r for r in data["references"]}
    assert refs["RED-GNN"]["results"]["umls"]["mrr"] == 0.964 and "yago3-10" not in refs["RED-GNN"]["results"]
    assert refs["AdaProp"]["results"]["yago3-10"]["mrr"] == 0.5738
    assert all("README" in r["source"] for r in refs.values())


def test_paper_table_difference_and_not_reported(tmp_path):
    root = tmp_path / "runs"
    # ours on UMLS: 0.96, 0.97, 0.98 -> mean 0.970; paper 0.972 -> difference -0.002
    runs = [make_run(root, "umls", "main", "dans", s, mrr=m) for s, m in zip((0, 1, 2), (0.96, 0.97, 0.98))]
    runs += [make_run(root, "umls", "main", "uniform", 0, mrr=0.9)]
    out = tmp_path / "paper"
    build_report("paper", runs, out)
    md = read(out, ".md")
    umls = next(line for line in md.splitlines() if "| UMLS | DANS-KGC |" in line)
    cells = [c.strip() for c in umls.strip("|").split("|")]
    assert cells[3].startswith("0.972") and cells[4] == "0.970 ± 0.010 (n=3)" and cells[5] == "−0.002"
    assert cells[6] == "not reported" and cells[8] == "—"  # Hits@1: the paper's number is unknown
    uniform = next(line for line in md.splitlines() if "| UMLS | Uniform |" in line)
    assert uniform.count("not reported") == 3
    # YAGO3-10 and the Family ablation are known paper cells without runs: shown, ours missing
    assert "| YAGO3-10 | DANS-KGC | 0.572" in md and "| Family | w/o CCD | 0.989" in md
    # reference rows with sources
    assert "| RED-GNN | UMLS | 0.964 | 0.946 | 0.990 |" in md and "| AdaProp | YAGO3-10 | 0.5738 |" in md
    assert "LARS-research/RED-GNN README.md @ 5e2ccad" in md
    assert "| RED-GNN | YAGO3-10 | not reported |" in md
    csv = pd.read_csv(str(out) + ".csv")
    row = csv[(csv.kind == "paper_target") & (csv.dataset == "umls") & (csv.variant == "dans") & (csv.metric == "mrr")].iloc[0]
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
    for e, (s, v) in enumerate(zip(seconds, valid), 1):
        total += s
        rows.append({"epoch": e, "seconds": s, "train_seconds": total, "loss": 1.0 / e, "valid_mrr": v})
    return rows


def test_efficiency_table(tmp_path):
    root = tmp_path / "runs"
    # uniform: median s/epoch 1.0; best valid 0.5 -> target 0.45, reached at epoch 3 (3 s)
    runs = [make_run(root, "umls", "main", "uniform", 0, mrr=0.5, train_seconds=4.0, best_valid=0.5,
                     trace=_trace([1.0, 1.0, 1.0, 1.0], [0.2, 0.4, 0.46, 0.5]))]
    # dans: median s/epoch 2.0 (ratio 2.00x), reaches 0.45 at epoch 2 (4 s)
    runs.append(make_run(root, "umls", "main", "dans", 0, mrr=0.6, train_seconds=8.0, best_valid=0.6,
                         trace=_trace([2.0, 2.0, 2.0, 2.0], [0.3, 0.5, 0.55, 0.6])))
    # bernoulli: never reaches the target
    runs.append(make_run(root, "umls", "main", "bernoulli", 0, mrr=0.3, train_seconds=2.0, best_valid=0.3,
                         trace=_trace([0.5, 0.5, 0.5, 0.5], [0.1, 0.2, 0.3, 0.3])))
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
            runs.append(make_run(root / f"mu{mu}", "family", "sens_mu", "dans", seed, mrr=0.9 + 0.01 * mu + 0.002 * seed,
                                 config={"diffusion.mu": mu}))
    for eta in (0.1, 0.5):
        runs.append(make_run(root / f"eta{eta}", "family", "sens_eta", "dans", 0, mrr=0.9 + eta / 10,
                             config={"dans.eta": eta}))
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
            runs.append(make_run(root, "umls", "sensitivity", f"mu{mu}", seed, mrr=0.50 + 0.1 * mu + 0.01 * seed,
                                 config={"diffusion.mu": mu, "dans.eta": 0.5}))
        for eta in (0.1, 0.5, 0.9):
            runs.append(make_run(root, "umls", "sensitivity", f"eta{eta}", seed,
                                 mrr=(0.60 if eta == 0.5 else 0.2 + eta / 10) + 0.01 * seed,
                                 config={"diffusion.mu": 1.0, "dans.eta": eta}))
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
    assert cli_main(["report", "main", "--runs", str(run), str(tmp_path / "gone"), "--out", str(out),
                     "--title", "My table"]) == 0
    assert "My table" in read(out, ".md")
    plugin = tmp_path / "my_report.py"
    plugin.write_text(
        "from dans_kgc.reports import register\n"
        "@register('count', kind='table', experiments=('main',), help='number of runs')\n"
        "def build(ctx):\n"
        "    p = ctx.path('.txt')\n"
        "    p.write_text(str(len(ctx.runs)))\n"
        "    return [p]\n")
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
