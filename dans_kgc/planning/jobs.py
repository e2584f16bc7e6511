"""Every job the DAG runs for a preset's targets (`snakemake --config preset=P`: all tables and figures), as
PlannedJob records, without Snakemake."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dans_kgc.planning.overrides import Flat, value
from dans_kgc.planning.planner import (
    DIAGNOSE_EXTS,
    FIGURES,
    TABLES,
    PlanError,
    Planner,
    Run,
    dam_dir,
    diagnose_run_prefix,
    diagnose_warm_start_prefix,
    diffusion_dir,
    fetch_record,
    pretrain_dir,
    run_dir,
    tune_dir,
    variant_tags,
)
from dans_kgc.stages import stage_keys

# rule -> its resource group (config presets.P.resources); the torch-using rules also ask for a GPU with device: cuda
RESOURCE_GROUPS = {
    "fetch_dataset": "light",
    "dataset_stats": "light",
    "pretrain": "pretrain",
    "dam": "dam",
    "diffusion": "diffusion",
    "tune": "tune",
    "train": "train",
    "diagnose": "diagnose",
    "diagnose_warm_start": "diagnose",
    "report_table": "light",
    "report_figure": "light",
    "report_diagnostics": "light",
}
TORCH_RULES = (
    "pretrain",
    "dam",
    "diffusion",
    "tune",
    "train",
    "diagnose",
    "diagnose_warm_start",
)
# the rules whose job script (workflow/scripts/dans_kgc_job.py) runs the arguments: it adds --resume, and a train
# job evaluates the run afterwards (`dans-kgc evaluate --run DIR`)
SCRIPT_RULES = ("pretrain", "train")


def _files(inputs: dict[str, str] | list[str]) -> list[str]:
    return list(inputs.values()) if isinstance(inputs, dict) else list(inputs)


def pkey_model(pkey: str) -> str:
    """The backbone model a pretraining trains: its folder key is <model>-<hash>."""
    return pkey.rsplit("-", 1)[0]


@dataclass(frozen=True)
class PlannedJob:
    """One job of the DAG. See the ``dans_kgc.planning`` docstring for the meaning of each field."""

    rule: str
    preset: str
    args: list[str]
    inputs: dict[str, str] | list[str]
    outputs: list[str]
    out: str
    log: str
    benchmark: str
    resources: dict[str, int]
    dataset: str | None = None
    experiment: str | None = None
    variant: str | None = None
    seed: int | None = None
    backbone: str | None = None
    model: str | None = None
    key: str | None = None
    overrides: Flat = field(default_factory=dict)
    stands_for: list[str] = field(default_factory=list)

    @property
    def command(self) -> list[str]:
        """The dans-kgc command line as the job runs it with ``threads`` threads (torch-using rules), less the
        job script's --resume."""
        threads = ["--set", "threads=1"] if self.rule in TORCH_RULES else []
        return ["dans-kgc", *self.args, *threads]


TARGETS = ("all", "tables", "figures")  # the Snakefile's all, all_tables and all_figures


def plan_jobs(
    workflow_config: Mapping[str, Any], preset: str, planner: Planner | None = None, targets: str = "all"
) -> list[PlannedJob]:
    """Every job of a preset's targets (all tables and figures), in stage order: fetch, stats, pretrain, dam,
    diffusion, tune, train, diagnose, diagnose_warm_start, report_table, report_figure, report_diagnostics.

    ``workflow_config``: config.yaml as a dict (after its schema check); ``planner``: one already built from it
    (saves the config checks)."""
    if targets not in TARGETS:
        raise PlanError(f"targets: expected one of {', '.join(TARGETS)}, got {targets!r}")
    plan = planner or Planner(workflow_config)
    plan.check_preset(preset)
    return JobLister(plan, preset).jobs(targets)


class JobLister:
    """The jobs of one preset (its targets and everything they need)."""

    def __init__(self, plan: Planner, preset: str) -> None:
        self.plan, self.preset = plan, preset
        self.gpu = 1 if plan.config["device"] == "cuda" else 0

    def job(self, rule: str, where: str, **fields: Any) -> PlannedJob:
        """A job with the log and benchmark paths of its rule (``where``: the wildcards' part of their paths)."""
        resources = dict(self.plan.resources(self.preset, RESOURCE_GROUPS[rule]))
        if rule in TORCH_RULES:
            resources["gpu"] = self.gpu
        return PlannedJob(
            rule=rule,
            preset=self.preset,
            log=f"logs/{rule}/{where}.log",
            benchmark=f"results/benchmarks/{rule}/{where}.tsv",
            resources=resources,
            **fields,
        )

    def jobs(self, targets: str = "all") -> list[PlannedJob]:
        """The jobs the targets need, as Snakemake finds them: from the targets' files back to the jobs
        that write them. The stage tables list every variant's stage, also one only a run that is not
        trained reads (e.g. sensitivity mu1.0 spelt out at its default: main dans trains it)."""
        candidates = self.candidates()
        writer = {f: job for job in candidates for f in job.outputs}
        wanted = [
            *(self.plan.table_targets(self.preset) if targets in ("all", "tables") else []),
            *(self.plan.figure_targets(self.preset) if targets in ("all", "figures") else []),
        ]
        needed: set[int] = set()
        while wanted:
            path = wanted.pop()
            if path not in writer:  # the planner's own inconsistency, not the config's
                raise RuntimeError(f"preset {self.preset}: no planned job writes {path}")
            job = writer[path]
            if id(job) not in needed:
                needed.add(id(job))
                wanted += _files(job.inputs)
        return [job for job in candidates if id(job) in needed]

    def candidates(self) -> list[PlannedJob]:
        """Every job the preset's plan has, in stage order."""
        p, preset = self.plan, self.preset
        datasets = p.preset_datasets(preset)
        out = [self.fetch(ds) for ds in datasets] + [self.stats(datasets)]
        out += [self.pretrain(ds, k) for ds in datasets for k in p.pretrainings(preset, ds)]
        out += [self.dam(ds, k) for ds in datasets for k in p.dam_fits(preset, ds)]
        out += [self.diffusion(ds, k) for ds in datasets for k in p.warm_starts(preset, ds)]
        out += [self.tune(ds, v) for ds, v in p.tune_jobs(preset)]
        out += [self.train(r) for r in p.run_groups(preset)]
        out += [self.diagnose(r) for r in p.diagnosed_runs(preset)]
        out += [self.diagnose_warm_start(ds, k) for ds, k in p.diagnosed_warm_starts(preset)]
        out += [self.report(name, "table") for name in TABLES if p.report_runs(preset, name)]
        out += [self.report(name, "figure") for name in FIGURES if p.report_runs(preset, name)]
        if p.diagnose_files(preset, "tables"):
            out.append(self.report_diagnostics())
        return out

    # one job per rule ------------------------------------------------------------------------
    def fetch(self, ds: str) -> PlannedJob:
        sets = stage_keys(self.plan.preset_overrides(self.preset), "fetch")
        if ds in self.plan.custom_datasets:
            sets["data.custom"] = {ds: self.plan.custom_datasets[ds]}
        record = fetch_record(self.preset, ds)
        return self.job(
            "fetch_dataset",
            f"{self.preset}/{ds}",
            dataset=ds,
            args=["data", "fetch", ds, *self.plan.fetch_args(self.preset, ds)],
            inputs={},
            outputs=[record],
            out=record,
            overrides=sets,
        )

    def stats(self, datasets: list[str]) -> PlannedJob:
        prefix = f"results/{self.preset}/tables/table1_datasets"
        return self.job(
            "dataset_stats",
            self.preset,
            args=[
                "data",
                "stats",
                *datasets,
                "--out",
                prefix,
                *self.plan.stats_args(self.preset),
            ],
            inputs=self.plan.stats_inputs(self.preset),
            outputs=[prefix + ".csv", prefix + ".md"],
            out=prefix,
            overrides=stage_keys(self.plan.preset_overrides(self.preset), "stats"),
        )

    def stage_job(
        self,
        rule: str,
        ds: str,
        key: str,
        folder: str,
        files: tuple[str, ...],
        **fields: Any,
    ) -> PlannedJob:
        """A job of a shared stage (pretrain, dam, diffusion): one per dataset and folder key."""
        outputs = [f"{folder}/{f}" for f in files]
        return self.job(
            rule,
            f"{self.preset}/{ds}/{key}",
            dataset=ds,
            key=key,
            outputs=outputs,
            out=folder,
            **fields,
        )

    def pretrain(self, ds: str, pkey: str) -> PlannedJob:
        _, flat = self.plan.pretraining(self.preset, ds, pkey)
        return self.stage_job(
            "pretrain",
            ds,
            pkey,
            pretrain_dir(self.preset, ds, pkey),
            ("run.json",),
            model=pkey_model(pkey),
            args=self.plan.pretrain_args(self.preset, ds, pkey),
            inputs={"data": fetch_record(self.preset, ds)},
            overrides=flat,
        )

    def dam(self, ds: str, dam_key: str) -> PlannedJob:
        _, _, flat = self.plan.dam_fit(self.preset, ds, dam_key)
        folder = dam_dir(self.preset, ds, dam_key)
        cli = ["dam", "fit", "--dataset", ds, "--out", folder]
        return self.stage_job(
            "dam",
            ds,
            dam_key,
            folder,
            ("entities.csv", "dam_report.json"),
            args=[*cli, *self.plan.dam_args(self.preset, ds, dam_key)],
            inputs=self.plan.dam_inputs(self.preset, ds, dam_key),
            overrides=flat,
        )

    def diffusion(self, ds: str, dkey: str) -> PlannedJob:
        _, flat, pkey, _ = self.plan.warm_start(self.preset, ds, dkey)
        folder = diffusion_dir(self.preset, ds, dkey)
        cli = [
            "diffusion",
            "fit",
            "--dataset",
            ds,
            "--pretrained",
            pretrain_dir(self.preset, ds, pkey),
        ]
        return self.stage_job(
            "diffusion",
            ds,
            dkey,
            folder,
            ("diffusion.pt", "diffusion_report.json"),
            model=pkey_model(pkey),
            args=[
                *cli,
                "--out",
                folder,
                *self.plan.diffusion_args(self.preset, ds, dkey),
            ],
            inputs=self.plan.diffusion_inputs(self.preset, ds, dkey),
            overrides=flat,
        )

    def tune(self, ds: str, variant: str) -> PlannedJob:
        folder = tune_dir(self.preset, ds, variant)
        flat = self.plan.tune_overrides(self.preset, ds, variant)
        seed = self.plan.experiment_seeds(self.preset, "tuned")[0]
        return self.job(
            "tune",
            f"{self.preset}/{ds}/{variant}",
            dataset=ds,
            experiment="tuned",
            variant=variant,
            seed=seed,
            backbone=variant_tags("tuned", variant)[1],
            model=value(flat, "model.name"),
            args=self.plan.tune_args(self.preset, ds, variant),
            inputs=self.plan.tune_inputs(self.preset, ds, variant),
            outputs=[f"{folder}/best.yaml", f"{folder}/study.json"],
            out=folder,
            overrides={**flat, "seed": seed},
        )

    def run_job(self, rule: str, run: Run, **fields: Any) -> PlannedJob:
        """A job of one run (train, diagnose): its labels and the model it trains."""
        flat = self.plan.effective(run.preset, self.plan.run_overrides(run))
        where = f"{self.preset}/{run.dataset}/{run.experiment}/{run.variant}/seed{run.seed}"
        return self.job(
            rule,
            where,
            dataset=run.dataset,
            experiment=run.experiment,
            variant=run.variant,
            seed=run.seed,
            backbone=variant_tags(run.experiment, run.variant)[1],
            model=value(flat, "model.name"),
            **fields,
        )

    def train(self, run: Run) -> PlannedJob:
        folder = run_dir(run)
        return self.run_job(
            "train",
            run,
            args=self.plan.train_args(run),
            inputs=self.plan.train_inputs(run),
            outputs=[f"{folder}/run.json", f"{folder}/metrics_test.json"],
            out=folder,
            overrides={**self.plan.train_overrides(run), "seed": run.seed},
            stands_for=self.plan.stands_for(run),
        )

    def diagnose(self, run: Run) -> PlannedJob:
        prefix = diagnose_run_prefix(run)
        args = ["diagnose", "--run", run_dir(run), "--out", prefix]
        return self.run_job(
            "diagnose",
            run,
            args=[*args, *self.plan.diagnose_args(self.preset)],
            inputs={"run": f"{run_dir(run)}/run.json"},
            outputs=[prefix + e for e in DIAGNOSE_EXTS],
            out=prefix,
        )

    def diagnose_warm_start(self, ds: str, dkey: str) -> PlannedJob:
        prefix = diagnose_warm_start_prefix(self.preset, ds, dkey)
        _, _, pkey, _ = self.plan.warm_start(self.preset, ds, dkey)
        return self.job(
            "diagnose_warm_start",
            f"{self.preset}/{ds}/{dkey}",
            dataset=ds,
            key=dkey,
            model=pkey_model(pkey),
            args=[
                "diagnose",
                "--out",
                prefix,
                *self.plan.diagnose_warm_start_args(self.preset, ds, dkey),
            ],
            inputs=self.plan.diagnose_warm_start_inputs(self.preset, ds, dkey),
            outputs=[prefix + e for e in DIAGNOSE_EXTS],
            out=prefix,
        )

    def report(self, name: str, kind: str) -> PlannedJob:
        prefix = f"results/{self.preset}/tables/{name}" if kind == "table" else f"figures/{self.preset}/{name}"
        exts = (".csv", ".md", ".tex") if kind == "table" else (".png", ".pdf")
        return self.job(
            f"report_{kind}",
            f"{self.preset}/{name}",
            key=name,
            args=["report", *self.plan.report_args(self.preset, name), "--out", prefix],
            inputs=self.plan.report_inputs(self.preset, name),
            outputs=[prefix + e for e in (*exts, ".provenance.json")],
            out=prefix,
        )

    def report_diagnostics(self) -> PlannedJob:
        prefix = f"results/{self.preset}/tables/diagnostics"
        inputs = self.plan.report_diagnostics_inputs(self.preset)
        return self.job(
            "report_diagnostics",
            self.preset,
            args=["report", "diagnostics", "--runs", *inputs, "--out", prefix],
            inputs=inputs,
            outputs=[prefix + e for e in (".csv", ".md", ".provenance.json")],
            out=prefix,
        )
